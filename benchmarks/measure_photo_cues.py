"""Measure the photo reader's geometric cue thresholds on renders of the default head at known weights.

Run: .venv/bin/python benchmarks/measure_photo_cues.py

- The smile's corner drop (photo/mouth.py DROP_SMILE, DROP_NO_SMILE): on the calibration's open-mouth renders
  (calibration.open_mouth_faces, MOUTH_FACES faces, its seed), each side's inner lip corner below the upper lip on
  mouths open at least OPEN_FULL: the 95th percentile where that side smiles at 0.75 or more, the median where it
  does not smile.
- The brows' lowering (photo/brows.py LOWERED_FROM, LOWERED_FULL): BROW_FACES renders with browDown at 0.75 to 1
  (both sides, now and then with other channels at random) and as many neutral renders, each at its own random
  size and rotation: the 95th percentile of the lowering between two neutral renders, and the median lowering of
  a browDown render against a neutral one.
No real photo is read. Prints the values to copy into the modules (rounded to 3 decimals).
"""

from __future__ import annotations

import numpy as np

BROW_FACES = 48
SEED = 7_707  # the brow renders' seed (the open-mouth renders use the calibration's own)


def corner_drops() -> tuple[float, float]:
    from model_runtime.expression_space import CHANNEL_INDEX
    from model_runtime.photo.calibration import MOUTH_FACES, SEED as CALIBRATION_SEED, open_mouth_faces, read_renders
    from model_runtime.photo.mouth import CORNERS, OPEN_FULL, corner_drops as drops_of

    weights, rotations, sizes = open_mouth_faces(MOUTH_FACES, CALIBRATION_SEED + 2)
    mouth = read_renders(weights, rotations, sizes)[2]
    opened = mouth[:, 0] >= OPEN_FULL
    drops = drops_of(mouth[opened])
    smiles = weights[opened][:, [CHANNEL_INDEX[name] for name in CORNERS]]
    return float(np.percentile(drops[smiles >= 0.75], 95)), float(np.median(drops[smiles == 0]))


def brow_renders(rng: np.random.Generator, count: int, down: bool) -> np.ndarray:
    """(count,2) brow_measures of renders of the default head, browDown at 0.75 to 1 or neutral."""
    from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
    from model_runtime.heads.render import render_expressions
    from model_runtime.photo.blendshapes import get_landmarker
    from model_runtime.photo.brows import brow_measures
    from model_runtime.photo.calibration import MAX_ROTATION_DEG, SIZES

    landmarker = get_landmarker()
    downs = [CHANNEL_INDEX["browDownLeft"], CHANNEL_INDEX["browDownRight"]]
    others = [c for c in range(NUM_CHANNELS) if c not in downs]
    out = np.full((count, 2), np.nan)
    for i in range(count):
        weights = np.zeros(NUM_CHANNELS, np.float32)
        if down:
            weights[downs] = rng.uniform(0.75, 1.0)
            if i % 2:
                chosen = rng.choice(others, 2, replace=False)
                weights[chosen] = rng.uniform(0.1, 0.6, 2)
        rotation = tuple(float(a) for a in rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, 3))
        reading = landmarker.read(render_expressions(weights, int(rng.choice(SIZES)), rotation_deg=rotation))
        if reading is not None:
            out[i] = brow_measures(reading.landmarks)
    return out[np.all(np.isfinite(out), axis=1)]


def brow_lowering(count: int = BROW_FACES, seed: int = SEED) -> tuple[float, float]:
    from model_runtime.photo.brows import lowering

    rng = np.random.default_rng(seed)
    neutral, other_neutral = brow_renders(rng, count, False), brow_renders(rng, count, False)
    down = brow_renders(rng, count, True)
    n = min(len(neutral), len(other_neutral), len(down))
    rest = lowering(other_neutral[:n], neutral[:n])
    return float(np.percentile(rest, 95)), float(np.median(lowering(down[:n], neutral[:n])))


def main() -> int:
    drop_smile, drop_no_smile = corner_drops()
    print(f"mouth.py DROP_SMILE, DROP_NO_SMILE = {drop_smile:.3f}, {drop_no_smile:.3f}")
    lowered_from, lowered_full = brow_lowering()
    print(f"brows.py LOWERED_FROM, LOWERED_FULL = {lowered_from:.3f}, {lowered_full:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
