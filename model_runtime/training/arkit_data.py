"""Training and evaluation data the project generates itself from the FACS knowledge base, and its training batches.

Instructions are built from templates x the concepts' phrases, with intensity, speed, manner, timing and side words,
and as sequences ("X, then Y", "from X to Y"). Every instruction is parsed by the runtime's own parser, so the model is
trained on exactly the segment texts it will see at run time. Targets are sampled from the knowledge base
(`sample_concept_weights`: core AUs always, variants sometimes, intensity jitter, slight asymmetry); transitions come
from a small dynamics model (quadratic ease-in-out, per-channel onset offsets by face region and manner, occasional blinks).

Held out for evaluation, never trained on: whole concepts (`HELDOUT_CONCEPTS`), one phrase of each other concept that
has enough phrases (`heldout_phrases()`), and whole templates (`HELDOUT_TEMPLATES`). The split is a pure function of
the knowledge base and the constants below, so it is the same on every machine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch

from ..expression_space import AU_NAMES, AU_TO_CHANNELS, CHANNEL_INDEX, NUM_CHANNELS
from ..instructions import parse_instruction
from ..knowledge import FACS_LETTERS, AUActivation, Concept, all_concepts, get_concept, sample_concept_weights
from ..models.au_space import AUS, concept_au_targets
from ..models.config import I2FETConfig
from ..models.features import MANNER_VOCAB, WARP_LIMIT, ease, manner_vector, warp
from . import say
from .texts import encode_texts

SPLITS = ("heldout_concepts", "heldout_phrasings")

HELDOUT_CONCEPTS: tuple[str, ...] = (
    "awed",             # surprise, Du compound
    "appalled",         # disgust, Du compound
    "sadly_fearful",    # fear, Du compound
    "optimism",         # happy, GoEmotions
    "disappointment",   # sad, GoEmotions
    "annoyance",        # anger, GoEmotions
    "realization",      # surprise, GoEmotions
    "beam",             # happy, action
    "scowl",            # anger, action
    "sneer",            # contempt, action
    "squint",           # other, action
)
"""Concepts whose phrases and labels never appear in training (spread over families; no basic emotion, no neutral)."""

TRAIN_TEMPLATES: tuple[str, ...] = (
    "{p}", "{p}, please", "now {p}", "show {p}", "express {p}", "portray {p}", "make it {p}", "just {p}",
    "give me {p}", "I want {p}", "{p} face", "{p} expression", "a face that says {p}", "act out {p}",
    "something like {p}", "with a look of {p}", "switch to {p}", "{p} now", "do {p}", "the character: {p}",
)
HELDOUT_TEMPLATES: tuple[str, ...] = (
    "convey {p}", "the avatar displays {p}", "put on {p}", "let the face show {p}",
)
"""Templates only used for evaluation items."""

INTENSITY_WORDS = ("slightly", "a bit", "very", "extremely", "subtly", "a little", "really", "barely", "intensely")
SPEED_WORDS = ("slowly", "gradually", "quickly", "suddenly", "gently", "abruptly", "rapidly")
MANNER_WORDS = ("nervously", "shyly", "hesitantly", "playfully", "smoothly", "steadily", "calmly", "briefly",
                "awkwardly", "cheerfully", "coldly", "wearily", "jerkily")
TIMING_PHRASES = ("over 2 seconds", "in half a second", "for 1 second", "over 1.5 seconds", "and hold for 2 seconds",
                  "in 10 frames", "over a second")
SIDE_PHRASES = {"left": ("on the left", "on the left side", "with the left side"),
                "right": ("on the right", "on the right side", "with the right side")}
SEQUENCE_TEMPLATES = ("{x}, then {y}", "{x} and then {y}", "from {x} to {y}", "go from {x} to {y}", "{x}, then {y}",
                      "{x} then {y}", "start {x}, then {y}", "transform the face from {x} to {y}")


@dataclass(frozen=True)
class EvalItem:
    instruction: str      # e.g. "look astonished"  (single segment)
    concept: str          # knowledge-base concept name it was generated from
    family: str           # concept family ("happy", "surprise", ...)
    split: str            # "heldout_concepts" | "heldout_phrasings"


@dataclass(frozen=True)
class SegmentTarget:
    """One parsed segment of a training instruction and the concept it must arrive at."""

    text: str
    concept: str
    side: str | None
    intensity: float | None
    speed: str | None
    manner: tuple[str, ...]
    is_start: bool


@dataclass(frozen=True)
class TrainItem:
    instruction: str
    segments: tuple[SegmentTarget, ...]
    phrases: tuple[str, ...] = field(default=())  # the knowledge-base phrases it was built from
    templates: tuple[str, ...] = field(default=())


def stable_hash(text: str) -> int:
    """A hash of `text` that is the same in every process and on every machine (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _phrases(c: Concept) -> tuple[str, ...]:
    return tuple(dict.fromkeys((c.label, *c.phrases)))


@lru_cache(maxsize=1)
def heldout_phrases() -> dict[str, str]:
    """concept -> its one held-out phrase, for training concepts with at least 5 phrases (label never held out)."""
    banned = {p for name in HELDOUT_CONCEPTS for p in _phrases(get_concept(name))}
    out = {}
    for c in all_concepts():
        if c.name in HELDOUT_CONCEPTS or c.name == "neutral":
            continue
        own = _phrases(c)
        others = [q for d in all_concepts() for q in _phrases(d)]
        candidates = [p for p in own if p != c.label and p not in banned
                      and not any(q != p and (f" {q} " in f" {p} " or f" {p} " in f" {q} ") for q in others)]
        if len(own) < 5 or not candidates:
            continue
        out[c.name] = min(candidates, key=lambda p: stable_hash(f"{c.name}|{p}"))
    return out


@lru_cache(maxsize=1)
def training_concepts() -> tuple[Concept, ...]:
    return tuple(c for c in all_concepts() if c.name not in HELDOUT_CONCEPTS)


@lru_cache(maxsize=1)
def _forbidden_phrases() -> frozenset[str]:
    """Phrases that must never reach training: those of held-out concepts and the held-out phrasings."""
    out = {p for name in HELDOUT_CONCEPTS for p in _phrases(get_concept(name))}
    out |= set(heldout_phrases().values())
    return frozenset(out)


@lru_cache(maxsize=1)
def training_phrases() -> dict[str, tuple[str, ...]]:
    """concept -> phrases usable in training (held-out concepts absent; held-out phrasings removed)."""
    forbidden = _forbidden_phrases()
    return {c.name: tuple(p for p in _phrases(c) if p not in forbidden) for c in training_concepts()}


def train_split_concepts() -> tuple[Concept, ...]:
    """The knowledge base as training saw it: training concepts only, held-out phrasings removed. A retrieval
    baseline built on these (`ConceptIndex(encoder, concepts=train_split_concepts())`) is the fair comparison for
    the held-out splits, since the full knowledge base contains the held-out phrases verbatim."""
    phrases = training_phrases()
    return tuple(replace(c, phrases=tuple(p for p in phrases[c.name] if p != c.label)) for c in training_concepts())


def _single_segment(instruction: str):
    try:
        parsed = parse_instruction(instruction)
    except Exception:  # noqa: BLE001 - a template that does not parse is simply not used
        return None
    if len(parsed.segments) != 1 or parsed.segments[0].kind != "expression" or parsed.unplaced:
        return None
    return parsed.segments[0]


@lru_cache(maxsize=4)
def _all_heldout(split: str) -> tuple[EvalItem, ...]:
    items = []
    if split == "heldout_concepts":
        for name in HELDOUT_CONCEPTS:
            c = get_concept(name)
            for p in _phrases(c):
                for t in TRAIN_TEMPLATES[:6] + HELDOUT_TEMPLATES:
                    items.append(EvalItem(t.format(p=p), c.name, c.family, split))
    elif split == "heldout_phrasings":
        held = heldout_phrases()
        for c in training_concepts():
            if c.name == "neutral":
                continue
            for t in HELDOUT_TEMPLATES:  # a trained phrase in a template never trained on
                for p in training_phrases()[c.name][:3]:
                    items.append(EvalItem(t.format(p=p), c.name, c.family, split))
            if c.name in held:  # a phrase never trained on, in any template
                for t in TRAIN_TEMPLATES[:6] + HELDOUT_TEMPLATES:
                    items.append(EvalItem(t.format(p=held[c.name]), c.name, c.family, split))
    else:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    seen, out = set(), []
    for item in items:
        if item.instruction in seen or _single_segment(item.instruction) is None:
            continue
        seen.add(item.instruction)
        out.append(item)
    return tuple(out)


def probe_text(phrase: str) -> str | None:
    """The segment text the run time makes of `phrase` inside one training template (chosen by the phrase's hash), or
    None when that instruction is not one expression segment."""
    template = TRAIN_TEMPLATES[stable_hash(f"probe|{phrase}") % len(TRAIN_TEMPLATES)]
    segment = _single_segment(template.format(p=phrase))
    return None if segment is None else segment.text


def hold_out_concepts(names: tuple[str, ...]) -> None:
    """Hold out `names` instead of HELDOUT_CONCEPTS in this process (concept-level cross-validation,
    benchmarks/bench_concept_cv.py): every split function above reads the new set from then on."""
    global HELDOUT_CONCEPTS
    unknown = [n for n in names if n not in {c.name for c in all_concepts()}]
    if unknown or "neutral" in names:
        raise ValueError(f"cannot hold out {', '.join(unknown) or 'neutral'}")
    HELDOUT_CONCEPTS = tuple(names)
    for cached in (heldout_phrases, training_concepts, _forbidden_phrases, training_phrases, _all_heldout):
        cached.cache_clear()


def heldout_items(split: str, n: int | None = None, seed: int = 0) -> list[EvalItem]:
    """Evaluation instructions (single segment each) of one split; `n` items drawn without replacement by `seed`."""
    items = list(_all_heldout(split))
    if n is None or n >= len(items):
        return items
    order = np.random.default_rng(seed).permutation(len(items))[:n]
    return [items[i] for i in sorted(order)]


# --------------------------------------------------------------------------------------------------------------------
# Training instructions
# --------------------------------------------------------------------------------------------------------------------
def _decorate(rng: np.random.Generator, phrase: str) -> str:
    """Add intensity / speed / manner / timing words around a phrase (each with some probability)."""
    text = phrase
    if rng.random() < 0.3:
        text = f"{rng.choice(INTENSITY_WORDS)} {text}"
    if rng.random() < 0.25:
        text = f"{rng.choice(SPEED_WORDS)} {text}" if rng.random() < 0.5 else f"{text} {rng.choice(SPEED_WORDS)}"
    if rng.random() < 0.15:
        text = f"{rng.choice(MANNER_WORDS)} {text}"
    if rng.random() < 0.2:
        text = f"{text} {rng.choice(TIMING_PHRASES)}"
    return text


def _segment_target(seg, concept: str) -> SegmentTarget:
    return SegmentTarget(text=seg.text, concept=concept, side=seg.side, intensity=seg.intensity, speed=seg.speed,
                         manner=tuple(seg.manner), is_start=bool(seg.is_start))


def training_items(seed: int, n_single: int = 9000, n_sequence: int = 2500,
                   n_plain_templates: int = 0) -> list[TrainItem]:
    """Parsed training instructions: single expressions (with modifiers and sides) and two/three-part sequences.

    Never contains a held-out concept, phrase or template (see tests/test_models.py)."""
    rng = np.random.default_rng([seed, 7])
    concepts = [c for c in training_concepts()]
    phrases = training_phrases()
    items: list[TrainItem] = []
    # every (concept, phrase, template) once, plain: the core of the data
    for c in concepts:
        for p in phrases[c.name]:
            for t in TRAIN_TEMPLATES[:n_plain_templates or None]:
                text = t.format(p=p)
                seg = _single_segment(text)
                if seg is not None:
                    items.append(TrainItem(text, (_segment_target(seg, c.name),), (p,), (t,)))
    # decorated singles, some one-sided
    tries = 0
    target = len(items) + n_single
    while len(items) < target and tries < n_single * 3:
        tries += 1
        c = concepts[rng.integers(len(concepts))]
        p = phrases[c.name][rng.integers(len(phrases[c.name]))]
        t = TRAIN_TEMPLATES[rng.integers(len(TRAIN_TEMPLATES))]
        inner = _decorate(rng, p)
        if rng.random() < 0.2:
            side = "left" if rng.random() < 0.5 else "right"
            inner = f"{inner} {rng.choice(SIDE_PHRASES[side])}"
        text = t.format(p=inner)
        seg = _single_segment(text)
        if seg is None:
            continue
        items.append(TrainItem(text, (_segment_target(seg, c.name),), (p,), (t,)))
    # sequences
    made = 0
    tries = 0
    while made < n_sequence and tries < n_sequence * 3:
        tries += 1
        picks = [concepts[rng.integers(len(concepts))] for _ in range(2)]
        ps = [phrases[c.name][rng.integers(len(phrases[c.name]))] for c in picks]
        form = SEQUENCE_TEMPLATES[rng.integers(len(SEQUENCE_TEMPLATES))]
        parts = [_decorate(rng, p) if rng.random() < 0.5 else p for p in ps]
        text = form.format(x=parts[0], y=parts[1])
        back = rng.random() < 0.15
        if back:
            text += ", then return to neutral"
        try:
            parsed = parse_instruction(text)
        except Exception:  # noqa: BLE001
            continue
        segs = [s for s in parsed.segments if s.kind != "return"]
        if len(segs) != 2 or parsed.unplaced or any(s.kind != "expression" for s in segs):
            continue
        items.append(TrainItem(text, tuple(_segment_target(s, c.name) for s, c in zip(segs, picks)), tuple(ps),
                               (form,)))
        made += 1
    return items


# --------------------------------------------------------------------------------------------------------------------
# Texts that name action units: the FACS names as words the model can compose
# --------------------------------------------------------------------------------------------------------------------
_FACS_SOURCE = "FACS action-unit name (Ekman, Friesen & Hager 2002); training text only"
_FULL_AUS = frozenset({25, 43, 61, 62, 63, 64})  # all-or-nothing AUs, at E as in knowledge._facs


def _au_activation(au: int) -> AUActivation:
    return AUActivation(au, FACS_LETTERS["E" if au in _FULL_AUS else "C"])


def _channels(au: int) -> frozenset[str]:
    return frozenset(name for name, _ in AU_TO_CHANNELS[au])


def au_name_concept(aus: tuple[int, ...]) -> Concept:
    """A training-only concept for a list of AUs named by their FACS names ("lid tightener plus lip pressor")."""
    text = " plus ".join(AU_NAMES[au] for au in aus)
    return Concept(name="au_" + "_".join(map(str, aus)), label=text, family="other", kind="action",
                   aus=tuple(_au_activation(au) for au in aus), extra=(), phrases=(text,), source=_FACS_SOURCE)


def au_text_concepts(count: int, seed: int) -> tuple[Concept, ...]:
    """Every single AU the model can name, then `count` - that many random combinations of two or three AUs that
    drive different channels (so the combination is their union), each as an au_name_concept."""
    singles = [au_name_concept((au,)) for au in AUS]
    rng = np.random.default_rng([seed, 29])
    combos: dict[tuple[int, ...], Concept] = {}
    tries = 0
    while len(singles) + len(combos) < count and tries < count * 20:
        tries += 1
        picks = tuple(int(a) for a in rng.choice(AUS, size=int(rng.integers(2, 4)), replace=False))
        used = [_channels(au) for au in picks]
        if any(a & b for i, a in enumerate(used) for b in used[i + 1:]):
            continue
        combos.setdefault(picks, au_name_concept(picks))
    return tuple(singles + list(combos.values()))[:max(count, 0)]


def described(concept: Concept, phrase: str) -> str:
    """"<phrase> showing <its core AUs' FACS names>": the phrase and the AUs that make it, in one text."""
    names = [AU_NAMES[a.au] for a in concept.aus if a.core and a.au in AU_NAMES]
    return f"{phrase} showing {' plus '.join(dict.fromkeys(names))}" if names else phrase


def au_items(concepts: tuple[Concept, ...]) -> list[TrainItem]:
    """One plain item per AU-naming concept (its text parsed like any instruction)."""
    items = []
    for c in concepts:
        seg = _single_segment(c.label)
        if seg is not None:
            items.append(TrainItem(c.label, (_segment_target(seg, c.name),), (c.label,), ("{p}",)))
    return items


def description_items() -> list[TrainItem]:
    """Every training phrase with its core AUs' FACS names ('described'), targeting its concept."""
    items = []
    for c in training_concepts():
        for p in training_phrases()[c.name]:
            text = described(c, p)
            seg = _single_segment(text)
            if seg is not None and text != p:
                items.append(TrainItem(text, (_segment_target(seg, c.name),), (p,), ("{p} showing <AUs>",)))
    return items


# --------------------------------------------------------------------------------------------------------------------
# Expression targets
# --------------------------------------------------------------------------------------------------------------------
SIDES = (None, "left", "right")


def sample_pool(concepts, per: int, seed: int, variant_prob: float = 0.35) -> np.ndarray:
    """(len(concepts), 3 sides, per, 52) float32 sampled instances (side None/left/right) of each concept, each
    variant AU shown with probability `variant_prob` (the rng's draws are the same whatever it is)."""
    rng = np.random.default_rng([seed, 11])
    pool = np.zeros((len(concepts), len(SIDES), per, NUM_CHANNELS), dtype=np.float32)
    for i, c in enumerate(concepts):
        for j, side in enumerate(SIDES):
            for k in range(per):
                intensity = rng.uniform(0.85, 1.1)
                pool[i, j, k] = sample_concept_weights(c, rng, intensity=intensity, side=side,
                                                       variant_prob=variant_prob)
    return pool


# --------------------------------------------------------------------------------------------------------------------
# The dynamics model (ground truth for the transition model)
# --------------------------------------------------------------------------------------------------------------------
_JITTERY = frozenset({"nervously", "hesitantly", "anxiously", "cautiously", "tentatively", "jerkily", "awkwardly",
                      "shyly"})
_SMOOTH = frozenset({"smoothly", "steadily"})
def _region_lead() -> np.ndarray:
    """Per-channel timing lead of the dynamics model: brows and eyes move first, the mouth and jaw follow, the
    Duchenne cheek raise lags the lip corners (a modelling choice consistent with 'AUs do not start together')."""
    lead = np.zeros(NUM_CHANNELS, dtype=np.float32)
    for name, i in CHANNEL_INDEX.items():
        if name.startswith("brow"):
            lead[i] = 0.45
        elif name.startswith("eyeWide") or name.startswith("eyeLook"):
            lead[i] = 0.3
        elif name.startswith("eyeSquint") or name.startswith("eyeBlink"):
            lead[i] = 0.1
        elif name.startswith("cheekSquint"):
            lead[i] = -0.35
        elif name.startswith("nose"):
            lead[i] = 0.05
        elif name.startswith("mouthSmile") or name.startswith("mouthFrown"):
            lead[i] = 0.0
        elif name.startswith("jaw"):
            lead[i] = -0.35
        elif name.startswith("mouth") or name.startswith("tongue"):
            lead[i] = -0.2
    return lead


REGION_LEAD = _region_lead()
def synth_warps(start: np.ndarray, end: np.ndarray, mv: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-channel warp coefficients of the dynamics model for one transition."""
    words = {MANNER_VOCAB[i] for i in np.flatnonzero(mv)}
    spread = 0.8
    noise = 0.08
    if "speed:sudden" in words or "speed:fast" in words:
        spread = 0.45
    elif "speed:slow" in words:
        spread = 1.0
    if words & _JITTERY:
        spread *= 1.15
        noise = 0.2
    if words & _SMOOTH:
        noise = 0.03
    direction = np.where(end >= start, 1.0, -0.6)  # releases keep the order, less spread
    k = REGION_LEAD * spread * direction + rng.normal(0.0, noise, NUM_CHANNELS)
    return np.clip(k, -WARP_LIMIT, WARP_LIMIT).astype(np.float32)


def synth_transition(start: np.ndarray, end: np.ndarray, num_frames: int, mv: np.ndarray,
                     rng: np.random.Generator, blink_prob: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(num_frames+1, 52) frames from start to end (inclusive) and the warps used; sometimes a blink in between."""
    k = synth_warps(start, end, mv, rng)
    u = np.linspace(0.0, 1.0, num_frames + 1, dtype=np.float32)[:, None]
    p = ease(warp(u, k[None]))
    frames = start[None] + (end - start)[None] * p
    if num_frames >= 8 and rng.random() < blink_prob:
        centre = rng.integers(2, num_frames - 2)
        width = max(2, num_frames // 8)
        t = np.arange(num_frames + 1)
        bump = np.clip(1.0 - np.abs(t - centre) / width, 0.0, 1.0) ** 2
        for ch in ("eyeBlinkLeft", "eyeBlinkRight"):
            i = CHANNEL_INDEX[ch]
            frames[:, i] = np.maximum(frames[:, i], bump)
    return np.clip(frames, 0.0, 1.0).astype(np.float32), k


# --------------------------------------------------------------------------------------------------------------------
# Training batches
# --------------------------------------------------------------------------------------------------------------------
class ArkitData:
    """Batches of generated ARKit training data: every training text encoded once, targets from a pre-sampled pool,
    each step's batch a pure function of (seed, step)."""

    def __init__(self, cfg: I2FETConfig, seed: int, encoder, work_dir: Path, progress: bool):
        tc = cfg.train
        self.cfg, self.seed = cfg, seed
        self.items = training_items(seed, n_single=tc.n_single, n_sequence=tc.n_sequence,
                                    n_plain_templates=tc.plain_templates)
        named = au_text_concepts(tc.au_texts, seed) if tc.au_texts else ()
        self.items += au_items(named) + (description_items() if tc.describe else [])
        self.concepts = training_concepts() + named
        self.au_presence, self.au_intensity = (np.stack(a) for a in zip(*(concept_au_targets(c)
                                                                           for c in self.concepts)))
        cindex = {c.name: i for i, c in enumerate(self.concepts)}
        texts: dict[str, int] = {}
        text_idx, concept_idx, side_idx, prev, manners = [], [], [], [], []
        for item in self.items:
            for j, seg in enumerate(item.segments):
                text_idx.append(texts.setdefault(seg.text, len(texts)))
                concept_idx.append(cindex[seg.concept])
                side_idx.append(SIDES.index(seg.side) if seg.side in SIDES else 0)
                prev.append(len(text_idx) - 2 if j > 0 else -1)
                manners.append(manner_vector(seg.speed, seg.manner))
        self.texts = list(texts)
        self.text_idx = np.asarray(text_idx)
        self.concept_idx = np.asarray(concept_idx)
        self.side_idx = np.asarray(side_idx)
        self.prev = np.asarray(prev)
        self.manners = np.stack(manners)
        if progress:
            say(f"{len(self.items)} instructions, {len(self.text_idx)} segments, {len(self.texts)} distinct texts, "
                 f"{len(self.concepts)} training concepts")
        self.tokens, self.mask = encode_texts(encoder, self.texts, tc.max_tokens, work_dir, progress)
        self.pool = sample_pool(self.concepts, tc.pool_per, seed, tc.variant_prob)
        self.flat_pool = self.pool[:, 0].reshape(-1, NUM_CHANNELS)

    def batch(self, step: int, device) -> dict:
        tc = self.cfg.train
        rng = np.random.default_rng([self.seed, step, 1])
        b = tc.batch_size
        idx = rng.integers(len(self.text_idx), size=b)
        ci, si = self.concept_idx[idx], self.side_idx[idx]
        target = self.pool[ci, si, rng.integers(tc.pool_per, size=b)]
        start = np.zeros_like(target)
        prev = self.prev[idx]
        has_prev = prev >= 0
        pp = prev[has_prev]
        start[has_prev] = self.pool[self.concept_idx[pp], self.side_idx[pp], rng.integers(tc.pool_per, size=len(pp))]
        other = ~has_prev & (rng.random(b) < 0.3)
        start[other] = self.flat_pool[rng.integers(len(self.flat_pool), size=int(other.sum()))]
        # the expression branch reads short sequences start -> target from the dynamics model, or the apex alone
        t = tc.sequence_frames
        u = np.linspace(0.0, 1.0, t, dtype=np.float32)[None, :, None]
        k = np.stack([synth_warps(s, e, self.manners[i], rng) for s, e, i in zip(start, target, idx)])
        seq = start[:, None] + (target - start)[:, None] * ease(warp(u, k[:, None]))
        seq_mask = np.ones((b, t), dtype=bool)
        static = rng.random(b) < 0.5
        seq[static, 0] = target[static]
        seq_mask[static, 1:] = False
        text_ids = self.text_idx[idx]
        mask = self.mask[text_ids]
        length = int(mask.sum(1).max())
        g = torch.Generator().manual_seed(int(self.seed) * 7_000_003 + step)
        return {
            "tokens": self.tokens[text_ids, :length].to(device, torch.float32),
            "mask": mask[:, :length].to(device),
            "start": torch.as_tensor(start, device=device), "target": torch.as_tensor(target, device=device),
            "side": torch.as_tensor(si, device=device), "labels": torch.as_tensor(ci, device=device),
            "au_presence": torch.as_tensor(self.au_presence[ci], device=device),
            "au_intensity": torch.as_tensor(self.au_intensity[ci], device=device),
            "seq": torch.as_tensor(seq.astype(np.float32), device=device), "seq_mask": torch.as_tensor(seq_mask, device=device),
            "noise": torch.randn(b, self.cfg.generator.z_dim, generator=g).to(device),
            **self.transition_batch(rng, device),
        }

    def transition_batch(self, rng, device) -> dict:
        tc = self.cfg.train
        b, p = tc.transition_batch, tc.transition_points
        start = self.flat_pool[rng.integers(len(self.flat_pool), size=b)].copy()
        start[rng.random(b) < 0.35] = 0.0
        end = self.flat_pool[rng.integers(len(self.flat_pool), size=b)].copy()
        end[rng.random(b) < 0.2] = 0.0
        manners = np.zeros((b, len(MANNER_VOCAB)), dtype=np.float32)
        speeds = rng.integers(4, size=b)
        manners[np.arange(b), speeds] = 1.0
        extra = rng.random(b) < 0.35
        manners[extra, rng.integers(4, len(MANNER_VOCAB), size=int(extra.sum()))] = 1.0
        k = np.stack([synth_warps(s, e, m, rng) for s, e, m in zip(start, end, manners)])
        u = np.linspace(0.0, 1.0, p, dtype=np.float32)
        frames = start[:, None] + (end - start)[:, None] * ease(warp(u[None, :, None], k[:, None]))
        blink = rng.random(b) < 0.1
        if blink.any():
            centre = rng.uniform(0.2, 0.8, size=int(blink.sum()))[:, None]
            bump = np.clip(1.0 - np.abs(u[None] - centre) / 0.12, 0.0, 1.0) ** 2
            for ch in ("eyeBlinkLeft", "eyeBlinkRight"):
                i = CHANNEL_INDEX[ch]
                frames[blink, :, i] = np.maximum(frames[blink, :, i], bump)
        return {"tr_start": torch.as_tensor(start, device=device), "tr_end": torch.as_tensor(end, device=device),
                "tr_manner": torch.as_tensor(manners, device=device), "tr_u": torch.as_tensor(u, device=device),
                "tr_frames": torch.as_tensor(frames.astype(np.float32), device=device)}


__all__ = [
    "ArkitData", "EvalItem", "au_text_concepts", "described", "description_items", "HELDOUT_CONCEPTS", "HELDOUT_TEMPLATES", "MANNER_VOCAB", "SPLITS", "SegmentTarget",
    "TRAIN_TEMPLATES", "TrainItem", "heldout_items", "heldout_phrases", "manner_vector", "sample_pool",
    "synth_transition", "train_split_concepts", "training_concepts", "training_items", "training_phrases",
]
