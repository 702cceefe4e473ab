"""The retraining claim as a gate: `i2fet train --seed 0 --no-resume` on the CPU, into a temporary folder, must give
the shipped tensors bit for bit and the sanity numbers and loss curve the model card prints (README:
"deterministic on CPU").

Run: .venv/bin/python benchmarks/bench_retrain.py     (about 5 minutes on the idle 2-core machine; exits 1 on a miss)

No tolerance: the claim is bit-identical. The wall time recorded in the file's metadata is not compared.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gates import Gates, machine_load  # noqa: E402

WEIGHTS = "i2fet-arkit-minilm.safetensors"


def tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def sanity_numbers(card: str) -> dict | None:
    """The JSON block of numbers training writes into the model card."""
    block = re.search(r"```\n(\{.*?\})\n```", card, re.S)
    return json.loads(block.group(1)) if block else None


def loss_curve(card: str) -> list[str]:
    """The model card's loss-curve lines ("  - 50: 20.5146 / 7.8530 / ...")."""
    return re.findall(r"^ +- \d+: [0-9. /]+$", card, re.M)


def compare(shipped: dict, retrained: dict, gates: Gates) -> None:
    same_names = sorted(shipped) == sorted(retrained)
    different = [k for k in shipped if k in retrained and not (shipped[k].dtype == retrained[k].dtype
                                                              and np.array_equal(shipped[k], retrained[k]))]
    gates.holds("retrained tensors bit for bit", same_names and not different,
                f"{len(shipped)} shipped, {len(retrained)} retrained tensors; differing: "
                f"{', '.join(different[:5]) or 'none'}" + ("" if same_names else "; the tensor names differ")
                + " (no tolerance)")


def main() -> int:
    gates = Gates()
    print(machine_load())
    with tempfile.TemporaryDirectory(prefix="i2fet-retrain-") as tmp:
        out, work = Path(tmp) / "weights", Path(tmp) / "work"
        began = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "model_runtime", "train", "--seed", "0", "--no-resume",
                              "--device", "cpu", "--out", str(out), "--work-dir", str(work)], cwd=ROOT)
        print(f"training: {time.perf_counter() - began:.0f} s")
        if run.returncode != 0 or not (out / WEIGHTS).is_file():
            gates.holds("retraining runs", False, f"exit status {run.returncode}")
            return gates.exit_code()
        compare(tensors(ROOT / "weights" / WEIGHTS), tensors(out / WEIGHTS), gates)
        shipped_card = (ROOT / "weights" / "MODEL_CARD.md").read_text(encoding="utf-8")
        card = out / "MODEL_CARD.md"
        new_card = card.read_text(encoding="utf-8") if card.is_file() else ""
        shipped, retrained = sanity_numbers(shipped_card), sanity_numbers(new_card)
        gates.holds("model card sanity numbers", shipped is not None and shipped == retrained,
                    "identical" if shipped == retrained else f"shipped {shipped}, retrained {retrained}")
        shipped, retrained = loss_curve(shipped_card), loss_curve(new_card)
        gates.holds("model card loss curve", bool(shipped) and shipped == retrained,
                    f"{len(shipped)} lines identical" if shipped == retrained else
                    f"shipped {shipped}, retrained {retrained}")
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
