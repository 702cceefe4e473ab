import csv
import json

import numpy as np
import pytest

from model_runtime.animation import LIVE_LINK_ORDER, SCHEMA, Animation, live_link_timecode
from model_runtime.errors import InputError, OutputError
from model_runtime.expression_space import ARKIT_CHANNELS, CHANNEL_INDEX


def make_anim(num_frames=31, fps=30):
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, size=(num_frames, 52)).astype(np.float32)
    segments = [{"text": "smile", "start_frame": 0, "end_frame": 15, "label": "smile", "intensity": 0.75,
                 "confidence": 0.9},
                {"text": "look shocked", "start_frame": 15, "end_frame": num_frames - 1, "label": "surprised",
                 "intensity": 0.75, "confidence": 0.8}]
    return Animation(frames=frames, fps=fps, segments=segments, instruction="smile, then look shocked",
                     model={"name": "baseline"}, warnings=["w"])


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_keeps_everything(tmp_path, suffix):
    anim = make_anim()
    path = anim.save(tmp_path / f"a{suffix}")
    back = Animation.load(path)
    np.testing.assert_allclose(back.frames, anim.frames, atol=1e-6)
    assert back.fps == 30 and back.segments == anim.segments and back.instruction == anim.instruction
    assert back.channels == list(ARKIT_CHANNELS) and back.model == anim.model and back.warnings == ["w"]


def test_json_follows_the_documented_schema(tmp_path):
    data = json.loads(make_anim().save(tmp_path / "a.json").read_text())
    assert data["schema"] == SCHEMA and data["rig"] == "arkit52" and data["fps"] == 30
    assert len(data["frames"]) == 31 and all(len(row) == 52 for row in data["frames"])
    assert set(data["segments"][0]) >= {"text", "start_frame", "end_frame", "label", "intensity", "confidence"}


def test_permuted_channels_are_reordered_to_canonical(tmp_path):
    anim = make_anim()
    data = anim.to_dict()
    order = list(reversed(range(52)))
    data["channels"] = [ARKIT_CHANNELS[i] for i in order]
    data["frames"] = [[row[i] for i in order] for row in data["frames"]]
    back = Animation.from_dict(data)
    np.testing.assert_allclose(back.frames, anim.frames, atol=1e-6)


def test_live_link_csv_has_named_columns_and_values(tmp_path):
    anim = make_anim(num_frames=40)
    path = anim.save(tmp_path / "a.csv")
    rows = list(csv.reader(path.open()))
    header = rows[0]
    assert header[:2] == ["Timecode", "BlendShapeCount"] and header[2] == "EyeBlinkLeft"
    assert len(header) == 2 + 52 + 9 and len(rows) == 41
    assert rows[31][0] == "00:00:01:00.000" and rows[35][0] == "00:00:01:04.000"
    col = header.index("MouthSmileRight")
    assert float(rows[6][col]) == pytest.approx(anim.frames[5, CHANNEL_INDEX["mouthSmileRight"]], abs=1e-6)
    assert sorted(LIVE_LINK_ORDER) == sorted(ARKIT_CHANNELS)


def test_timecode_rolls_over_minutes_and_hours():
    assert live_link_timecode(24 * 3661 + 5, 24) == "01:01:01:05.000"


def mutate(**changes):
    data = make_anim().to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize("data, fragment", [
    (mutate(schema="other/1"), "schema"),
    (mutate(fps=0), "fps"),
    (mutate(fps=241), "fps"),
    (mutate(fps=29.97), "fps"),
    (mutate(frames=[]), "frames"),
    (mutate(frames=[[0.5] * 51]), "columns"),
    (mutate(frames=[[2.0] * 52]), "[0, 1]"),
    (mutate(frames=[[float("nan")] * 52]), "NaN"),
    (mutate(frames="abc"), "frames"),
    (mutate(channels=["x"] * 52), "52 ARKit"),
    (mutate(segments=[{"text": "x"}]), "lacks"),
    (mutate(segments=[{"text": "x", "start_frame": 0, "end_frame": 99, "label": "x", "intensity": 1,
                       "confidence": 1}]), "end_frame"),
    (mutate(warnings="x"), "warnings"),
    ([1, 2], "object"),
])
def test_invalid_documents_fail_with_one_sentence(data, fragment):
    with pytest.raises(InputError) as info:
        Animation.from_dict(data, source="x.json")
    message = str(info.value)
    assert fragment in message and message.endswith(".") and "\n" not in message


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, frames=np.zeros((2, 52)), channels=np.array(ARKIT_CHANNELS),
             meta=np.array([{"schema": SCHEMA}], dtype=object))
    with pytest.raises(InputError, match="not a readable"):
        Animation.load(path)


def test_corrupt_files_are_reported(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(InputError, match="not valid JSON"):
        Animation.load(tmp_path / "a.json")
    with pytest.raises(InputError, match="not a readable"):
        Animation.load(tmp_path / "b.npz")
    with pytest.raises(InputError, match="does not exist"):
        Animation.load(tmp_path / "missing.json")


def test_failed_saves_leave_no_file(tmp_path):
    anim = make_anim()
    with pytest.raises(InputError, match="extension"):
        anim.save(tmp_path / "a.txt")
    with pytest.raises(OutputError, match="does not exist"):
        anim.save(tmp_path / "missing" / "a.json")
    assert list(tmp_path.iterdir()) == []


def test_save_does_not_clobber_on_failure(tmp_path, monkeypatch):
    path = make_anim().save(tmp_path / "a.json")
    before = path.read_bytes()
    anim = make_anim()
    monkeypatch.setattr(Animation, "_json_bytes", lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        anim.save(path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = make_anim().save(tmp_path / "a.json")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("bad_value, message", [(float("nan"), "NaN or infinite"), (float("inf"), "NaN or infinite"),
                                                (-0.5, r"\[0, 1\]"), (1.5, r"\[0, 1\]")])
def test_an_animation_cannot_hold_non_finite_or_out_of_range_weights(tmp_path, bad_value, message):
    frames = make_anim().frames.copy()
    frames[7, 3] = bad_value  # one value in one row is enough
    with pytest.raises(InputError, match=message):
        Animation(frames=frames, fps=30)
    assert not list(tmp_path.iterdir())


def test_an_animation_needs_one_column_per_channel():
    with pytest.raises(InputError, match="one row of 52 weights"):
        Animation(frames=np.zeros((5, 51), np.float32), fps=30)
