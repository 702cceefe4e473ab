"""Optional text encoder: the text tower of a user's local OpenCLIP checkpoint, run by a plain-torch forward.

The `open_clip` package cannot be imported here (it imports torchvision at import time), so this module never
imports it. It reads the checkpoint's state dict with OpenCLIP's key names, rebuilds the CLIP text transformer
(causal, pre-LayerNorm, GELU or QuickGELU) and tokenises with the CLIP byte-level BPE, reading the vocabulary file
that the `open_clip_torch` package ships (found with importlib.util.find_spec, not imported).

Accepted checkpoints (local paths only, never hub tags):
  - a file: .safetensors, or .pt/.pth/.bin read with torch.load(weights_only=True); a training checkpoint's
    {"state_dict": ...} and a "module." prefix are unwrapped; an open_clip_config.json beside it is used if present;
  - a folder with open_clip_config.json and its weights (open_clip_model.safetensors, open_clip_pytorch_model.bin,
    or a single other .safetensors/.bin/.pt/.pth file).
Without a config, sizes come from the tensor shapes, heads = width // 64 and the activation is GELU (OpenAI's
original weights use QuickGELU: give those an open_clip_config.json with "quick_gelu": true).
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import json
import os
import pickle
import re
import string
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..device import select_device
from ..errors import InputError, WeightsError
from ..paths import sha256_file
from .base import TextEmbedding, TextEncoder, adopt_state_dict, check_texts

CONFIG_NAME = "open_clip_config.json"
PREFERRED_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
BPE_VOCAB_NAME = "bpe_simple_vocab_16e6.txt.gz"
SOT, EOT = "<start_of_text>", "<end_of_text>"
_BLOCK_KEYS = {
    "ln_1.weight": "ln_1.weight", "ln_1.bias": "ln_1.bias",
    "attn.in_proj_weight": "attn_in.weight", "attn.in_proj_bias": "attn_in.bias",
    "attn.out_proj.weight": "attn_out.weight", "attn.out_proj.bias": "attn_out.bias",
    "ln_2.weight": "ln_2.weight", "ln_2.bias": "ln_2.bias",
    "mlp.c_fc.weight": "fc.weight", "mlp.c_fc.bias": "fc.bias",
    "mlp.c_proj.weight": "proj.weight", "mlp.c_proj.bias": "proj.bias",
    "ls_1.gamma": "ls_1", "ls_2.gamma": "ls_2",
}
# text_cfg options that change the computation in ways this tower does not implement (value that is supported).
_UNSUPPORTED_TEXT_CFG = {
    "hf_model_name": None, "hf_tokenizer_name": None, "embed_cls": False, "no_causal_mask": False,
    "final_ln_after_pool": False, "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False,
    "scale_attn_inner": False, "scale_attn": False, "scale_fc": False, "attentional_pool": False,
}


# --- the CLIP byte-level BPE tokenizer ---------------------------------------------------------------------------

def _byte_alphabet() -> dict[int, str]:
    """Map each byte to a printable unicode character (printable latin-1 bytes map to themselves)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table  # insertion order (printable bytes first) defines the first 256 token ids


def default_bpe_vocab() -> Path:
    """The CLIP BPE merges file shipped inside the open_clip_torch package (located, not imported)."""
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0]) / BPE_VOCAB_NAME if locations else None
    if path is None or not path.is_file():
        raise WeightsError(
            "The openclip text encoder needs the CLIP tokenizer vocabulary from the 'open_clip_torch' package "
            "(pip install open_clip_torch --no-deps ftfy regex), and it is not installed."
        )
    return path


class ClipTokenizer:
    """CLIP's lower-cased byte-level BPE; ids are [SOT] text [EOT], cut to `context_length` with EOT kept last."""

    def __init__(self, vocab_path: str | os.PathLike, context_length: int = 77, clean: str = "lower"):
        try:
            import regex
        except ImportError:
            raise WeightsError("The openclip text encoder needs the 'regex' package (pip install regex).") from None
        try:
            import ftfy  # optional: repairs mis-decoded text exactly as OpenCLIP's tokenizer does

            self._fix_text = ftfy.fix_text
        except ImportError:
            self._fix_text = None
        if clean not in ("lower", "whitespace", "canonicalize"):
            raise WeightsError(f"The OpenCLIP tokenizer option clean={clean!r} is not supported.")
        try:
            with gzip.open(vocab_path, "rt", encoding="utf-8") as handle:
                lines = handle.read().split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise WeightsError(f"The CLIP BPE vocabulary {vocab_path} cannot be read ({exc}).") from None
        n_merges = 49152 - 256 - 2  # the first line is a header
        merges = [tuple(line.split()) for line in lines[1 : n_merges + 1]]
        if len(merges) != n_merges or any(len(m) != 2 for m in merges):
            raise WeightsError(f"The CLIP BPE vocabulary {vocab_path} is not the expected 48,894-merge file.")
        self.byte_map = _byte_alphabet()
        symbols = list(self.byte_map.values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.vocab_size = len(vocab)
        self.sot_id, self.eot_id = self.encoder[SOT], self.encoder[EOT]
        self.context_length = int(context_length)
        self.clean = clean
        self._pattern = regex.compile(
            rf"{SOT}|{EOT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+", regex.IGNORECASE
        )
        self._bpe = functools.lru_cache(maxsize=65536)(self._bpe_word)

    def _normalise(self, text: str) -> str:
        if self._fix_text is not None:
            text = self._fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        if self.clean == "canonicalize":
            text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation)).lower()
        text = " ".join(text.split())
        return text.lower() if self.clean == "lower" else text

    def _bpe_word(self, word: str) -> tuple[str, ...]:
        if word in (SOT, EOT):
            return (word,)
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            best, best_rank = None, None
            for pair in zip(parts, parts[1:]):
                rank = self.ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = pair, rank
            if best is None:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == best[0] and parts[i + 1] == best[1]:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(parts)

    def encode_text(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self._pattern.findall(self._normalise(text)):
            mapped = "".join(self.byte_map[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(mapped))
        return ids

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        """Unpadded id lists, each [SOT] ... [EOT] and at most context_length long."""
        out = []
        for text in texts:
            ids = [self.sot_id, *self.encode_text(text), self.eot_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_id
            out.append(ids)
        return out


# --- the text tower ----------------------------------------------------------------------------------------------

class _Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp: int, quick_gelu: bool, layer_scale: bool, eps: float):
        super().__init__()
        self.heads, self.quick_gelu = heads, quick_gelu
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.attn_in = nn.Linear(width, 3 * width)
        self.attn_out = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width, eps=eps)
        self.fc = nn.Linear(width, mlp)
        self.proj = nn.Linear(mlp, width)
        self.ls_1 = nn.Parameter(torch.empty(width)) if layer_scale else None
        self.ls_2 = nn.Parameter(torch.empty(width)) if layer_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.attn_in(self.ln_1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
        a = self.attn_out(a.transpose(1, 2).reshape(b, n, d))
        x = x + (a * self.ls_1 if self.ls_1 is not None else a)
        h = self.fc(self.ln_2(x))
        h = h * torch.sigmoid(1.702 * h) if self.quick_gelu else F.gelu(h)
        h = self.proj(h)
        return x + (h * self.ls_2 if self.ls_2 is not None else h)


class _TextTower(nn.Module):
    def __init__(self, vocab: int, context: int, width: int, layers: int, heads: int, mlp: int, quick_gelu: bool,
                 layer_scale: bool, proj: str, embed_dim: int, proj_bias: bool, eps: float = 1e-5):
        super().__init__()
        self.token_embedding = nn.Parameter(torch.empty(vocab, width))
        self.positional_embedding = nn.Parameter(torch.empty(context, width))
        self.blocks = nn.ModuleList(_Block(width, heads, mlp, quick_gelu, layer_scale, eps) for _ in range(layers))
        self.ln_final = nn.LayerNorm(width, eps=eps)
        self.proj_kind = proj
        if proj == "matrix":  # OpenCLIP's nn.Parameter (width, embed_dim), used as x @ P
            self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        elif proj == "linear":  # nn.Linear(width, embed_dim)
            self.text_projection_linear = nn.Linear(width, embed_dim, bias=proj_bias)

    def forward(self, ids: torch.Tensor, eot_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.embedding(ids, self.token_embedding) + self.positional_embedding[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = self.ln_final(x)
        pooled = x[torch.arange(x.shape[0], device=x.device), eot_index]
        if self.proj_kind == "matrix":
            pooled = pooled @ self.text_projection
        elif self.proj_kind == "linear":
            pooled = self.text_projection_linear(pooled)
        return x, pooled


# --- reading checkpoints -----------------------------------------------------------------------------------------

def _resolve(path: str | os.PathLike) -> tuple[Path, dict]:
    """(weights file, model config or {}) for a local checkpoint file or folder."""
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise InputError(
            f"The OpenCLIP checkpoint {str(path)!r} is not an existing local file or folder; only local files are "
            "accepted (hub tags and pretrained names are never downloaded)."
        )
    folder = p if p.is_dir() else p.parent
    cfg: dict = {}
    cfg_file = folder / CONFIG_NAME
    if cfg_file.is_file():
        try:
            data = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WeightsError(f"The OpenCLIP config {cfg_file} cannot be read as JSON ({exc}).") from None
        if not isinstance(data, dict):
            raise WeightsError(f"The OpenCLIP config {cfg_file} does not hold a JSON object.")
        cfg = data.get("model_cfg", data)
        if not isinstance(cfg, dict):
            raise WeightsError(f"The OpenCLIP config {cfg_file} has a malformed model_cfg.")
    elif p.is_dir():
        raise WeightsError(f"The OpenCLIP checkpoint folder {p} has no {CONFIG_NAME}.")
    if p.is_file():
        if p.suffix.lower() not in WEIGHT_SUFFIXES:
            raise InputError(f"The OpenCLIP checkpoint {p} is not a .safetensors, .pt, .pth or .bin file.")
        return p, cfg
    for name in PREFERRED_WEIGHTS:
        if (p / name).is_file():
            return p / name, cfg
    found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in WEIGHT_SUFFIXES)
    if len(found) != 1:
        what = "no weights file" if not found else f"{len(found)} weights files and none is named {PREFERRED_WEIGHTS[0]}"
        raise WeightsError(f"The OpenCLIP checkpoint folder {p} has {what}.")
    return found[0], cfg


def _text_prefix(keys) -> str:
    keys = set(keys)
    for prefix in ("", "text.", "module.", "module.text."):
        if prefix + "token_embedding.weight" in keys:
            return prefix
    raise WeightsError("The checkpoint has no token_embedding.weight: it is not an OpenCLIP CLIP model with a built-in text tower.")


def _read_state(weights: Path) -> dict[str, torch.Tensor]:
    """The text-tower tensors (prefix stripped, on CPU) of a checkpoint file."""
    if weights.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(weights), framework="pt", device="cpu") as handle:
                keys = list(handle.keys())
                prefix = _text_prefix(keys)
                return {k[len(prefix):]: handle.get_tensor(k) for k in keys if k.startswith(prefix) and _is_text_key(k[len(prefix):])}
        except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
            detail = str(exc).strip().rstrip(".") or type(exc).__name__
            raise WeightsError(f"The OpenCLIP checkpoint {weights} cannot be read as safetensors ({detail}).") from None
    try:
        obj = torch.load(str(weights), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch reports refused objects as "Unsupported global: GLOBAL module.name"; anything else means the file
        # is simply not a (readable) checkpoint.
        if "unsupported global" not in str(exc).lower():
            raise WeightsError(f"The OpenCLIP checkpoint {weights} cannot be read with torch.load (not a valid checkpoint file).") from None
        raise WeightsError(
            f"The OpenCLIP checkpoint {weights} was refused: it holds pickled Python objects other than tensors, "
            "which are never loaded (use a .safetensors file or a plain state dict)."
        ) from None
    except Exception as exc:  # corrupt zip, truncated file, TorchScript archive...
        detail = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"The OpenCLIP checkpoint {weights} cannot be read with torch.load ({detail}).") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise WeightsError(f"The OpenCLIP checkpoint {weights} does not hold a state dict.")
    prefix = _text_prefix(obj.keys())
    state = {}
    for k, v in obj.items():
        if k.startswith(prefix) and _is_text_key(k[len(prefix):]):
            if not isinstance(v, torch.Tensor):
                raise WeightsError(f"The OpenCLIP checkpoint {weights} holds a non-tensor value under {k!r}.")
            state[k[len(prefix):]] = v
    return state


_TEXT_ROOTS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection", "cls_emb", "attn_mask")


def _is_text_key(key: str) -> bool:
    return key.startswith(_TEXT_ROOTS)


def _convert(state: dict[str, torch.Tensor], cfg: dict, weights: Path) -> tuple[dict, dict]:
    """(module kwargs, module state dict) from OpenCLIP text-tower tensors and the model config."""
    def bad(msg: str) -> WeightsError:
        return WeightsError(f"The OpenCLIP checkpoint {weights} {msg}.")

    text_cfg = cfg.get("text_cfg") or {}
    if not isinstance(text_cfg, dict):
        raise bad("has a malformed text_cfg in its config")
    for key, ok in _UNSUPPORTED_TEXT_CFG.items():
        if text_cfg.get(key, ok) not in (ok, None):
            raise bad(f"uses the text-tower option {key}={text_cfg[key]!r}, which this loader does not implement")
    if text_cfg.get("pool_type", "argmax") not in ("argmax",):
        raise bad(f"pools text with {text_cfg['pool_type']!r}; only OpenCLIP's default 'argmax' (EOT token) is supported")
    if "cls_emb" in state:
        raise bad("has a text class token (CoCa-style), which this loader does not implement")
    try:
        tok = state["token_embedding.weight"].float()
        pos = state["positional_embedding"].float()
    except KeyError as exc:
        raise bad(f"lacks the tensor {exc.args[0]!r}") from None
    if tok.dim() != 2 or pos.dim() != 2 or tok.shape[1] != pos.shape[1]:
        raise bad("has token/positional embeddings of inconsistent shapes")
    vocab, width = tok.shape
    context = pos.shape[0]
    blocks: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        m = re.fullmatch(r"transformer\.resblocks\.(\d+)\.(.+)", k)
        if m:
            if m.group(2) not in _BLOCK_KEYS:
                raise bad(f"has a text block tensor {k!r} this loader does not implement")
            blocks.setdefault(int(m.group(1)), {})[_BLOCK_KEYS[m.group(2)]] = v.float()
        elif k.startswith("transformer."):
            raise bad(f"has an unexpected text tensor {k!r}")
    layers = len(blocks)
    if layers == 0 or sorted(blocks) != list(range(layers)):
        raise bad("has no or non-consecutive text transformer blocks")
    heads = int(text_cfg.get("heads", max(1, width // 64)))
    if width % heads:
        raise bad(f"has a text width {width} that does not split into {heads} heads")
    if "layers" in text_cfg and int(text_cfg["layers"]) != layers:
        raise bad(f"has {layers} text layers but its config says {text_cfg['layers']}")
    if "width" in text_cfg and int(text_cfg["width"]) != width:
        raise bad(f"has text width {width} but its config says {text_cfg['width']}")
    fc = blocks[0].get("fc.weight")
    if fc is None:
        raise bad("lacks the text MLP weights")
    layer_scale = "ls_1" in blocks[0]

    out = {"token_embedding": tok, "positional_embedding": pos}
    for i, block in blocks.items():
        for name, value in block.items():
            out[f"blocks.{i}.{name}"] = value
    for part in ("weight", "bias"):
        if f"ln_final.{part}" not in state:
            raise bad(f"lacks the tensor 'ln_final.{part}'")
        out[f"ln_final.{part}"] = state[f"ln_final.{part}"].float()
    proj_bias = False
    if "text_projection" in state:
        proj, p = "matrix", state["text_projection"].float()
        if p.dim() != 2 or p.shape[0] != width:
            raise bad("has a text_projection of unexpected shape")
        out["text_projection"], embed_dim = p, p.shape[1]
    elif "text_projection.weight" in state:
        proj, p = "linear", state["text_projection.weight"].float()
        if p.dim() != 2 or p.shape[1] != width:
            raise bad("has a text_projection of unexpected shape")
        out["text_projection_linear.weight"], embed_dim = p, p.shape[0]
        if "text_projection.bias" in state:
            proj_bias = True
            out["text_projection_linear.bias"] = state["text_projection.bias"].float()
    else:
        proj, embed_dim = "none", width
    kwargs = dict(vocab=vocab, context=context, width=width, layers=layers, heads=heads, mlp=fc.shape[0],
                  quick_gelu=bool(cfg.get("quick_gelu", False)), layer_scale=layer_scale, proj=proj,
                  embed_dim=embed_dim, proj_bias=proj_bias)
    return kwargs, out


class OpenCLIPEncoder(TextEncoder):
    """Text features of a local OpenCLIP checkpoint; pooled = normalised projected EOT feature (as encode_text)."""

    name = "openclip"

    def __init__(self, path: str | os.PathLike, device: str = "auto", bpe_vocab: str | os.PathLike | None = None):
        self.device = select_device(device)
        weights, cfg = _resolve(path)
        self.weights_path = weights
        self.model_name = f"OpenCLIP text tower ({Path(weights).name})"
        try:
            self.checksum = sha256_file(weights)
        except OSError as exc:
            raise WeightsError(f"Cannot read the OpenCLIP checkpoint {weights}: {exc.strerror or exc}.") from None
        kwargs, state = _convert(_read_state(weights), cfg, weights)
        text_cfg = cfg.get("text_cfg") or {}
        clean = (text_cfg.get("tokenizer_kwargs") or {}).get("clean", "lower")
        self._tokenizer = ClipTokenizer(bpe_vocab or default_bpe_vocab(), context_length=kwargs["context"], clean=clean)
        if kwargs["vocab"] != self._tokenizer.vocab_size:
            raise WeightsError(
                f"The OpenCLIP checkpoint {weights} has a {kwargs['vocab']}-token vocabulary, but the CLIP BPE "
                f"tokenizer has {self._tokenizer.vocab_size}; its tokenizer is not supported."
            )
        with torch.device("meta"):
            tower = _TextTower(**kwargs)
        tower = adopt_state_dict(tower, state, f"The OpenCLIP checkpoint {weights} has text tensors of unexpected "
                                               f"shapes")
        self._model = tower.to(self.device)
        self.dim = int(kwargs["embed_dim"])
        self.token_dim = int(kwargs["width"])
        self.context_length = int(kwargs["context"])

    @property
    def tokenizer(self) -> ClipTokenizer:
        return self._tokenizer

    def knows_word(self, word: str) -> bool:
        return f"{word}</w>" in self._tokenizer.encoder  # a BPE symbol that ends a word and is the whole of it

    def encode(self, texts: Sequence[str]) -> TextEmbedding:
        batch = check_texts(texts)
        dev = self.device
        if not batch:
            return TextEmbedding(torch.zeros(0, 0, self.token_dim, device=dev), torch.zeros(0, 0, dtype=torch.bool, device=dev),
                                 torch.zeros(0, self.dim, device=dev))
        id_lists = self._tokenizer(batch)
        n = max(len(ids) for ids in id_lists)
        # The text transformer is causal and pools at EOT, so trailing padding never changes real tokens' outputs;
        # padding only to the longest text gives the same result as OpenCLIP's fixed context_length.
        ids = torch.zeros(len(id_lists), n, dtype=torch.long)
        for i, row in enumerate(id_lists):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        lengths = torch.tensor([len(row) for row in id_lists])
        mask = torch.arange(n)[None, :] < lengths[:, None]
        eot = ids.argmax(dim=-1)  # OpenCLIP's 'argmax' pooling: the first highest id, i.e. the EOT token
        ids, mask, eot = ids.to(dev), mask.to(dev), eot.to(dev)
        with torch.inference_mode():
            tokens, pooled = self._model(ids, eot)
            tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)
            pooled = F.normalize(pooled, dim=-1)
        return TextEmbedding(tokens, mask, pooled)
