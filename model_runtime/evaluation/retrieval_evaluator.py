"""A separately trained text <-> expression evaluator, for text-to-expression retrieval R-precision.

In the manner of the motion-retrieval evaluators of text-to-motion work (Guo et al. 2022), a small contrastive model
judges whether a generated expression matches its text. It shares no weights with any generator: it has its own text
projection over the frozen MiniLM pooled sentence embedding and its own expression encoder over the 52 ARKit weights
of an apex expression, trained here with a symmetric InfoNCE loss on the knowledge base alone (every concept's label and
phrases, a few wrappers of this module's own, paired with `sample_concept_weights` instances at random intensities,
sometimes one-sided). It is a judge, like the FER classifier, so it is trained on all concepts, the generators'
held-out ones included: it must know what an "awed" face looks like to say whether a generator produced one.

Every batch holds distinct concepts, so no positive pair is ever treated as a negative. Training takes a few seconds
on CPU (about 10 s on two idle cores; the budget is 60 s) and is deterministic for a seed; the weights are cached
(paths.NpzCache) in `cache_dir()` under a key made of the config, the text encoder's checksum and a fingerprint of
the knowledge base.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..expression_space import NUM_CHANNELS
from ..knowledge import all_concepts, sample_concept_weights
from ..encoders import load_text_encoder
from ..paths import NpzCache, content_key

WRAPPERS: tuple[str, ...] = ("{p}", "a face that is {p}")
"""Wrappers around the knowledge-base phrases (this module's own, so the evaluator is not tied to any generator's
training templates)."""


@dataclass(frozen=True)
class EvaluatorConfig:
    dim: int = 128
    hidden: int = 256
    steps: int = 1000
    batch_concepts: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.07
    samples_per_concept: int = 48
    intensity_range: tuple[float, float] = (0.5, 1.2)
    one_sided_prob: float = 0.15
    wrappers: tuple[str, ...] = WRAPPERS
    seed: int = 0
    version: int = 1


class _MLP(nn.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x), dim=-1)


class RetrievalEvaluator(nn.Module):
    """Text projection (pooled text embedding -> unit vector) and expression encoder (52 weights -> unit vector)."""

    def __init__(self, text_dim: int, config: EvaluatorConfig = EvaluatorConfig()):
        super().__init__()
        self.config = config
        self.text_proj = _MLP(text_dim, config.hidden, config.dim)
        self.expr_enc = _MLP(NUM_CHANNELS, config.hidden, config.dim)
        self.encoder = None  # the frozen text encoder, attached by load_evaluator

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self.encoder is None:
            raise RuntimeError("no text encoder attached; use load_evaluator()")
        pooled = _encode(self.encoder, list(texts))
        return self.text_proj(torch.from_numpy(pooled)).numpy()

    @torch.no_grad()
    def embed_expressions(self, weights: np.ndarray) -> np.ndarray:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float32).reshape(-1, NUM_CHANNELS))
        return self.expr_enc(w).numpy()

    def similarity(self, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        """(len(texts), len(weights)) cosine similarities."""
        return self.embed_texts(texts) @ self.embed_expressions(weights).T


def _encode(encoder, texts: list[str], chunk: int = 128) -> np.ndarray:
    parts = [encoder.encode(texts[i:i + chunk]).pooled.float().cpu().numpy() for i in range(0, len(texts), chunk)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, encoder.dim), np.float32)


def knowledge_fingerprint() -> str:
    """Changes whenever any concept's AUs, extras, phrases or family change."""
    table = [(c.name, c.family, [tuple(a.__dict__.values()) for a in c.aus], list(c.extra), list(c.phrases), c.label)
             for c in all_concepts()]
    return hashlib.sha256(json.dumps(table, default=str).encode()).hexdigest()[:16]


def training_pairs(config: EvaluatorConfig):
    """(texts, text_owner, bank): every wrapped phrase with its concept index, and a (concepts, samples, 52) bank of
    sampled expressions per concept."""
    rng = np.random.default_rng([config.seed, 11])
    concepts = all_concepts()
    texts, owners = [], []
    for ci, c in enumerate(concepts):
        for phrase in dict.fromkeys((c.label.replace("_", " "), *c.phrases)):
            for wrapper in config.wrappers:
                texts.append(wrapper.format(p=phrase))
                owners.append(ci)
    bank = np.empty((len(concepts), config.samples_per_concept, NUM_CHANNELS), dtype=np.float32)
    lo, hi = config.intensity_range
    for ci, c in enumerate(concepts):
        for k in range(config.samples_per_concept):
            side = None
            if rng.random() < config.one_sided_prob:
                side = "left" if rng.random() < 0.5 else "right"
            bank[ci, k] = sample_concept_weights(c, rng, intensity=float(rng.uniform(lo, hi)), side=side)
    return texts, np.asarray(owners, dtype=np.int64), bank


def train_evaluator(encoder, config: EvaluatorConfig = EvaluatorConfig()) -> RetrievalEvaluator:
    """Train from scratch (deterministic for config.seed)."""
    texts, owners, bank = training_pairs(config)
    pooled = torch.from_numpy(_encode(encoder, texts))
    bank_t = torch.from_numpy(bank)
    by_concept = [np.nonzero(owners == ci)[0] for ci in range(bank.shape[0])]
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, 13])
    torch.manual_seed(config.seed)
    model = RetrievalEvaluator(pooled.shape[1], config)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)
    n_concepts = bank.shape[0]
    batch = min(config.batch_concepts, n_concepts)
    labels = torch.arange(batch)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP gains nothing from threads, and on a busy CPU they spin against each other
    try:
        _train_loop(model, opt, sched, config, pooled, bank_t, by_concept, gen, rng, n_concepts, batch, labels)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.encoder = encoder
    return model


def _train_loop(model, opt, sched, config, pooled, bank_t, by_concept, gen, rng, n_concepts, batch, labels) -> None:
    bank_size = bank_t.shape[1]
    for _ in range(config.steps):
        chosen = torch.randperm(n_concepts, generator=gen)[:batch].numpy()
        text_idx = np.array([rng.choice(by_concept[ci]) for ci in chosen])
        sample_idx = rng.integers(bank_size, size=batch)
        t = model.text_proj(pooled[text_idx])
        e = model.expr_enc(bank_t[chosen, sample_idx])
        logits = t @ e.T / config.temperature
        loss = 0.5 * (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.T, labels))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()


def _cache(encoder, config: EvaluatorConfig) -> NpzCache:
    key = content_key(asdict(config), encoder.name, encoder.checksum, knowledge_fingerprint(),
                      torch.__version__.split("+")[0])
    return NpzCache(f"retrieval-evaluator-{key[:20]}.npz", key)


def load_evaluator(encoder=None, config: EvaluatorConfig = EvaluatorConfig(), use_cache: bool = True
                   ) -> RetrievalEvaluator:
    """The cached evaluator for this config and encoder, training (and caching) it when there is none."""
    if encoder is None:
        encoder = load_text_encoder("minilm", device="cpu")
    cache = _cache(encoder, config)
    state = cache.read() if use_cache else None
    if state is not None:
        model = RetrievalEvaluator(encoder.dim, config)
        try:
            model.load_state_dict({name: torch.from_numpy(value) for name, value in state.items()})
        except RuntimeError:  # the arrays of another architecture: train
            state = None
        else:
            model.eval()
            model.encoder = encoder
            return model
    model = train_evaluator(encoder, config)
    if use_cache:
        cache.write({name: value.detach().cpu().numpy() for name, value in model.state_dict().items()})
    return model


__all__ = ["EvaluatorConfig", "RetrievalEvaluator", "WRAPPERS", "knowledge_fingerprint", "load_evaluator",
           "train_evaluator", "training_pairs"]
