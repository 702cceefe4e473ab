"""Concept-level cross-validation: the learned model against retrieval on 74 concepts it never trained on, not 11.

Run (each fold trains once, about 9 minutes on one idle core; folds may run side by side):
    .venv/bin/python benchmarks/bench_concept_cv.py --fold K --work DIR [--config FILE]    (K = 0..3)
    .venv/bin/python benchmarks/bench_concept_cv.py --fold K --work DIR --score-only        (score a trained fold again)
    .venv/bin/python benchmarks/bench_concept_cv.py --summarize --work DIR

Every knowledge-base concept but neutral and the seven basic emotions (the anchors the others are written against) is
put in one of FOLDS folds by a hash of its name. Fold K holds its concepts out exactly as `i2fet evaluate` holds out
HELDOUT_CONCEPTS (arkit_data.hold_out_concepts: their phrases and labels never reach training, nor one phrase of
each other concept), trains the recipe (default: the shipped one, configs/i2fet.toml) with seed 0 and scores every
held-out item (all templates, not a sample) by row a of `i2fet evaluate`: the AU precision and recall of the apex
against the concept's core AUs. Three generators are scored on the same items: the learned model as the recipe makes
it, the same tensors with the AU memory switched off (the decoder and its AU head alone; the same model when the
recipe has no memory), and the retrieval baseline over the knowledge base as that fold's training saw it.
As context (no gate) it also prints precision counting the AUs the knowledge base lists as a concept's variants as
right: training samples show them, the core-AU reference does not.

The summary averages per concept (each concept weighs the same, however many phrases it has; a phrasing is scored by
every fold that trained its concept), gives a 95% interval over concepts (2,000 resamples of whole concepts) and exits
1 when the learned model's mean margin over the baseline is below the issue's 0.10 on AU precision or recall
(concepts split) or below 0 on the phrasings split.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gates import Gates  # noqa: E402

FOLDS = 4
CONFIG = ROOT / "configs" / "i2fet.toml"
GENERATORS = ("learned", "decoder", "baseline")
SPLITS = ("heldout_concepts", "heldout_phrasings")
RESAMPLES = 2000
CONCEPT_GOAL = 0.10


def fold_concepts(fold: int) -> tuple[str, ...]:
    """The concepts fold `fold` holds out (a pure function of the knowledge base)."""
    from model_runtime.evaluation.au_family import BASIC_CONCEPT_FOR_FAMILY
    from model_runtime.knowledge import all_concepts
    from model_runtime.training.arkit_data import stable_hash

    anchors = {"neutral", *BASIC_CONCEPT_FOR_FAMILY.values()}
    names = sorted((c.name for c in all_concepts() if c.name not in anchors), key=lambda n: stable_hash(f"cv|{n}"))
    return tuple(sorted(names[fold::FOLDS]))


def run_fold(fold: int, work: Path, steps: int | None = None, config: Path = CONFIG) -> dict:
    from model_runtime.training import arkit_data
    from model_runtime.training.train import train

    held = fold_concepts(fold)
    arkit_data.hold_out_concepts(held)
    out = work / f"fold-{fold}"
    summary = train(config, out_dir=out, seed=0, work_dir=out / "checkpoints", evaluate=False, steps=steps)
    result = score_fold(fold, Path(summary["weights"]), work)
    print(f"fold {fold}: {len(held)} concepts held out, trained in {summary['wall_s']:.0f} s")
    return result


def score_fold(fold: int, weights: Path, work: Path) -> dict:
    """Score fold `fold`'s weights (trained with its concepts held out) on every held-out item; writes fold-K.json."""
    import torch

    from model_runtime.evaluation.report import _apexes, apex_au_scores, load_model
    from model_runtime.knowledge import UNDECODABLE_AUS, active_aus, concept_aus
    from model_runtime.training import arkit_data

    arkit_data.hold_out_concepts(fold_concepts(fold))
    torch.set_num_threads(1)
    result = {"fold": fold, "concepts": list(fold_concepts(fold)), "weights": str(weights), "splits": {}}
    learned, baseline = load_model("i2fet", "cpu", weights=str(weights)), load_model("baseline", "cpu")
    memory = learned.generator.model.memory
    for split in SPLITS:
        items = arkit_data.heldout_items(split)
        rows: dict = {"concept": [i.concept for i in items]}
        for name in GENERATORS:
            runtime = baseline if name == "baseline" else learned
            learned.generator.model.memory = None if name == "decoder" else memory
            anims = [a for s in range(0, len(items), 64)
                     for a in runtime.generate_batch([i.instruction for i in items[s:s + 64]], seed=0)]
            apexes = _apexes(anims)
            allowed = [concept_aus(i.concept, include_variants=True) - UNDECODABLE_AUS for i in items]
            rows[name] = apex_au_scores(apexes, items).tolist()
            rows[f"{name}_variants_allowed"] = [
                len(active_aus(a) & ok) / len(active_aus(a)) if active_aus(a) else 1.0 for a, ok in zip(apexes, allowed)]
        learned.generator.model.memory = memory
        result["splits"][split] = rows
    path = work / f"fold-{fold}.json"
    path.write_text(json.dumps(result), encoding="utf-8")
    print(f"fold {fold}: scored {weights}; wrote {path}")
    return result


def per_concept(results: list[dict], split: str, name: str,
                neutral_as_miss: bool = False) -> tuple[list[str], np.ndarray]:
    """Concept names and (concepts, 2) mean AU precision and recall of generator `name` per concept: over its items
    within a fold, then over the folds that scored it (a phrasing is scored by every fold that trained its concept).
    With `neutral_as_miss`, a neutral apex for a concept with AUs scores precision 0 (report.neutral_as_miss)."""
    from model_runtime.evaluation.report import neutral_as_miss as strict

    per: dict[str, list[np.ndarray]] = {}
    for result in results:
        rows = result["splits"][split]
        scores = np.asarray(rows[name], dtype=np.float64)
        if neutral_as_miss and scores.ndim == 2:
            scores = np.column_stack([strict(scores), scores[:, 1]])
        owner = np.asarray(rows["concept"])
        for concept in sorted(set(rows["concept"])):
            per.setdefault(concept, []).append(scores[owner == concept].mean(0))
    concepts = sorted(per)
    return concepts, np.stack([np.mean(per[c], axis=0) for c in concepts])


def summarize(work: Path) -> int:
    results = [json.loads((work / f"fold-{k}.json").read_text(encoding="utf-8")) for k in range(FOLDS)]
    gates = Gates()
    rng = np.random.default_rng(0)
    print(f"concept-level cross-validation, {FOLDS} folds, "
          f"{sum(len(r['concepts']) for r in results)} concepts held out in turn; AU precision / recall per concept")
    for split in SPLITS:
        table = {name: per_concept(results, split, name)[1] for name in GENERATORS}
        n = len(table["baseline"])
        print(f"{split} ({n} concepts, each weighted the same)")
        print(f"  {'generator':12s} {'precision':>10s} {'recall':>8s}   margin over baseline (95% interval)")
        for name in GENERATORS:
            mean = table[name].mean(0)
            line = f"  {name:12s} {mean[0]:10.3f} {mean[1]:8.3f}"
            if name != "baseline":
                diff = table[name] - table["baseline"]
                boots = np.stack([diff[rng.integers(0, n, n)].mean(0) for _ in range(RESAMPLES)])
                lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
                line += (f"   {diff.mean(0)[0]:+.3f} ({lo[0]:+.3f}..{hi[0]:+.3f})"
                         f"  {diff.mean(0)[1]:+.3f} ({lo[1]:+.3f}..{hi[1]:+.3f})")
            print(line)
        variants = {name: per_concept(results, split, f"{name}_variants_allowed")[1] for name in GENERATORS}
        print("  precision with the knowledge base's variant AUs counted as right: "
              + ", ".join(f"{name} {variants[name].mean():.3f}" for name in GENERATORS))
        strict = {name: per_concept(results, split, name, neutral_as_miss=True)[1][:, 0] for name in GENERATORS}
        print("  precision with a neutral apex counted as 0, not 1: "
              + ", ".join(f"{name} {strict[name].mean():.3f}" for name in GENERATORS)
              + f" (learned minus baseline {(strict['learned'] - strict['baseline']).mean():+.3f})")
        margin = (table["learned"] - table["baseline"]).mean(0)
        goal = CONCEPT_GOAL if split == "heldout_concepts" else 0.0
        for k, metric in enumerate(("precision", "recall")):
            gates.at_least(f"{split}: learned AU {metric} minus the baseline's, mean over concepts",
                           float(margin[k]), goal)
    return gates.exit_code()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the folds' weights and results")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--fold", type=int, choices=range(FOLDS))
    group.add_argument("--summarize", action="store_true")
    parser.add_argument("--score-only", action="store_true", help="score the fold's weights already in --work")
    parser.add_argument("--steps", type=int, help="train fewer steps than the config (a quick check of the run)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the recipe each fold trains (default: %(default)s)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.summarize:
        return summarize(work)
    if args.score_only:
        weights = sorted((work / f"fold-{args.fold}").glob("*.safetensors"))
        if len(weights) != 1:
            print(f"Found {len(weights)} weights files in {work / f'fold-{args.fold}'}, not one.", file=sys.stderr)
            return 2
        score_fold(args.fold, weights[0], work)
        return 0
    run_fold(args.fold, work, args.steps, args.config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
