"""`i2fet evaluate`: every model on the same held-out items in one run, one table with the models side by side.

Per split (held-out concepts, held-out phrasings; items from `model_runtime.training.arkit_data.heldout_items`):

a. AU precision / recall of the apex expression (`active_aus` of the segment's apex frame) against the concept's core
   AUs (`concept_aus`, less AU11, which no ARKit pose can show apart from 6+10: `knowledge.UNDECODABLE_AUS`).
b. Emotion accuracy judged by the FER2013 classifier of the `fer` package (fer_judge.py) on front renders of the apex,
   over the items whose family is one of its seven classes; its accuracy on the knowledge base's own basic prototypes is
   printed as the ceiling.
c. Text -> expression R-precision (top 1, top 3) with the separately trained evaluator (retrieval_evaluator.py): each
   item's apex ranked against 31 apexes generated for other items of other concepts, by similarity to the item's
   segment text.
d. Diversity: mean pairwise L2 between the apexes generated with seeds seed..seed+4 for the same instruction.
e. Smoothness: mean |jerk| and |acceleration| of the transitions of "X, then Y" instructions built from pairs of
   items, against linear interpolation between the same endpoints over the same frames (ratio; goal jerk <= 0.5x).
f. Duration error: "X over T1 seconds, then Y for T2 seconds": |asked - produced| frames of X's transition and Y's
   hold (goal: within one frame).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..generators.baseline import RetrievalBaseline
from ..instructions import parse_instruction
from ..knowledge import UNDECODABLE_AUS, active_aus, concept_aus, concept_weights
from ..runtime import Runtime
from ..training.arkit_data import heldout_items, train_split_concepts
from . import metrics
from .fer_judge import FAMILY_TO_FER, load_judge, prototype_ceiling
from .retrieval_evaluator import load_evaluator

SPLITS: tuple[str, ...] = ("heldout_concepts", "heldout_phrasings")
DEFAULT_MODELS: tuple[str, ...] = ("i2fet", "baseline")
FPS = 30
POOL_SIZE = 32
DIVERSITY_SEEDS = 5
MAX_DIVERSITY_ITEMS = 32
MAX_SEQUENCES = 64
DURATION_CHOICES_S = (0.5, 1.0, 1.5, 2.0, 2.5)

GOALS: dict[str, tuple[str, str, float]] = {
    # metric key -> (description, comparison, threshold)
    "jerk_ratio": ("jerk <= 0.5x linear", "<=", 0.5),
    "duration_error_max": ("within one frame", "<=", 1.0),
    "diversity": ("> 0 (seeds give different samples)", ">", 0.0),
}

ROWS: tuple[tuple[str, str, str], ...] = (
    # key, label, format
    ("au_precision", "a. AU precision (apex vs core AUs)", "{:.3f}"),
    ("au_recall", "a. AU recall", "{:.3f}"),
    ("au_precision_strict", "a. AU precision, neutral apex as 0", "{:.3f}"),
    ("emotion_accuracy", "b. emotion accuracy (FER2013 judge)", "{:.3f}"),
    ("emotion_n", "b.   items judged (7 FER families)", "{:d}"),
    ("r_precision_top1", "c. R-precision top-1 (pool 32)", "{:.3f}"),
    ("r_precision_top3", "c. R-precision top-3", "{:.3f}"),
    ("diversity", "d. diversity (mean pairwise L2, 5 seeds)", "{:.4f}"),
    ("mean_jerk", "e. mean |jerk| (per frame^3)", "{:.2e}"),
    ("linear_mean_jerk", "e.   linear interpolation, same frames", "{:.2e}"),
    ("jerk_ratio", "e. jerk / linear", "{:.3f}"),
    ("mean_accel", "e. mean |accel| (per frame^2)", "{:.2e}"),
    ("accel_ratio", "e. accel / linear", "{:.3f}"),
    ("duration_error_mean", "f. duration error, mean (frames)", "{:.2f}"),
    ("duration_error_max", "f. duration error, max (frames)", "{:.2f}"),
)


def _goal_met(key: str, value) -> bool | None:
    if key not in GOALS or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    _, op, threshold = GOALS[key]
    return value <= threshold if op == "<=" else value > threshold


@dataclass
class EvaluationReport:
    models: tuple[str, ...]
    splits: tuple[str, ...]
    n: int | None
    seed: int
    device: str
    results: dict[str, dict[str, dict]]  # model -> split -> metric -> value
    encoder: str = "minilm"  # the text encoder both models read (the retrieval evaluator's is always MiniLM)
    weights: str | None = None  # the learned model's weights file; None: the shipped one
    unavailable: dict[str, str] = field(default_factory=dict)  # model -> why it could not be evaluated
    fer_ceiling: dict | None = None
    retrieval_reference: dict[str, dict] = field(default_factory=dict)  # split -> R-precision of KB prototypes
    fer_reference: dict[str, dict] = field(default_factory=dict)  # split -> FER accuracy on the items' KB prototypes
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def goals(self) -> dict[str, dict[str, bool | None]]:
        """metric -> model -> met (None where not measured), judged on every split (all must meet it)."""
        out: dict[str, dict[str, bool | None]] = {}
        for key in GOALS:
            out[key] = {}
            for model in self.models:
                if model in self.unavailable:
                    out[key][model] = None
                    continue
                verdicts = [_goal_met(key, self.results[model][s].get(key)) for s in self.splits]
                verdicts = [v for v in verdicts if v is not None]
                out[key][model] = all(verdicts) if verdicts else None
        return out

    def to_dict(self) -> dict:
        return {
            "schema": "i2fet.evaluation/1",
            "models": list(self.models), "splits": list(self.splits), "n": self.n, "seed": self.seed,
            "device": self.device, "encoder": self.encoder, "weights": self.weights, "fps": FPS, "results": self.results, "unavailable": dict(self.unavailable),
            "fer_ceiling": self.fer_ceiling, "fer_reference": self.fer_reference,
            "retrieval_reference": self.retrieval_reference,
            "goals": {k: {"goal": GOALS[k][0], "met": v} for k, v in self.goals().items()},
            "notes": list(self.notes), "seconds": round(self.seconds, 2),
        }

    def to_table(self) -> str:
        models = list(self.models)
        width = max(12, *(len(m) + 2 for m in models))
        head = f"{'metric':44}{'split':20}" + "".join(f"{m:>{width}}" for m in models) + "  goal"
        lines = [f"i2fet evaluate: seed {self.seed}, {self.n if self.n is not None else 'all'} items per split, "
                 f"{FPS} fps, device {self.device}, text encoder {self.encoder}"
                 f"{'' if self.weights is None else ', weights ' + self.weights}", head, "-" * len(head)]
        for key, label, fmt in ROWS:
            for split in self.splits:
                cells = []
                for m in models:
                    value = None if m in self.unavailable else self.results[m][split].get(key)
                    cells.append(_fmt(value, fmt))
                goal = ""
                if key in GOALS:
                    verdicts = [_goal_met(key, None if m in self.unavailable else self.results[m][split].get(key))
                                for m in models]
                    goal = GOALS[key][0] + ": " + ", ".join(
                        f"{m} {'-' if v is None else ('met' if v else 'NOT met')}" for m, v in zip(models, verdicts))
                lines.append(f"{label:44}{split:20}" + "".join(f"{c:>{width}}" for c in cells) + f"  {goal}")
        lines.append("")
        if self.fer_ceiling is not None:
            c = self.fer_ceiling
            wrong = ", ".join(f"{k}->{v}" for k, v in c["per_class"].items() if k != v) or "none"
            lines.append(f"FER judge ceiling on the knowledge base's 7 basic prototypes: {c['accuracy']:.3f} "
                         f"({round(c['accuracy'] * c['n'])}/{c['n']}; misread: {wrong}); on "
                         f"{c['sampled_n']} jittered instances: {c['sampled_accuracy']:.3f}")
        for split, ref in self.fer_reference.items():
            lines.append(f"FER judge on the items' own knowledge-base prototypes ({split}, the ceiling for row b): "
                         f"{ref['accuracy']:.3f} over {ref['n']} items")
        for split, ref in self.retrieval_reference.items():
            lines.append(f"Retrieval evaluator on the items' own knowledge-base prototypes ({split}): "
                         f"top-1 {ref['top1']:.3f}, top-3 {ref['top3']:.3f}")
        for model, why in self.unavailable.items():
            lines.append(f"{model}: not evaluated ({why})")
        lines.extend(self.notes)
        lines.append(f"({self.seconds:.1f} s)")
        return "\n".join(lines)


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


# ----------------------------------------------------------------------------------------------------------------
# The run

def _reference_aus(concept: str) -> frozenset[int]:
    return concept_aus(concept) - UNDECODABLE_AUS


def _main_segment(anim) -> dict:
    for seg in anim.segments:
        if seg.get("kind") != "return":
            return seg
    return anim.segments[0]


def _apexes(animations) -> np.ndarray:
    out = []
    for anim in animations:
        seg = _main_segment(anim)
        frame = min(int(seg["apex_frame"]), anim.frames.shape[0] - 1)
        out.append(np.asarray(anim.frames[frame], dtype=np.float32))
    return np.stack(out) if out else np.zeros((0, 52), np.float32)


def _segment_texts(items) -> list[str]:
    texts = []
    for item in items:
        segs = parse_instruction(item.instruction).segments
        texts.append(" ".join(s.text for s in segs) if segs else item.instruction)
    return texts


def _pools(items, seed: int) -> list[list[int]]:
    """For each item: [itself] + up to POOL_SIZE-1 other items of other concepts (same draw for every model)."""
    rng = np.random.default_rng([seed, 17])
    pools = []
    for q, item in enumerate(items):
        others = [j for j, o in enumerate(items) if o.concept != item.concept]
        k = min(POOL_SIZE - 1, len(others))
        pools.append([q] + [int(j) for j in rng.choice(others, size=k, replace=False)] if k else [q])
    return pools


def _retrieval(evaluator, text_emb: np.ndarray, apexes: np.ndarray, pools) -> tuple[float, float]:
    expr = evaluator.embed_expressions(apexes)
    ranks = [metrics.rank_of_true(text_emb[q] @ expr[pool].T, 0) for q, pool in enumerate(pools)]
    return metrics.r_precision(ranks, 1), metrics.r_precision(ranks, 3)


def _sequences(items, seed: int, timed: bool):
    """Pairs of items as two-part instructions; with `timed`, X gets an explicit transition and Y an explicit hold."""
    rng = np.random.default_rng([seed, 23 if timed else 19])
    order = rng.permutation(len(items))
    out = []
    for a, b in zip(order[0::2], order[1::2]):
        x, y = items[a].instruction, items[b].instruction
        if timed:
            t1, t2 = (float(v) for v in rng.choice(DURATION_CHOICES_S, size=2))
            out.append((f"{x} over {t1:g} seconds, then {y} for {t2:g} seconds", t1, t2))
        else:
            out.append((f"{x}, then {y}", None, None))
        if len(out) >= MAX_SEQUENCES:
            break
    return out


def _smoothness(runtime, sequences, seed: int) -> tuple[dict, int]:
    anims = runtime.generate_batch([s for s, _, _ in sequences], fps=FPS, seed=seed)
    found, skipped = [], 0
    for anim in anims:
        if len(anim.segments) != 2:
            skipped += 1
            continue
        for seg in anim.segments:
            start, apex = int(seg["start_frame"]), min(int(seg["apex_frame"]), anim.frames.shape[0] - 1)
            if apex - start >= 2:
                found.append(metrics.transition_smoothness(anim.frames, start, apex))
    return metrics.pooled_smoothness(found), skipped


def _durations(runtime, sequences, seed: int) -> tuple[list[float], int]:
    anims = runtime.generate_batch([s for s, _, _ in sequences], fps=FPS, seed=seed)
    errors, skipped = [], 0
    for anim, (_, t1, t2) in zip(anims, sequences):
        if len(anim.segments) != 2:
            skipped += 1
            continue
        first, second = anim.segments
        last_frame = anim.frames.shape[0] - 1
        produced_transition = min(first["apex_frame"], last_frame) - first["start_frame"]
        produced_hold = min(second["end_frame"], last_frame) - min(second["apex_frame"], last_frame)
        errors.append(metrics.duration_error(metrics.seconds_to_frames(t1, FPS), produced_transition))
        errors.append(metrics.duration_error(metrics.seconds_to_frames(t2, FPS), produced_hold))
        # Frames the segment list promises but the frame array lacks (or has beyond it) count too.
        errors.append(float(abs(anim.frames.shape[0] - (second["end_frame"] + 1))))
    return errors, skipped


def apex_au_scores(apexes: np.ndarray, items) -> np.ndarray:
    """(items, 2): AU precision and recall of each item's apex against its concept's reference AUs (row a, per item;
    the benchmarks that resample or re-compose it read the same numbers)."""
    return np.array([metrics.au_precision_recall(active_aus(a), _reference_aus(i.concept))
                     for a, i in zip(apexes, items)], dtype=np.float64).reshape(-1, 2)


def neutral_as_miss(scores: np.ndarray) -> np.ndarray:
    """Per-item AU precision from `apex_au_scores` with a neutral apex for a concept that has AUs counted as 0, not
    1: row a's convention (nothing shown, nothing false) rewards a face that shows nothing. Precision 1 with recall 0
    happens exactly then, so it is read from the pair."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, 2)
    return np.where((scores[:, 0] == 1.0) & (scores[:, 1] == 0.0), 0.0, scores[:, 0])


def _evaluate_split(runtime, items, evaluator, judge, text_emb, pools, seed: int) -> dict:
    anims = runtime.generate_batch([i.instruction for i in items], fps=FPS, seed=seed)
    apexes = _apexes(anims)
    pr = apex_au_scores(apexes, items)
    out: dict = {"n": len(items),
                 "au_precision": float(pr[:, 0].mean()) if len(pr) else float("nan"),
                 "au_recall": float(pr[:, 1].mean()) if len(pr) else float("nan"),
                 "au_precision_strict": float(neutral_as_miss(pr).mean()) if len(pr) else float("nan")}
    judged = [k for k, i in enumerate(items) if i.family in FAMILY_TO_FER]
    if judge is not None and judged:
        labels = judge.labels(judge.classify_weights(apexes[judged]))
        truth = [FAMILY_TO_FER[items[k].family] for k in judged]
        out["emotion_accuracy"] = float(np.mean([p == t for p, t in zip(labels, truth)]))
    else:
        out["emotion_accuracy"] = float("nan")
    out["emotion_n"] = len(judged) if judge is not None else 0
    out["r_precision_top1"], out["r_precision_top3"] = _retrieval(evaluator, text_emb, apexes, pools)
    # d. diversity over seeds
    subset = items[:MAX_DIVERSITY_ITEMS]
    per_seed = [_apexes(runtime.generate_batch([i.instruction for i in subset], fps=FPS, seed=seed + s))
                for s in range(DIVERSITY_SEEDS)]
    stacked = np.stack(per_seed, axis=1)  # (items, seeds, 52)
    out["diversity"] = float(np.mean([metrics.mean_pairwise_l2(v) for v in stacked])) if len(subset) else float("nan")
    # e. smoothness of "X, then Y"
    smooth, skipped = _smoothness(runtime, _sequences(items, seed, timed=False), seed)
    out.update({k: smooth[k] for k in ("mean_jerk", "linear_mean_jerk", "jerk_ratio", "mean_accel",
                                       "linear_mean_accel", "accel_ratio", "transitions")})
    out["sequences_skipped"] = skipped
    # f. duration error
    errors, skipped = _durations(runtime, _sequences(items, seed, timed=True), seed)
    out["duration_error_mean"] = float(np.mean(errors)) if errors else float("nan")
    out["duration_error_max"] = float(np.max(errors)) if errors else float("nan")
    out["duration_checks"] = len(errors)
    out["timed_skipped"] = skipped
    return out


def _fer_reference(judge, items) -> dict:
    """The judge's accuracy on the knowledge-base prototypes of the judged items' concepts (each concept rendered
    once): what a generator that reproduced the prototypes exactly would score on row b."""
    judged = [i for i in items if i.family in FAMILY_TO_FER]
    concepts = sorted({i.concept for i in judged})
    if not concepts:
        return {"accuracy": float("nan"), "n": 0}
    labels = dict(zip(concepts, judge.labels(judge.classify_weights(np.stack([concept_weights(c) for c in concepts])))))
    return {"accuracy": float(np.mean([labels[i.concept] == FAMILY_TO_FER[i.family] for i in judged])),
            "n": len(judged)}


def load_model(name: str, device: str, encoder: str = "minilm", weights: str | None = None):
    """The learned model as shipped (or from `weights`); the baseline restricted to what training saw (the full
    knowledge base holds the held-out phrases verbatim, which would let retrieval read the answers). Both read the
    text encoder `encoder`, so a baseline is measured with the encoder of the weights it is compared with."""
    runtime = Runtime.load(model=name, device=device, encoder=encoder, weights=weights if name == "i2fet" else None)
    if name == "baseline":
        runtime.generator = RetrievalBaseline(runtime.encoder, concepts=train_split_concepts())
    return runtime


def run_evaluation(models: Sequence[str] = DEFAULT_MODELS, splits: Sequence[str] = SPLITS, n: int | None = 128,
                   seed: int = 0, device: str = "cpu", judge: bool = True, evaluator_config=None,
                   encoder: str = "minilm", weights: str | None = None) -> EvaluationReport:
    """Evaluate each model on the same held-out items (a..f in the module docstring); a model that cannot be loaded
    is listed as not evaluated rather than failing the run. `judge=False` skips the FER judge (b);
    `evaluator_config` (a retrieval_evaluator.EvaluatorConfig) overrides the retrieval evaluator's default;
    `encoder` is the text encoder of both models and `weights` the learned model's weights file (default: shipped)."""
    began = time.perf_counter()
    models, splits = tuple(models), tuple(splits)
    if not models:
        raise InputError("Name at least one model to evaluate.")
    for split in splits:
        if split not in SPLITS:
            raise InputError(f"Unknown split {split!r}; choose from {', '.join(SPLITS)}.")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise InputError(f"The number of items per split must be a whole number of at least 2, not {n!r}.")

    items = {s: heldout_items(s, n=n, seed=seed) for s in splits}
    evaluator = load_evaluator() if evaluator_config is None else load_evaluator(config=evaluator_config)
    text_emb = {s: evaluator.embed_texts(_segment_texts(items[s])) for s in splits}
    pools = {s: _pools(items[s], seed) for s in splits}
    report = EvaluationReport(models=models, splits=splits, n=n, seed=seed, device=device, results={},
                              encoder=encoder, weights=None if weights is None else str(weights))
    for s in splits:
        protos = np.stack([concept_weights(i.concept) for i in items[s]])
        top1, top3 = _retrieval(evaluator, text_emb[s], protos, pools[s])
        report.retrieval_reference[s] = {"top1": top1, "top3": top3}

    fer = None
    if judge:
        try:
            fer = load_judge()
            report.fer_ceiling = prototype_ceiling(fer, seed=seed)
            for s in splits:
                report.fer_reference[s] = _fer_reference(fer, items[s])
        except InputError as exc:
            report.notes.append(f"FER judge unavailable: {exc}")
            fer = None

    for name in models:
        try:
            runtime = load_model(name, device, encoder, weights)
        except Exception as exc:  # noqa: BLE001 - an unavailable model is reported, not fatal
            report.unavailable[name] = str(exc).strip() or type(exc).__name__
            continue
        report.results[name] = {s: _evaluate_split(runtime, items[s], evaluator, fer, text_emb[s], pools[s], seed)
                                for s in splits}
    if "baseline" in report.results:
        report.notes.append("Note: the baseline retrieves from the knowledge base as training saw it (held-out "
                            "concepts and phrasings removed), so neither model has seen the test phrases.")
    report.seconds = time.perf_counter() - began
    return report


__all__ = ["DEFAULT_MODELS", "EvaluationReport", "GOALS", "SPLITS", "run_evaluation"]
