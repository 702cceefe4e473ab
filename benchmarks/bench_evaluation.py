"""The evaluation claims as a gate: reruns `i2fet evaluate` (seed 0, 128 items per split, i2fet and the baseline) and
checks every number the README's evaluation table and `weights/EVALUATION.txt` (the model card's metrics) publish.

Run: .venv/bin/python benchmarks/bench_evaluation.py [--no-judge] [--device cpu]

Claims, each printed with its verdict and tolerance (exit 1 when one is missed):
  * each published number is reproduced (the run is seeded: +-0.01 for numbers printed to 2-3 decimals, covering their
    rounding and float differences between BLAS builds; 3% for those printed in e-notation);
  * where the README's table shows i2fet better than the baseline, it still is (higher is better, except jerk / linear
    and duration error);
  * the goals of the table (jerk <= 0.5x linear, duration within one frame, diversity > 0) for i2fet;
  * `EVALUATION.txt` was made for the weights shipped (its sha256), and the model card's sha256, size and parameter
    count are those of the weights file.
The claims are read from the README and the weights folder, so a retrained model passes only once they are updated.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gates import Gates  # noqa: E402

SEED, ITEMS = 0, 128
TOLERANCE = 0.01
RELATIVE_TOLERANCE = 0.03
LOWER_IS_BETTER = frozenset({"jerk_ratio", "duration_error_max", "duration_error_mean", "mean_jerk", "mean_accel",
                             "accel_ratio"})
# README row (its first words) -> the report's metric keys, in the order the row gives their values
README_ROWS = {
    "AU precision / recall": ("au_precision", "au_recall"),
    "emotion accuracy, FER2013 judge": ("emotion_accuracy",),
    "text-to-expression R-precision top-1 / top-3": ("r_precision_top1", "r_precision_top3"),
    "diversity across 5 seeds": ("diversity",),
    "jerk / linear interpolation": ("jerk_ratio",),
    "duration error, max": ("duration_error_max",),
    "AU precision, a neutral apex counted as 0": ("au_precision_strict",),
}
# the rows the held-out-concept table must have (the phrasings table must have every row)
CONCEPT_ROWS = ("AU precision / recall", "emotion accuracy, FER2013 judge",
                "text-to-expression R-precision top-1 / top-3", "AU precision, a neutral apex counted as 0")
GOAL_KEYS = ("jerk_ratio", "duration_error_max", "diversity")


@dataclass(frozen=True)
class Claim:
    """A published value: `model`'s `key` on `split` is `value` (`scientific`: printed in e-notation, so compared
    relatively)."""
    source: str
    model: str
    split: str
    key: str
    value: float
    scientific: bool = False

    @property
    def name(self) -> str:
        return f"{self.source}: {self.model} {self.key} on {self.split}"


def _readme_table(text: str, split: str, title: str, required: tuple[str, ...]):
    """(claims, rows where the table shows i2fet better) of one README evaluation table."""
    table = re.search(rf"\| held-out {title} \((\d+) items\) \| i2fet \| baseline \|\n\|[-|]+\|\n((?:\|.*\|\n)+)", text)
    if table is None or int(table.group(1)) != ITEMS:
        raise ValueError(f"the README has no evaluation table for {ITEMS} held-out {title}")
    claims, better, seen = [], [], set()
    for row in table.group(2).splitlines():
        label, learned, baseline = (cell.strip() for cell in row.strip("|").split("|"))
        keys = next((k for prefix, k in README_ROWS.items() if label.startswith(prefix)), None)
        if keys is None:
            raise ValueError(f"the README's evaluation table has a row this gate does not know: {label!r}")
        seen.add(label.split(" (")[0])
        values = [[float(v) for v in cell.split(" / ")] for cell in (learned, baseline)]
        if any(len(v) != len(keys) for v in values):
            raise ValueError(f"the README's row {label!r} does not give {len(keys)} value(s) per model")
        for key, a, b in zip(keys, *values):
            claims += [Claim("README", "i2fet", split, key, a), Claim("README", "baseline", split, key, b)]
            if (a < b) if key in LOWER_IS_BETTER else (a > b):
                better.append((key, split))
        ceiling = re.search(r"ceiling on the items' own prototypes: ([0-9.]+)", label)
        if ceiling:
            claims.append(Claim("README", "fer_reference", split, "accuracy", float(ceiling.group(1))))
    missing = [p for p in required if not any(s.startswith(p) for s in seen)]
    if missing:
        raise ValueError(f"the README's held-out {title} table lacks rows: " + ", ".join(missing))
    return claims, better


def readme_claims(text: str) -> tuple[list[Claim], list[tuple[str, str]]]:
    """(the values of the README's held-out concepts and phrasings tables, the (key, split) rows where a table shows
    i2fet better than the baseline)."""
    claims, better = _readme_table(text, "heldout_concepts", "concepts", CONCEPT_ROWS)
    more_claims, more_better = _readme_table(text, "heldout_phrasings", "phrasings", tuple(README_ROWS))
    return claims + more_claims, better + more_better


def evaluation_txt_claims(text: str) -> tuple[str, list[Claim]]:
    """(the weights sha256 the table was made for, every value of its table for i2fet and the baseline)."""
    from model_runtime.evaluation.report import ROWS

    head = re.search(r"--n (\d+) \(seed (\d+)\), weights sha256 ([0-9a-f]{64})", text)
    if head is None or (int(head.group(1)), int(head.group(2))) != (ITEMS, SEED):
        raise ValueError(f"EVALUATION.txt is not an `i2fet evaluate --n {ITEMS}` table of seed {SEED}")
    header = re.search(r"^metric\s+split\s+(\S+)\s+(\S+)\s+goal$", text, re.M)
    if header is None or header.groups() != ("i2fet", "baseline"):
        raise ValueError("EVALUATION.txt does not have the columns i2fet and baseline")
    labels = {label: key for key, label, _ in ROWS}
    claims = []
    for line in text.splitlines():
        label = next((lab for lab in labels if line.startswith(lab + " ") and line[len(lab):].lstrip()[:9] in
                      ("heldout_c", "heldout_p")), None)
        if label is None:
            continue
        split, learned, baseline = line[len(label):].split()[:3]
        for model, cell in (("i2fet", learned), ("baseline", baseline)):
            claims.append(Claim("EVALUATION.txt", model, split, labels[label], float(cell), "e" in cell))
    if len(claims) != 2 * len(ROWS) * 2:
        raise ValueError(f"EVALUATION.txt gives {len(claims)} values, not the {4 * len(ROWS)} of a full table")
    return head.group(3), claims


def measured(report: dict, claim: Claim):
    if claim.model == "fer_reference":
        return (report.get("fer_reference") or {}).get(claim.split, {}).get(claim.key)
    return report["results"].get(claim.model, {}).get(claim.split, {}).get(claim.key)


def check(report: dict, claims: list[Claim], better: list[tuple[str, str]], gates: Gates) -> None:
    """The verdicts of one evaluation report (`EvaluationReport.to_dict()`) against the published claims."""
    for model, why in report.get("unavailable", {}).items():
        gates.holds(f"{model} evaluated", False, why)
    for claim in claims:
        value = measured(report, claim)
        if value is None:
            gates.holds(claim.name, False, f"not measured (claimed {claim.value:g})")
        elif claim.scientific:
            tolerance = RELATIVE_TOLERANCE * abs(claim.value)
            gates.close_to(claim.name, float(value), claim.value, tolerance)
        else:
            gates.close_to(claim.name, float(value), claim.value, TOLERANCE)
    for key, split in better:
        a, b = (report["results"].get(m, {}).get(split, {}).get(key) for m in ("i2fet", "baseline"))
        word = "below" if key in LOWER_IS_BETTER else "above"
        ok = a is not None and b is not None and ((a < b) if key in LOWER_IS_BETTER else (a > b))
        gates.holds(f"README: i2fet {word} the baseline in {key} on {split}", ok,
                    f"i2fet {a} vs baseline {b} (no tolerance: the ordering is the claim)")
    for key in GOAL_KEYS:
        met = report.get("goals", {}).get(key, {}).get("met", {}).get("i2fet")
        goal = report.get("goals", {}).get(key, {}).get("goal", key)
        gates.holds(f"goal {key} for i2fet on every split", met is True, f"{goal}: {met}")


def card_facts(card: str, weights: Path) -> list[tuple[str, bool, str]]:
    """(name, ok, text) for the model card's sha256, size and parameter count against the weights file."""
    from safetensors import safe_open

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    sha = re.search(r"sha256: `([0-9a-f]{64})`", card)
    size = re.search(r"size: ([0-9,]+) bytes; ([0-9,]+) parameters(?:, ([0-9,]+) values stored)?", card)
    with safe_open(str(weights), "np") as tensors:
        params = sum(math.prod(tensors.get_slice(k).get_shape()) for k in tensors.keys())
    out = [("model card sha256", sha is not None and sha.group(1) == digest,
            f"card {sha.group(1)[:16] if sha else 'missing'}..., file {digest[:16]}...")]
    if size is None:
        return out + [("model card size and parameters", False, "not stated")]
    card_bytes, card_params = (int(v.replace(",", "")) for v in size.groups()[:2])
    stored = int(size.group(3).replace(",", "")) if size.group(3) else card_params  # buffers are stored too
    out.append(("model card size", card_bytes == weights.stat().st_size,
                f"card {card_bytes:,} bytes, file {weights.stat().st_size:,}"))
    out.append(("model card values stored", stored == params and card_params <= stored,
                f"card {stored:,} ({card_params:,} parameters), file {params:,}"))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-judge", action="store_true", help="skip the FER judge (its rows then count as missed)")
    args = parser.parse_args(argv)
    from model_runtime.evaluation.report import run_evaluation

    weights = ROOT / "weights" / "i2fet-arkit-minilm.safetensors"
    gates = Gates()
    claims, better = readme_claims((ROOT / "README.md").read_text(encoding="utf-8"))
    sha, table = evaluation_txt_claims((ROOT / "weights" / "EVALUATION.txt").read_text(encoding="utf-8"))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    gates.holds("EVALUATION.txt is for the shipped weights", sha == digest, f"table {sha[:16]}..., file {digest[:16]}...")
    for name, ok, text in card_facts((ROOT / "weights" / "MODEL_CARD.md").read_text(encoding="utf-8"), weights):
        gates.holds(name, ok, text)
    report = run_evaluation(models=("i2fet", "baseline"), n=ITEMS, seed=SEED, device=args.device,
                            judge=not args.no_judge)
    print(report.to_table())
    check(report.to_dict(), claims + table, better, gates)
    judged = re.search(r"recognises only (\d+) of the 7 basic", (ROOT / "README.md").read_text(encoding="utf-8"))
    ceiling = report.fer_ceiling or {}
    right = round(ceiling.get("accuracy", float("nan")) * ceiling.get("n", 0)) if ceiling else None
    gates.holds("README: the FER judge recognises N of the 7 basic prototypes", judged is not None and ceiling != {}
                and right == int(judged.group(1)), f"{right} of {ceiling.get('n')} (claimed "
                f"{judged.group(1) if judged else 'nothing'}; exact)")
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
