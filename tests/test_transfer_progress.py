"""The shape transfer's progress and cancellation contract (model_runtime.progress), without Blender: stages in order,
fractions that only rise to (1.0, "done"), the same shapes as without a callback, and Cancelled raised from the
callback at any stage stops the transfer with nothing returned."""

import numpy as np
import pytest

from transfer_heads import load_canonical
from model_runtime.errors import WeightsError
from model_runtime.progress import Cancelled, within
from model_runtime.rigs.registration import FITTING
from model_runtime.rigs.shape_transfer import transfer_default_head_shapes

STAGES = ["finding the face", FITTING, "transferring the shapes", "smoothing inside-out triangles",
          "checking blinks and lips", "done"]


def _stages(calls):
    """The stage names in the order they started (repeats of a running stage dropped)."""
    return [stage for i, (_, stage) in enumerate(calls) if i == 0 or calls[i - 1][1] != stage]


@pytest.fixture(scope="module")
def head():
    return load_canonical()


@pytest.fixture(scope="module")
def heard(head, cache_root):
    calls = []
    result = transfer_default_head_shapes(head.vertices, head.triangles, progress=lambda *call: calls.append(call))
    return calls, result


def test_progress_rises_through_every_stage_to_done(heard):
    calls, _ = heard
    fractions = [fraction for fraction, _ in calls]
    assert _stages(calls) == STAGES
    assert fractions[0] == 0.0 and calls[-1] == (1.0, "done") and fractions.count(1.0) == 1
    assert all(0.0 <= a <= b <= 1.0 for a, b in zip(fractions, fractions[1:]))
    assert sum(stage == FITTING for _, stage in calls) >= 10  # the registration's steps are heard one by one


def test_listening_changes_nothing(head, heard):
    _, result = heard
    quiet = transfer_default_head_shapes(head.vertices, head.triangles)
    np.testing.assert_array_equal(result.deltas, quiet.deltas)
    assert result.notes == quiet.notes and result.checks.summary() == quiet.checks.summary()


@pytest.mark.parametrize("stop_at", ["finding the face", FITTING, "checking blinks and lips"])
def test_cancelled_from_the_callback_at_any_stage_stops_the_transfer(head, cache_root, stop_at):
    calls = []

    def progress(fraction, stage):
        calls.append((fraction, stage))
        if stage == stop_at:
            raise Cancelled()

    with pytest.raises(Cancelled):
        transfer_default_head_shapes(head.vertices, head.triangles, progress=progress)
    assert calls[-1][1] == stop_at and sum(stage == stop_at for _, stage in calls) == 1  # nothing ran on after it


def test_without_the_face_detector_progress_still_ends_at_done(head, cache_root, monkeypatch):
    import model_runtime.rigs.shape_transfer as shape_transfer

    def no_detector(*args, **kwargs):
        raise WeightsError("Starting from a photo needs MediaPipe's face mesh; it cannot be imported.")

    monkeypatch.setattr(shape_transfer, "_face_landmarks", no_detector)
    calls = []
    transfer_default_head_shapes(head.vertices, head.triangles, progress=lambda *call: calls.append(call))
    fractions = [fraction for fraction, _ in calls]
    assert _stages(calls) == ["finding the face", FITTING, "transferring the shapes", "done"]
    assert all(a <= b for a, b in zip(fractions, fractions[1:])) and calls[-1] == (1.0, "done")


def test_within_maps_a_part_onto_its_share_of_the_whole():
    heard = []
    part = within(within(lambda *call: heard.append(call), 0.2, 0.6), 0.5, 1.0)
    part(0.0, "a")
    part(1.0, "b")
    assert heard == [(pytest.approx(0.4), "a"), (pytest.approx(0.6), "b")]
    assert within(None, 0.0, 1.0) is None
