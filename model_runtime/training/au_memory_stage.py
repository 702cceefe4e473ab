"""The AU memory's training stage (models/au_memory.py): deterministic, on frozen sentence embeddings, after the rest.

It fills the memory with the training phrases (held-out concepts and phrasings are never in it), calibrates the
novelty threshold, and fits the memory's AU heads, each from its own seed. Its first settings (temperature 0.2, top 20
concepts, AUs present above 0.25, the vote and one head averaged) were chosen by a 5-fold cross-validation over the
training concepts, before any held-out run: the best smaller of the AU precision and recall gains over nearest-phrase
retrieval on left-out concepts. The shipped five heads with the vote weighing 0.25 were chosen the same way on the
project's concept cross-validation (benchmarks/bench_concept_cv.py), on the 63 concepts outside `i2fet evaluate`'s
held-out 11, and so were the frame, its map and the presence threshold (configs/i2fet.toml).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..actions import content_text
from ..encoders.minilm import english_words
from ..glosses import all_glosses, gloss_rows
from ..models.au_memory import AUMemory
from ..models.au_space import concept_au_targets
from ..models.config import I2FETConfig
from .arkit_data import probe_text, training_concepts, training_phrases
from .roget import roget_phrases

HEAD_EPOCHS = 300
HEAD_LR = 1e-2
HEAD_WEIGHT_DECAY = 0.1
FRAME_MAP_RIDGE = 1e-2  # on X^T X of some 21,700 unit vectors: a light hold on the map's small directions


@dataclass(frozen=True)
class MemoryData:
    keys: np.ndarray  # (phrases, text_dim) unit sentence embeddings
    owners: np.ndarray  # (phrases,) concept row of each phrase
    groups: np.ndarray  # (concepts, longest) phrase rows of each concept, -1 padded
    core: np.ndarray  # (concepts, AUs) 1 for core AUs
    intensity: np.ndarray  # (concepts, AUs) FACS intensity of the core AUs
    presence: np.ndarray  # (concepts, AUs) the head's presence targets (variants at the rate samples show them)
    probes: np.ndarray  # (n, text_dim) a templated instruction of each phrase, as the run time embeds it
    probe_rows: np.ndarray  # (n,) the phrase row each probe came from
    frame_map: np.ndarray | None = None  # (text_dim, text_dim) plain -> framed, when the memory reads through one
    weights: np.ndarray | None = None  # (phrases,) each phrase's weight in the heads' fit, mean 1; None: all alike
    gloss_codes: np.ndarray | None = None  # (words, text_dim) int8 gloss embeddings, when the memory reads glosses
    gloss_scale: np.ndarray | None = None  # (words,) their scales
    gloss_keys: np.ndarray | None = None  # (phrases, text_dim) the keys read with their phrases' glosses


def _embed(encoder, texts: list[str]) -> np.ndarray:
    return np.concatenate([encoder.encode(texts[i:i + 128]).pooled.float().cpu().numpy()
                           for i in range(0, len(texts), 128)]).astype(np.float32)


def fit_frame_map(encoder, frame: str, texts: list[str]) -> np.ndarray:
    """(text_dim, text_dim) W with |plain @ W| close to the framed embedding: ridge regression from the plain to the
    framed sentence embeddings of the English words (encoders.minilm.english_words) and `texts`. Labels play no part:
    it learns what the frame does to the encoder's space, not what any word means for a face."""
    words = sorted(set(english_words()) | set(texts))
    plain = _embed(encoder, words).astype(np.float64)
    framed = _embed(encoder, [frame.format(w) for w in words]).astype(np.float64)
    gram = plain.T @ plain + FRAME_MAP_RIDGE * np.eye(plain.shape[1])
    return np.linalg.solve(gram, plain.T @ framed).astype(np.float32)


def _in_frame(plain: np.ndarray, frame_map: np.ndarray) -> np.ndarray:
    """AUMemory.in_frame in numpy, kept apart: the shipped weights' novelty threshold was calibrated on this
    arithmetic, and torch's differs in the last bit (some 1e-7), enough to move it and break bench_retrain."""
    mapped = plain @ frame_map
    return (mapped / np.linalg.norm(mapped, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)


def gloss_table(encoder) -> tuple[np.ndarray, np.ndarray]:
    """The sentence embeddings of every gloss (glosses.all_glosses), as int8 codes and a scale per row."""
    table = _embed(encoder, list(all_glosses()))
    scale = np.abs(table).max(1) / 127.0
    return np.round(table / scale[:, None]).astype(np.int8), scale.astype(np.float32)


def _with_glosses(sentences: np.ndarray, texts: list[str], codes: np.ndarray, scale: np.ndarray,
                  weight: float) -> np.ndarray:
    """AUMemory.gloss_vectors and with_glosses in numpy (the glossed reading): each row plus `weight` times the unit
    mean of its text's words' gloss embeddings, made unit again; rows whose text has no glossed word stay as they
    are."""
    out = sentences.astype(np.float64).copy()
    for i, text in enumerate(texts):
        rows = gloss_rows(text)
        if rows:
            mean = (codes[rows].astype(np.float64) * scale[rows, None]).mean(0)
            out[i] += weight * mean / np.linalg.norm(mean)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def memory_phrases(roget: bool = False) -> dict[str, tuple[str, ...]]:
    """concept -> the phrases the memory holds: the training phrases and, with `roget`, the concept's Roget words. Only
    training concepts hold any, so a held-out concept's Roget words stay out with it."""
    phrases = training_phrases()
    if not roget:
        return phrases
    extra = roget_phrases()
    return {name: own + extra.get(name, ()) for name, own in phrases.items()}


def memory_data(encoder, content_words: bool = False, frame: str = "{}", frame_map: bool = False,
                roget: bool = False, glosses: bool = False, gloss_weight: float = 1.0) -> MemoryData:
    """The training phrases and their concepts' AUs, embedded with `encoder` (the run time's sentence embedding) in
    `frame`; with `content_words`, the novelty probes are their content words, as the run time then reads segments.
    The probes are embedded as the run time reads them: in the frame, or with `frame_map` plain and then mapped by the
    map fitted here (MemoryData.frame_map). With `roget`, the training concepts also hold their Roget words. With
    `glosses`, the phrases are also read with their words' glosses beside them (`gloss_weight`; gloss_keys), as the
    run time's glossed reading reads a text (AUMemory.with_glosses)."""
    phrases = memory_phrases(roget)
    concepts = [c for c in training_concepts() if phrases[c.name]]
    texts, owners = [], []
    for row, concept in enumerate(concepts):
        texts.extend(phrases[concept.name])
        owners.extend([row] * len(phrases[concept.name]))
    owners_arr = np.asarray(owners, dtype=np.int64)
    longest = max(len(phrases[c.name]) for c in concepts)
    groups = np.full((len(concepts), longest), -1, dtype=np.int64)
    for row in range(len(concepts)):
        members = np.flatnonzero(owners_arr == row)
        groups[row, :len(members)] = members
    targets = [concept_au_targets(c) for c in concepts]
    presence = np.stack([p for p, _ in targets])
    probes, probe_rows = [], []
    for row, text in enumerate(texts):
        probe = probe_text(text)
        if probe is not None:
            probes.append(content_text(probe) if content_words else probe)
            probe_rows.append(row)
    mapping = fit_frame_map(encoder, frame, texts + probes) if frame_map else None
    read = _in_frame(_embed(encoder, probes), mapping) if mapping is not None else \
        _embed(encoder, [frame.format(p) for p in probes])
    keys = _embed(encoder, [frame.format(t) for t in texts])
    codes = scale = glossed = None
    if glosses:
        codes, scale = gloss_table(encoder)
        glossed = _with_glosses(keys, texts, codes, scale, gloss_weight)
    return MemoryData(keys=keys, owners=owners_arr, groups=groups,
                      core=(presence >= 1.0).astype(np.float32), intensity=np.stack([i for _, i in targets]),
                      presence=presence, probes=read, probe_rows=np.asarray(probe_rows), frame_map=mapping,
                      weights=_roget_weights(concepts, groups) if roget else None, gloss_codes=codes,
                      gloss_scale=scale, gloss_keys=glossed)


def _roget_weights(concepts, groups: np.ndarray) -> np.ndarray:
    """The heads' weight of each phrase when the memory holds Roget's words: every concept weighs the same, and its
    Roget words together weigh what its own phrases weigh. Unweighted, the 1,900 Roget words (up to 200 a concept
    against 4 to 12 of its own) drown the knowledge base's names of each face: known words such as "contempt" lost
    their AUs in the concept cross-validation."""
    own = training_phrases()
    weights = np.zeros(int((groups >= 0).sum()), dtype=np.float64)
    for row, concept in enumerate(concepts):
        members = groups[row][groups[row] >= 0]
        n_own = len(own[concept.name])
        n_extra = len(members) - n_own
        weights[members[:n_own]] = (0.5 if n_extra else 1.0) / n_own
        if n_extra:
            weights[members[n_own:]] = 0.5 / n_extra
    return (weights / weights.mean()).astype(np.float32)


def sized(cfg: I2FETConfig, data: MemoryData) -> I2FETConfig:
    """`cfg` with the memory's shapes set from `data`."""
    words = 0 if data.gloss_codes is None else len(data.gloss_codes)
    return replace(cfg, memory=replace(cfg.memory, phrases=len(data.keys), concepts=len(data.groups),
                                       longest=data.groups.shape[1], text_dim=data.keys.shape[1], gloss_words=words))


def novelty_threshold(data: MemoryData) -> tuple[float, float]:
    """The cosine below which a text's nearest training phrase marks it as a new concept rather than a new phrasing,
    and the balanced accuracy it reaches. Each probe is seen twice: with its own concept taken out of the memory
    (a new concept) and with only its own phrase taken out (a new phrasing of a trained concept)."""
    sims = data.probes @ data.keys.T
    own = data.owners[data.probe_rows][:, None] == data.owners[None, :]
    new_concept = np.where(own, -1.0, sims).max(1)
    self_hit = np.arange(len(data.keys))[None, :] == data.probe_rows[:, None]
    kept = own & ~self_hit
    has_other = kept.any(1)
    new_phrasing = np.where(self_hit, -1.0, sims).max(1)[has_other]
    candidates = np.unique(np.concatenate([new_concept, new_phrasing]))
    best, best_acc = 0.0, -1.0
    for threshold in candidates:
        acc = 0.5 * ((new_concept < threshold).mean() + (new_phrasing >= threshold).mean())
        if acc > best_acc:
            best, best_acc = float(threshold), float(acc)
    return best, best_acc


def fit_au_memory(memory: AUMemory, data: MemoryData, seed: int) -> dict:
    """Fill `memory` from `data`, calibrate its novelty threshold, fit its head; returns what the card reports."""
    device = memory.keys.device
    with torch.no_grad():
        memory.keys.copy_(torch.as_tensor(data.keys))
        memory.groups.copy_(torch.as_tensor(data.groups))
        memory.core.copy_(torch.as_tensor(data.core))
        memory.intensity.copy_(torch.as_tensor(data.intensity))
        threshold, accuracy = novelty_threshold(data)
        memory.novelty.fill_(threshold)
        if memory.cfg.frame_map != (data.frame_map is not None):
            raise ValueError("the memory reads through a frame map exactly when its data carries one")
        if data.frame_map is not None:
            memory.frame_map.copy_(torch.as_tensor(data.frame_map))
        if memory.cfg.glosses != (data.gloss_codes is not None):
            raise ValueError("the memory reads glosses exactly when its data carries their table")
        if data.gloss_codes is not None:
            memory.gloss_codes.copy_(torch.as_tensor(data.gloss_codes))
            memory.gloss_scale.copy_(torch.as_tensor(data.gloss_scale))
            memory.gloss_keys.copy_(torch.as_tensor(data.gloss_keys))
    x = torch.as_tensor(data.keys, device=device)
    presence = torch.as_tensor(data.presence[data.owners], device=device)
    intensity = torch.as_tensor(data.intensity[data.owners], device=device)
    core = torch.as_tensor(data.core[data.owners], device=device)
    weights = None if data.weights is None else torch.as_tensor(data.weights, device=device)[:, None]
    losses = [_fit_head(head, int(seed) * 1_000_003 + 7 + k, x, presence, intensity, core, weights)
              for k, head in enumerate(memory.heads)]
    if memory.gloss_heads is not None:  # their own seeds, after the plain heads': those stay as without glosses
        glossed = torch.as_tensor(data.gloss_keys, device=device)
        losses += [_fit_head(head, int(seed) * 1_000_003 + 7 + len(memory.heads) + k, glossed, presence, intensity,
                             core, weights) for k, head in enumerate(memory.gloss_heads)]
    return {"phrases": len(data.keys), "concepts": len(data.groups), "novelty": round(threshold, 4),
            "novelty_balanced_accuracy": round(accuracy, 3), "head_loss": round(float(np.mean(losses)), 4)}


def _fit_head(head: torch.nn.Module, seed: int, x, presence, intensity, core, weights=None) -> float:
    """Fit one AU head from `seed` (presence BCE + core-AU intensity error, each phrase by its `weights` row when
    given); returns its last loss."""
    torch.manual_seed(seed)
    for layer in head:
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    opt = torch.optim.AdamW(head.parameters(), lr=HEAD_LR, weight_decay=HEAD_WEIGHT_DECAY)
    head.train()
    for _ in range(HEAD_EPOCHS):
        logits, raw = head(x).chunk(2, -1)
        if weights is None:  # the unweighted sums as the shipped heads were fitted, bit for bit
            loss = F.binary_cross_entropy_with_logits(logits, presence) + \
                ((torch.sigmoid(raw) - intensity) ** 2 * core).sum() / core.sum().clamp_min(1.0)
        else:
            loss = (F.binary_cross_entropy_with_logits(logits, presence, reduction="none") * weights).mean() + \
                ((torch.sigmoid(raw) - intensity) ** 2 * core * weights).sum() / (core * weights).sum().clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    head.eval()
    return float(loss.detach())
