"""Which AUs the AU memory calls present: run-time rules scored on the concept cross-validation's folds (issue 13).

Run (after bench_concept_cv.py has trained and scored its four folds in DIR):
    .venv/bin/python benchmarks/bench_memory_rules.py --work DIR [--rules NAME,NAME,...]

The memory stage runs last on frozen features and the presence rule only reads its output, so a rule can be scored
on each fold's weights without training again. Every rule in RULES is applied to the memory's AU probabilities (the
neighbours' vote and the heads' mean) before `read` builds the key; the SETTINGS change other run-time parts of the
reading (the vote's temperature, what text the memory reads, the decoder's say in which AUs are present). Each
fold's held-out items are generated again and scored as bench_concept_cv.py scores them, against the retrieval
baseline of that fold's own fold-K.json. Printed per rule: the margins over the baseline in AU precision, recall and
precision with a neutral apex counted as 0 ("strict"), on held-out concepts (the 63 concepts outside `i2fet
evaluate`'s 11, those 11, and all 74) and on new phrasings of trained concepts.

Exits 1 when no rule reaches the issue's goal over all 74 concepts (AU precision and recall both >= 0.10 above the
baseline) with its phrasing margins >= 0: then no such run-time choice alone closes the gap.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_concept_cv as cv  # noqa: E402
from benchmarks.gates import Gates  # noqa: E402
from model_runtime.models.au_memory import MemoryReading  # noqa: E402
from model_runtime.training.arkit_data import HELDOUT_CONCEPTS as EVALUATED  # noqa: E402  (before any fold is held out)

# FACS action units that move one feature in opposite directions, so a face cannot show both: the lip corners up
# (12) or down (15), the upper lid raised (5) or the eye closed (43), the lips parted (25) or pressed (24).
ANTAGONISTS = ((12, 15), (5, 43), (24, 25))
GOAL = 0.10


def _shipped(prob, memory, novel):
    return memory.present(prob, novel), None


def _threshold(value: float):
    def rule(prob, memory, novel):
        return prob > value, None
    return rule


def _relative(fraction: float):
    def rule(prob, memory, novel):
        return (prob > memory.cfg.present) & (prob >= fraction * prob.amax(1, keepdim=True)), None
    return rule


def _cap(count: int):
    def rule(prob, memory, novel):
        kth = prob.topk(count, 1).values[:, -1:]
        return (prob > memory.cfg.present) & (prob >= kth), None
    return rule


def _lift(factor: float):
    """Present only above `factor` times the AU's share of the training concepts: a head meeting a word it never saw
    drifts toward the AUs most concepts have (AU1, AU4, AU25), and a fixed threshold keeps them."""
    def rule(prob, memory, novel):
        return (prob > memory.cfg.present) & (prob > factor * memory.core.mean(0)), None
    return rule


def _excess(margin: float):
    def rule(prob, memory, novel):
        return (prob > memory.cfg.present) & (prob - memory.core.mean(0) > margin), None
    return rule


def resolve_antagonists(prob, present, pairs=ANTAGONISTS):
    """`present` without the less probable AU of each pair of ANTAGONISTS both present (the first on a tie)."""
    from model_runtime.models.au_space import AUS

    keep = present.clone()
    for a, b in pairs:
        i, j = AUS.index(a), AUS.index(b)
        both = present[:, i] & present[:, j]
        drop_i = both & (prob[:, i] < prob[:, j])  # a tie keeps the first
        keep[:, i] &= ~drop_i
        keep[:, j] &= ~(both & ~drop_i)
    return keep


def _antagonists(prob, memory, novel):
    return resolve_antagonists(prob, prob > memory.cfg.present), None


def nearest_concept_by_aus(prob, core):
    """The training concept whose AU table is closest in cosine to each row of AU probabilities."""
    import torch.nn.functional as F

    return (F.normalize(prob, dim=1) @ F.normalize(core, dim=1).T).argmax(1)


def _snap(intersect: bool):
    """The AUs of the training concept nearest in AU space: a whole face the knowledge base knows, chosen by the
    memory's evidence instead of by text similarity; `intersect` keeps only those the threshold also finds."""
    def rule(prob, memory, novel):
        best = nearest_concept_by_aus(prob, memory.core)
        snapped = memory.core[best] >= 0.5
        if not intersect:
            return snapped, memory.intensity[best]
        keep = snapped & (prob > memory.cfg.present)
        return keep.where(keep.any(1, keepdim=True), snapped), memory.intensity[best]
    return rule


RULES = {
    "shipped": _shipped,
    "threshold 0.30": _threshold(0.30),
    "threshold 0.35": _threshold(0.35),
    "relative 0.5": _relative(0.5),
    "cap 5": _cap(5),
    "lift 1.25": _lift(1.25),
    "excess 0.10": _excess(0.10),
    "antagonists": _antagonists,
    "snap": _snap(False),
    "snap and threshold": _snap(True),
}


def _presence(rule):
    return lambda learned: presence_rule(learned.generator.model.memory, rule)


@contextlib.contextmanager
def _memory_settings(learned, **changes):
    """The memory's [memory] settings with `changes` (run-time ones only) inside the block."""
    from dataclasses import replace

    memory = learned.generator.model.memory
    original = memory.cfg
    memory.cfg = replace(original, **changes)
    try:
        yield
    finally:
        memory.cfg = original


def _temperature(value: float):
    """The vote's softmax temperature: framed texts share the frame's words, so their cosines lie higher and closer
    together than plain ones, and 0.2, chosen on plain embeddings, may weigh the top 20 concepts almost alike."""
    return lambda learned: _memory_settings(learned, temperature=value)


@contextlib.contextmanager
def _blended_reading(learned, weight: float):
    """The memory reads `weight` x the content words' embedding + the rest x the whole segment's, renormalized:
    words the content filter drops ("her face falls") still count."""
    import numpy as np

    generator = learned.generator
    original = generator._encode_with_memory

    def encode(texts):
        tokens, mask, sentences, read = original(texts)
        mixed = weight * read + (1.0 - weight) * sentences
        return tokens, mask, sentences, (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)

    generator._encode_with_memory = encode
    try:
        yield
    finally:
        del generator._encode_with_memory


def shown_by_key(key, matrix):
    """(B, AUs): how strongly each row's key shows each AU, as active_aus reads one AU alone: the smallest ratio of
    a channel's value to the AU's weight on it, over the AU's channels on that row's side (0 for an AU with none)."""
    import torch

    drives = matrix > 0
    ratio = torch.where(drives, key[:, None, :] / matrix.clamp_min(1e-6), torch.full_like(matrix, float("inf")))
    return torch.where(drives.any(-1), ratio.amin(-1), torch.zeros_like(ratio[..., 0]))


@dataclass(frozen=True)
class _AgreeingReading(MemoryReading):
    """The memory's reading with what the decoder's agreement needs of each row."""
    prob: "torch.Tensor"  # (B, AUs) the memory's AU probabilities
    intensity: "torch.Tensor"  # (B, AUs)
    matrix: "torch.Tensor"  # (B, AUs, channels) each row's side
    chosen: "torch.Tensor"  # (B, AUs) bool: present as the memory decides

    def rows(self, index) -> "_AgreeingReading":
        return _AgreeingReading(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@contextlib.contextmanager
def _decoder_agreement(learned, present: float, likely: float, shown: float = 0.15):
    """AUs above `present` as the memory decides (fallback included), and also those above `likely` that the
    decoder's own key shows at `shown` or more: two opinions agreeing instead of the decoder's being pruned."""
    memory = learned.generator.model.memory

    def read(sentences, side, glosses=None):
        prob, intensity, novel = memory.read_probabilities(sentences, glosses)
        matrix = memory.matrix[side]
        chosen = memory.present(prob, novel)
        plain = memory.reading(chosen, intensity, matrix, novel)
        return _AgreeingReading(plain.composed, plain.driven, plain.novel, prob, intensity, matrix, chosen)

    def apply(reading, decoded, otherwise):
        agree = reading.chosen | ((reading.prob > likely) & (shown_by_key(decoded, reading.matrix) >= shown))
        chosen = memory.reading(agree, reading.intensity, reading.matrix, reading.novel)
        return type(memory).apply(memory, chosen, decoded, otherwise)

    with _memory_settings(learned, present=present):
        memory.read, memory.apply = read, apply
        try:
            yield
        finally:
            del memory.read, memory.apply


# What else a run time could change in how the memory's reading becomes a key, beyond the presence rule.
SETTINGS = {
    "temperature 0.1": _temperature(0.1),
    "temperature 0.05": _temperature(0.05),
    "blend 0.5": lambda learned: _blended_reading(learned, 0.5),
    "agreement 0.20 at 0.30": lambda learned: _decoder_agreement(learned, 0.30, 0.20),
    "agreement 0.20 at 0.35": lambda learned: _decoder_agreement(learned, 0.35, 0.20),
    "agreement 0.25 at 0.40": lambda learned: _decoder_agreement(learned, 0.40, 0.25),
}
CHOICES = {**{name: _presence(rule) for name, rule in RULES.items()}, **SETTINGS}


@contextlib.contextmanager
def presence_rule(memory, rule):
    """`memory.predict` returning the rule's present AUs as probability 1 and the others as 0 (so that `read`'s own
    threshold keeps exactly them), with the rule's intensities where it gives any."""
    import torch

    original = memory.predict

    def predict(sentences, glossed=None):
        prob, intensity, novel = original(sentences, glossed)
        keep, chosen = rule(prob, memory, novel)
        if chosen is not None:
            intensity = torch.where(keep, chosen, intensity)
        return keep.to(prob.dtype), intensity, novel

    memory.predict = predict
    try:
        yield
    finally:
        del memory.predict


def score_rules(work: Path, names: list[str]) -> list[dict]:
    """Per fold, bench_concept_cv's result layout with one row list per rule beside the fold's baseline rows."""
    import torch

    from model_runtime.evaluation.report import _apexes, apex_au_scores, load_model
    from model_runtime.training import arkit_data

    results = []
    for fold in range(cv.FOLDS):
        scored = json.loads((work / f"fold-{fold}.json").read_text(encoding="utf-8"))
        weights = sorted((work / f"fold-{fold}").glob("*.safetensors"))
        if len(weights) != 1:
            raise SystemExit(f"Found {len(weights)} weights files in {work / f'fold-{fold}'}, not one.")
        arkit_data.hold_out_concepts(cv.fold_concepts(fold))
        torch.set_num_threads(2)  # one fold at a time
        learned = load_model("i2fet", "cpu", weights=str(weights[0]))
        memory = learned.generator.model.memory
        if memory is None:
            raise SystemExit(f"{weights[0]} has no AU memory: there is no presence rule to score.")
        result = {"splits": {}}
        for split in cv.SPLITS:
            items = arkit_data.heldout_items(split)
            rows = {"concept": [i.concept for i in items], "baseline": scored["splits"][split]["baseline"]}
            if rows["concept"] != scored["splits"][split]["concept"]:
                raise SystemExit(f"fold-{fold}.json was scored on other items than fold {fold} holds out now.")
            for name in names:
                with CHOICES[name](learned):
                    anims = [a for s in range(0, len(items), 64)
                             for a in learned.generate_batch([i.instruction for i in items[s:s + 64]], seed=0)]
                rows[name] = apex_au_scores(_apexes(anims), items).tolist()
            result["splits"][split] = rows
        results.append(result)
        print(f"fold {fold}: {len(names)} rules scored", flush=True)
    return results


def margins(results: list[dict], names: list[str]) -> dict:
    """Per rule: (precision, recall, strict precision) margins over the baseline, averaged per concept, on the
    held-out concepts outside `i2fet evaluate`'s 11, on those 11, on all of them, and on the phrasings."""
    out: dict = {}
    for split in cv.SPLITS:
        concepts, base = cv.per_concept(results, split, "baseline")
        base_strict = cv.per_concept(results, split, "baseline", neutral_as_miss=True)[1][:, :1]
        evaluated = np.array([c in EVALUATED for c in concepts])
        for name in names:
            table = np.hstack([cv.per_concept(results, split, name)[1],
                               cv.per_concept(results, split, name, neutral_as_miss=True)[1][:, :1]])
            diff = table - np.hstack([base, base_strict])
            row = out.setdefault(name, {})
            if split == "heldout_concepts":
                row["other"], row["evaluated"], row["all"] = (
                    diff[~evaluated].mean(0), diff[evaluated].mean(0), diff.mean(0))
            else:
                row["phrasings"] = diff.mean(0)
    return out


def reaching_the_goal(table: dict) -> list[str]:
    """The rules whose precision and recall margins over all held-out concepts are >= GOAL and whose phrasing
    margins (precision and recall) are >= 0."""
    return [n for n, row in table.items() if min(row["all"][:2]) >= GOAL and min(row["phrasings"][:2]) >= 0.0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, type=Path, help="bench_concept_cv.py's folder of trained folds")
    parser.add_argument("--rules", default=",".join(CHOICES), help="comma-separated rule names (default: all)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.rules.split(",")]
    unknown = [n for n in names if n not in CHOICES]
    if unknown:
        print(f"Unknown rule {unknown[0]!r}; the rules are: {', '.join(CHOICES)}.", file=sys.stderr)
        return 2
    for fold in range(cv.FOLDS):
        if not (args.work / f"fold-{fold}.json").is_file():
            print(f"{args.work} holds no fold-{fold}.json: run bench_concept_cv.py --fold {fold} first.",
                  file=sys.stderr)
            return 2
    table = margins(score_rules(args.work, names), names)
    print("margins over the retrieval baseline, means per concept: precision / recall / strict precision")
    print(f"  {'rule':24s} {'63 other concepts':>24s} {'11 of i2fet evaluate':>24s} {'all 74':>24s} "
          f"{'new phrasings':>24s}")
    for name, row in table.items():
        cells = " ".join(f"{'/'.join(f'{v:+.3f}' for v in row[k]):>24s}"
                         for k in ("other", "evaluated", "all", "phrasings"))
        print(f"  {name:24s} {cells}")
    reaching = reaching_the_goal(table)
    best = max(table, key=lambda n: min(table[n]["all"][:2]))
    gates = Gates()
    gates.holds(
        f"a run-time rule or setting reaches AU precision and recall margins >= {GOAL} over all held-out concepts, "
        "level or better on phrasings", bool(reaching),
        f"{', '.join(reaching)} do" if reaching else
        f"none does; the best smaller margin is {best!r}'s, {min(table[best]['all'][:2]):+.3f}")
    return gates.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
