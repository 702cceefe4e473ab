"""Life (issue 13): spontaneous blinks at human rates and small gaze shifts, never fighting the instruction."""

from __future__ import annotations

import numpy as np
import pytest

from model_runtime.evaluation.language import count_peaks
from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.idle import MIN_BLINK_GAP_S, add_life

FPS = 30
BLINK = CHANNEL_INDEX["eyeBlinkLeft"]
GAZE = [i for n, i in CHANNEL_INDEX.items() if n.startswith("eyeLook")]


def _still(seconds: float) -> np.ndarray:
    return np.zeros((int(seconds * FPS) + 1, NUM_CHANNELS), np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_blinks_come_at_human_rates_with_gaps(seed):
    frames = add_life(_still(60), FPS, seed)
    blinks = count_peaks(frames[:, BLINK], 0.5)
    assert 8 <= blinks <= 26  # about 17 a minute at rest (Bentivoglio et al. 1997)
    closed = np.flatnonzero(frames[:, BLINK] > 0.9)
    starts = closed[np.r_[True, np.diff(closed) > 1]]
    assert np.all(np.diff(starts) / FPS >= MIN_BLINK_GAP_S - 1 / FPS)
    gaze = frames[:, GAZE]
    assert 0 < gaze.max() <= 0.1 and len(np.unique(gaze.round(3), axis=0)) > 5  # small shifts, several of them


def test_life_only_touches_the_eyes_and_is_repeatable():
    base = _still(10)
    base[:, CHANNEL_INDEX["mouthSmileLeft"]] = 0.6
    a, b = add_life(base, FPS, 7), add_life(base, FPS, 7)
    np.testing.assert_array_equal(a, b)
    others = [i for i in range(NUM_CHANNELS) if i not in GAZE and i not in (BLINK, CHANNEL_INDEX["eyeBlinkRight"])]
    np.testing.assert_array_equal(a[:, others], base[:, others])
    assert not np.array_equal(add_life(base, FPS, 8), a)


@pytest.mark.parametrize("held", ["eyeWideLeft", "eyeSquintRight", "eyeBlinkLeft"])
def test_no_blink_while_the_instruction_holds_the_lids(held):
    frames = _still(20)
    frames[FPS * 5:FPS * 15, CHANNEL_INDEX[held]] = 0.8
    life = add_life(frames, FPS, 0)
    held_frames = slice(FPS * 5, FPS * 15)
    np.testing.assert_array_equal(life[held_frames, BLINK], frames[held_frames, BLINK])
    assert life[:FPS * 5, BLINK].max() > 0.9 or life[FPS * 15:, BLINK].max() > 0.9  # blinks elsewhere


def test_no_gaze_drift_while_the_instruction_directs_the_eyes():
    frames = _still(10)
    frames[:, CHANNEL_INDEX["eyeLookOutLeft"]] = 0.8
    frames[:, CHANNEL_INDEX["eyeLookInRight"]] = 0.8
    np.testing.assert_array_equal(add_life(frames, FPS, 0)[:, GAZE], frames[:, GAZE])


def test_runtime_life_option(cache_root):
    from model_runtime import Runtime

    rt = Runtime.load(model="baseline", device="cpu")
    plain = rt.generate("smile for 8 seconds")
    lively = rt.generate("smile for 8 seconds", life=True)
    assert count_peaks(plain.frames[:, BLINK], 0.5) == 0 and count_peaks(lively.frames[:, BLINK], 0.5) >= 1
    wide = rt.generate("widen the eyes for 8 seconds", life=True)
    apex = wide.segments[0]["apex_frame"]
    assert wide.frames[apex:, BLINK].max() == 0


def test_no_blink_or_gaze_shift_where_the_instruction_holds_them_at_rest():
    frames = _still(20)
    held = np.zeros_like(frames, dtype=bool)
    held[FPS * 5:FPS * 15, BLINK] = True
    held[:, GAZE] = True
    life = add_life(frames, FPS, 0, held=held)
    np.testing.assert_array_equal(life[FPS * 5:FPS * 15, BLINK], frames[FPS * 5:FPS * 15, BLINK])
    np.testing.assert_array_equal(life[:, GAZE], frames[:, GAZE])
    assert life[:FPS * 5, BLINK].max() > 0.9 or life[FPS * 15:, BLINK].max() > 0.9  # blinks elsewhere


@pytest.mark.parametrize("model", ["baseline", "i2fet"])
def test_runtime_without_blinking_keeps_life_from_blinking(cache_root, model):
    from model_runtime import Runtime

    rt = Runtime.load(model=model, device="cpu")
    assert count_peaks(rt.generate("smile for 10 seconds", life=True).frames[:, BLINK], 0.5) >= 1
    held = rt.generate("smile without blinking for 10 seconds", life=True)
    assert count_peaks(held.frames[:, BLINK], 0.5) == 0 and held.frames[:, BLINK].max() < 0.1
    assert held.segments[0]["label"] == "smile"
    mouth = rt.generate("look surprised without opening the mouth")
    assert mouth.frames[:, mouth.channels.index("jawOpen")].max() == 0.0
