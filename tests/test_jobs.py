"""Farm jobs without Blender (`model_runtime.jobs`): row chunks, distinct outputs, the manifest, stale temporaries."""

from __future__ import annotations

import hashlib
import json

import pytest

from model_runtime.errors import InputError
from model_runtime.jobs import (Manifest, check_distinct_outputs, fingerprint, parse_rows, rows_label, sidecar,
                                stale_temporaries)
from model_runtime.paths import StagedOutputs


@pytest.mark.parametrize("spec, total, rows", [
    ("1-3", 10, [0, 1, 2]), ("4+3", 10, [3, 4, 5]), ("9+4", 10, [8, 9]), ("2", 10, [1]), (" 2 - 2 ", 3, [1]),
    ("1-99", 3, [0, 1, 2]),
])
def test_parse_rows(spec, total, rows):
    assert list(parse_rows(spec, total)) == rows


@pytest.mark.parametrize("spec, fragment", [
    ("0-2", "the first row is 1"), ("5-4", "cannot run backwards"), ("11+2", "only 10 row(s)"), ("1..3", "A-B"),
    ("", "A-B"), ("-1", "A-B"), ("3+0", "cannot run backwards"),
])
def test_parse_rows_refuses(spec, fragment):
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_rows(spec, 10)


def test_rows_label_and_sidecar_names(tmp_path):
    assert rows_label(range(0, 10), 10) == ""
    assert rows_label(range(4, 8), 10) == "rows 5-8"
    assert sidecar(tmp_path / "barks.csv", "manifest").name == "barks.manifest.json"
    assert sidecar(tmp_path / "barks.csv", "summary", "rows 5-8").name == "barks.rows-5-8.summary.json"


def test_distinct_outputs(tmp_path):
    check_distinct_outputs([[str(tmp_path / "a.json")], [str(tmp_path / "b.json"), str(tmp_path / "b.fbx")]])
    with pytest.raises(InputError, match="Jobs 1 and 3 both write"):
        check_distinct_outputs([[str(tmp_path / "a.json")], [], [str(tmp_path / "x" / ".." / "a.json")]])


def test_fingerprint_depends_on_every_setting():
    base = {"instruction": "smile", "seed": 0, "animation": "/a.json"}
    assert fingerprint(base) == fingerprint(dict(reversed(list(base.items()))))
    assert len({fingerprint(base), fingerprint(dict(base, seed=1)), fingerprint(dict(base, animation="/b.json"))}) == 3


def test_manifest_round_trip_and_done_only_when_outputs_match(tmp_path):
    out = tmp_path / "a.json"
    out.write_bytes(b"frames")
    manifest = Manifest.load(tmp_path / "m.json")
    assert manifest.rows == {} and not manifest.is_done("k")
    manifest.record("k", 1, {str(out): hashlib.sha256(b"frames").hexdigest()})
    again = Manifest.load(tmp_path / "m.json")
    assert again.is_done("k") and not again.is_done("other")
    out.write_bytes(b"frameS")
    assert not again.is_done("k")
    out.unlink()
    assert not again.is_done("k")
    again.forget("k")
    assert json.loads((tmp_path / "m.json").read_text())["rows"] == {}


@pytest.mark.parametrize("content", ["{nope", "[]", json.dumps({"version": 99, "rows": {}}),
                                     json.dumps({"version": 1, "rows": {"k": {"row": "1", "outputs": {}}}}),
                                     json.dumps({"version": 1, "rows": {"k": {"row": 1, "outputs": {"a": 5}}}}),
                                     "[" * 100_000 + "]" * 100_000])
def test_manifest_that_is_not_ours_is_refused(tmp_path, content):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(InputError, match="delete it or rerun with --force"):
        Manifest.load(path)
    assert path.read_text() == content


def test_stale_temporaries_are_exactly_the_staged_files(tmp_path):
    target = tmp_path / "wink.json"
    staged = StagedOutputs()
    tmp = staged.stage(target)  # what a killed worker leaves behind
    nested = tmp_path / f".{tmp.name}.abc123.tmp"  # an atomic save into the staged name
    nested.write_text("x")
    for name in ("wink.json", "wink.png", ".winks.x.tmp.json", "other.json", ".wink.notes"):
        (tmp_path / name).write_text("keep")
    assert sorted(stale_temporaries(target)) == sorted([tmp, nested])
    assert stale_temporaries(tmp_path / "missing" / "a.json") == []


def test_a_claimed_row_owns_its_outputs_but_is_not_done(tmp_path):
    out = tmp_path / "a.json"
    out.write_bytes(b"frames")
    manifest = Manifest(tmp_path / "m.json")
    manifest.claim("k", 3, [str(out)])
    again = Manifest.load(tmp_path / "m.json")  # a claim is a valid entry of the format
    assert again.owns(out) and not again.is_done("k") and again.rows["k"]["row"] == 3
    again.record("k", 3, {str(out): hashlib.sha256(b"frames").hexdigest()})
    assert again.is_done("k")
