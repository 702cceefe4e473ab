"""Jobs files at farm scale, without Blender: which rows a chunk takes, what a row is, and the manifest of what is done.

The manifest is what makes a batch resumable: one JSON file beside the jobs file, keyed by each row's fingerprint
(its settings and the model), holding the SHA-256 of every output the row wrote. A rerun skips a row only when the
same settings were baked and every output is still there with the same content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from .errors import InputError
from .paths import atomic_output, output_clash, sha256_file

MANIFEST_VERSION = 1
_ROWS = re.compile(r"^\s*(\d+)\s*([-+])\s*(\d+)\s*$|^\s*(\d+)\s*$")


def parse_rows(spec: str, total: int) -> range:
    """Rows (0-based) for `A-B` (rows A to B, 1-based, inclusive), `A+N` (N rows from A) or `A`; clipped at the end
    of the file, so the last chunk of a farm job may be short."""
    match = _ROWS.match(spec or "")
    if not match:
        raise InputError(f"--rows takes A-B, A+N or A (rows counted from 1), not {spec!r}.")
    if match.group(4):
        first = last = int(match.group(4))
    else:
        first, op, other = int(match.group(1)), match.group(2), int(match.group(3))
        last = other if op == "-" else first + other - 1
    if first < 1 or last < first:
        raise InputError(f"--rows {spec}: the first row is 1 and the range cannot run backwards.")
    if first > total:
        raise InputError(f"--rows {spec}: the jobs file has only {total} row(s).")
    return range(first - 1, min(last, total))


def rows_label(rows: range, total: int) -> str:
    """`rows 3-4` for a chunk, '' for the whole file (names the manifest and summary of a chunk)."""
    if rows.start == 0 and rows.stop == total:
        return ""
    return f"rows {rows.start + 1}-{rows.stop}"


def check_distinct_outputs(outputs: Iterable[list[str]]) -> None:
    """Two rows writing the same file would race (and the later would silently win): refuse before any work."""
    clash = output_clash((row, path) for row, paths in enumerate(outputs, 1) for path in paths)
    if clash:
        raise InputError(f"Jobs {clash[0]} and {clash[1]} both write {clash[2]}; give each job its own outputs.")


def fingerprint(settings: Mapping) -> str:
    """A row's identity for the manifest: everything that decides its outputs (paths included)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sidecar(jobs_file: str | os.PathLike, kind: str, label: str = "") -> Path:
    """`jobs.manifest.json` / `jobs.summary.json` beside the jobs file; a chunk's get `jobs.rows-3-4.manifest.json`."""
    source = Path(jobs_file)
    part = f".{label.replace(' ', '-')}" if label else ""
    return source.with_name(f"{source.stem}{part}.{kind}.json")


@dataclass
class Manifest:
    """Done rows by fingerprint: {"row": n, "outputs": {path: sha256}}, and rows in flight with an empty sha256 for
    each output (`claim`). Written after every row (atomically), so an interrupted run loses at most the rows that
    were in flight, and their outputs stay its own to replace."""

    path: Path
    rows: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Manifest":
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"The manifest {path} cannot be read ({exc}); delete it or rerun with --force.") from None
        rows = data.get("rows") if isinstance(data, dict) else None
        if (data.get("version") if isinstance(data, dict) else None) != MANIFEST_VERSION or not isinstance(rows, dict) \
                or not all(_valid_entry(entry) for entry in rows.values()):
            raise InputError(f"The manifest {path} is not one this version wrote; delete it or rerun with --force.")
        return cls(path, rows)

    def is_done(self, key: str) -> bool:
        """True when this row's outputs are all present and unchanged since it was baked."""
        entry = self.rows.get(key)
        if not entry:
            return False
        for path, digest in entry["outputs"].items():
            if not os.path.isfile(path) or sha256_file(path) != digest:
                return False
        return True

    def owns(self, path: str | os.PathLike) -> bool:
        """True when a row baked earlier wrote `path`: a rerun may replace it without --force."""
        return any(str(path) in entry["outputs"] for entry in self.rows.values())

    def record(self, key: str, row: int, outputs: Mapping[str, str]) -> None:
        self.rows[key] = {"row": row, "outputs": dict(outputs)}
        self.save()

    def claim(self, key: str, row: int, outputs: list[str]) -> None:
        """Own a row's outputs before they are written (no digest, so the row is not done): a run stopped between
        a worker writing them and this manifest recording them leaves files a rerun may replace, not a refusal."""
        self.record(key, row, dict.fromkeys(map(str, outputs), ""))

    def forget(self, key: str) -> None:
        if self.rows.pop(key, None) is not None:
            self.save()

    def save(self) -> None:
        payload = json.dumps({"version": MANIFEST_VERSION, "rows": self.rows}, indent=1, sort_keys=True)
        with atomic_output(self.path, "w") as handle:
            handle.write(payload + "\n")


def _valid_entry(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("row"), int) and isinstance(entry.get("outputs"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in entry["outputs"].items()))


def stale_temporaries(output: str | os.PathLike) -> list[Path]:
    """The staged temporaries (`model_runtime.paths.StagedOutputs`) a killed worker may have left beside `output`."""
    target = Path(output)
    if not target.parent.is_dir():
        return []
    prefix = f"{target.stem}."  # `.stem.XXXX.tmp.json`, and `..stem.XXXX.tmp.json.YYYY.tmp` from a save inside it
    return [p for p in target.parent.iterdir()
            if p.name.startswith(".") and p.name.lstrip(".").startswith(prefix) and f".tmp{target.suffix}" in p.name]
