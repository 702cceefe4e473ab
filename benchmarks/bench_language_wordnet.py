"""Whole sentences about faces that the project did not write: WordNet 3.0's facial-action texts as instructions.

Run: .venv/bin/python benchmarks/bench_language_wordnet.py [--show-failures] [--weights FILE]

Three sets from tests/data/wordnet_face_actions (see its README), each text given as written as the instruction to the
learned model and to the retrieval baseline in this process (seed 0, 30 fps, life off):
- first: items.jsonl, 81 glosses and examples of 57 facial-action senses ("partly close one's eyes, as when hit by
  direct blinding light", "The driver squinted as the sun hit his windshield"). Its first run (2026-12-04) passed
  0.840 (learned) and 0.778 (baseline); the parser was then fixed on what it showed (sentences that tell of an
  action, a scene clause after a comma, crossed eyes, one eye closing, "one's", "partly"), so it is no longer clean.
- second: sentences.jsonl, 133 example sentences of any synset with a face word in them, extracted after those fixes
  and run only after being committed: 0.910 / 0.917 on its first run. The told-sentence reading was then narrowed
  and extended on what it showed (adverbs after the verb, adjectives before a nod, "and" before a past tense, a
  part naming nothing facial left out beside one that does), so it is no longer clean either.
- third: glosses.jsonl, 27 definitions of any synset with a face word in them ("a smiler whose smile is offensively
  self-satisfied", "with a pout or in a pouting manner", "not smiling"), extracted after the fixes of 2026-12-04's
  second session (other adjectives before a smile, "by nodding", brackets, "giving no evidence of") and committed
  before any model was run on them: 0.815 / 0.852 on its first run (the stop-24 parser: 0.778 / 0.852). "not
  smiling", "the act of" and "unsmiling" were then fixed on what it showed, so it is no longer clean.
The whole animation is judged by what each text must show (EXPECT in benchmarks/extract_wordnet_face_actions.py,
fixed before either set was run): a channel that reaches 0.3 somewhere, one eye closing without the other, the head's
pitch (nod) or yaw (shake) moving by 0.1 rad, or a face that stays calm. Printed per set: the pass rate per
expectation and overall for both models, and how many texts drew a warning.

Goals (fixed before the first run of each set): on each set the learned model passes >= 0.90 of the texts (the
issue's floor for a category of its language set) and no fewer than the baseline. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_language_real import MODELS, accuracy, print_misses, table  # noqa: E402
from benchmarks.extract_wordnet_face_actions import EXPECT  # noqa: E402
from benchmarks.gates import Gates  # noqa: E402

DATA = ROOT / "tests" / "data" / "wordnet_face_actions"
SETS = {"first": DATA / "items.jsonl", "second": DATA / "sentences.jsonl", "third": DATA / "glosses.jsonl"}
SHOWN = 0.3
GOAL = 0.90


def load_items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def judge(animation, rule: dict) -> tuple[bool, str]:
    """Whether `animation` shows what `rule` (one EXPECT value) asks for, and what it showed instead."""
    peaks = dict(zip(animation.channels, animation.frames.max(axis=0, initial=0.0)))
    strongest = sorted(peaks, key=peaks.get, reverse=True)[:3]
    seen = ", ".join(f"{c} {peaks[c]:.2f}" for c in strongest)
    if "any" in rule:
        ok = any(v >= SHOWN for c, v in peaks.items() if c.startswith(tuple(rule["any"])))
    elif "all" in rule:
        ok = all(peaks[c] >= SHOWN for c in rule["all"])
    elif "one_eye" in rule:
        frames = animation.frames
        left, right = animation.channels.index("eyeBlinkLeft"), animation.channels.index("eyeBlinkRight")
        ok = bool(np.abs(frames[:, left] - frames[:, right]).max(initial=0.0) >= SHOWN)
    elif "head_pitch" in rule or "head_yaw" in rule:
        axis, goal = (1, rule["head_pitch"]) if "head_pitch" in rule else (0, rule["head_yaw"])
        angle = np.zeros(1) if animation.head_rotation is None else animation.head_rotation[:, axis]
        ok = bool(np.ptp(angle) >= goal)
        seen = f"head {('yaw', 'pitch')[axis]} range {np.ptp(angle):.2f} rad; {seen}"
    elif "calm" in rule:
        ok = max(peaks.values(), default=0.0) < SHOWN
    else:
        raise ValueError(f"unknown expectation {rule}")
    return bool(ok), seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--weights", help="the learned model's weights file (default: the shipped one)")
    args = parser.parse_args(argv)

    from model_runtime import Runtime

    runtimes = {model: Runtime.load(model=model, device="cpu", weights=args.weights if model == "i2fet" else None)
                for model in MODELS}
    gates = Gates()
    for name, path in SETS.items():
        items = load_items(path)
        hits, seen, warned = {}, {}, {}
        for model, runtime in runtimes.items():
            hits[model], seen[model], warned[model] = [], [], []
            for item in items:
                animation = runtime.generate(item["text"], seed=0)
                ok, what = judge(animation, EXPECT[item["expect"]])
                hits[model].append(ok)
                seen[model].append(what)
                warned[model].append(animation.warnings)

        print(f"WordNet 3.0, {name} set ({path.name}), {len(items)} texts given as written; judged on the whole "
              f"animation (a channel counts as shown at {SHOWN})")
        expectations = sorted({i["expect"] for i in items}, key=lambda e: (-sum(i["expect"] == e for i in items), e))
        table(items, hits, {**{e: [k for k, i in enumerate(items) if i["expect"] == e] for e in expectations},
                     "overall": list(range(len(items)))})
        for model in MODELS:
            print(f"  {model}: {sum(bool(w) for w in warned[model])} of {len(items)} texts drew a warning")
        if args.show_failures:
            print_misses(hits, lambda model, k: f"{items[k]['text']!r} (must show {items[k]['expect']}): "
                         f"{seen[model][k]}; warnings {warned[model][k]}")
        learned, baseline = accuracy(hits["i2fet"]), accuracy(hits["baseline"])
        gates.at_least(f"learned model on WordNet's {name} set, pass rate", learned, GOAL)
        gates.at_least(f"learned >= baseline on WordNet's {name} set, learned minus baseline", learned - baseline, 0.0)
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
