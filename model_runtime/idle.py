"""Life: spontaneous blinks and small gaze shifts laid under an instruction, never fighting what it asks.

Rates and shapes from the literature: spontaneous blinking at rest runs at about 17 per minute with irregular
intervals (Bentivoglio et al. 1997, "Analysis of blink rate patterns in normal subjects", Movement Disorders 12(6));
a spontaneous blink closes in about 100 ms and reopens in about 200 ms (Kwon et al. 2013, J R Soc Interface 10(85)).
Gaze at rest shifts in small saccades every one to three seconds.

What the instruction controls is left alone: no blink where it holds the lids (wide, squinting, closed, or its own
blinks and winks), no gaze drift where it directs the eyes ("look left").
"""

from __future__ import annotations

import numpy as np

from .expression_space import CHANNEL_INDEX

BLINKS_PER_MINUTE = 17.0
MIN_BLINK_GAP_S = 1.2
BLINK_CLOSE_S = 0.1
BLINK_OPEN_S = 0.2
GAZE_SHIFT_EVERY_S = (1.0, 3.0)
GAZE_AMPLITUDE = 0.08
_LIDS = [CHANNEL_INDEX[n] for n in ("eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft", "eyeWideRight",
                                     "eyeSquintLeft", "eyeSquintRight")]
_BLINK = [CHANNEL_INDEX["eyeBlinkLeft"], CHANNEL_INDEX["eyeBlinkRight"]]
_GAZE = {d: [CHANNEL_INDEX[f"eyeLook{d}{s}"] for s in ("Left", "Right")] for d in ("Up", "Down")}
_GAZE_LR = ([CHANNEL_INDEX["eyeLookOutLeft"], CHANNEL_INDEX["eyeLookInRight"]],
            [CHANNEL_INDEX["eyeLookInLeft"], CHANNEL_INDEX["eyeLookOutRight"]])
_ALL_GAZE = [i for n, i in CHANNEL_INDEX.items() if n.startswith("eyeLook")]
_HELD = 0.3  # a lid channel this high is the instruction's own doing


def blink_curve(num_frames: int, fps: int) -> np.ndarray:
    """One spontaneous blink's lid closure over its frames (fast close, slower reopening)."""
    t = np.arange(num_frames) / fps
    close = np.clip(t / BLINK_CLOSE_S, 0, 1)
    opening = np.clip((t - BLINK_CLOSE_S) / BLINK_OPEN_S, 0, 1)
    return np.where(t <= BLINK_CLOSE_S, np.sin(close * np.pi / 2), np.cos(opening * np.pi / 2)).astype(np.float32)


def add_life(frames: np.ndarray, fps: int, seed: int = 0, held: np.ndarray | None = None) -> np.ndarray:
    """A copy of (T, 52) frames with spontaneous blinks and gaze shifts where the instruction leaves the eyes free;
    `held`, (T, 52) bool, marks channels the instruction holds at rest ("stare without blinking")."""
    out = np.array(frames, dtype=np.float32, copy=True)
    rng = np.random.default_rng(seed)
    lids_free = out[:, _LIDS].max(axis=1) < _HELD
    gaze_free = out[:, _ALL_GAZE].max(axis=1) < 0.05
    if held is not None:
        lids_free &= ~held[:, _BLINK].any(axis=1)
        gaze_free &= ~held[:, _ALL_GAZE].any(axis=1)
    length = int(round((BLINK_CLOSE_S + BLINK_OPEN_S) * fps)) + 1
    curve = blink_curve(length, fps)
    mean_gap = 60.0 / BLINKS_PER_MINUTE
    t = rng.uniform(0.3, mean_gap)
    while True:
        start = int(round(t * fps))
        if start + length > len(out):
            break
        window = slice(start, start + length)
        if lids_free[window].all():
            out[window, _BLINK[0]] = np.maximum(out[window, _BLINK[0]], curve)
            out[window, _BLINK[1]] = np.maximum(out[window, _BLINK[1]], curve)
        t += max(MIN_BLINK_GAP_S, rng.gamma(2.0, mean_gap / 2.0))
    _gaze_shifts(out, gaze_free, fps, rng)
    return np.clip(out, 0.0, 1.0)


def _gaze_shifts(out: np.ndarray, free: np.ndarray, fps: int, rng: np.random.Generator) -> None:
    """Hold a small random gaze offset between saccades, only on frames whose gaze the instruction leaves free."""
    t, target = 0.0, np.zeros(2, dtype=np.float32)
    saccade = max(1, int(round(0.04 * fps)))  # a small saccade takes a few tens of milliseconds
    total = len(out)
    while int(t * fps) < total:
        start = int(round(t * fps))
        hold = int(round(rng.uniform(*GAZE_SHIFT_EVERY_S) * fps))
        new = rng.uniform(-GAZE_AMPLITUDE, GAZE_AMPLITUDE, size=2).astype(np.float32)
        for k in range(start, min(total, start + hold)):
            u = min(1.0, (k - start + 1) / saccade)
            x, y = target + (new - target) * u
            if free[k]:
                out[k, _GAZE["Up"]] = max(y, 0.0)
                out[k, _GAZE["Down"]] = max(-y, 0.0)
                out[k, _GAZE_LR[0]] = max(x, 0.0)
                out[k, _GAZE_LR[1]] = max(-x, 0.0)
        target = new
        t += hold / fps
