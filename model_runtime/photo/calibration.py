"""Calibrate the Face Landmarker's scores onto the default head's ARKit weights.

The landmarker's scores follow its own training labels, not this rig's shapes: a weight of 1 on one of the default
head's keys reads anywhere from 0.2 to 1.0, and the default head's neutral face already reads some channels. So the
default head is rendered at weights it knows, the landmarker reads every render, and for each channel a monotone map
from "score above the neutral face's score" to the weight is fitted (isotonic regression, stored as a
piecewise-linear table). The renders come from the project's renderer (render.py) and, given --extra-renders, from
others (benchmarks/render_blender_faces.py --calibration: Blender's Workbench under several lights and colours), so
that the maps follow the face rather than one renderer's look; each source's neutral reading is removed before
pooling, and the floor kept for photos is their mean. The head rotation gets a per-axis gain and offset, from the
project's renders. On an open mouth the smile is also bounded by where the mouth corners sit in the opening
(mouth.py): the bound's two ends are measured on renders of open mouths with and without a smile, pooled with the
open mouths among the renders above (the place the corners keep without a smile, 95th percentile, and with a full
one, median). On closed lips the smile has a floor from the mouth's width above the neutral face's (mouth.py): a
monotone map from that excess to the smile weight, fitted on the project's renders with closed lips, and the default
head's neutral width (the neutral renders' median) for photos without a neutral photo. Two geometric cues are not in
the file: the open mouth's smile is also bounded by how far its corners hang below the upper lip (mouth.py
drop_bound), and browDown by the smile read, unless the brows are measured lowered against a neutral photo
(brows.py); their thresholds are measured on other renders of the default head by benchmarks/measure_photo_cues.py.

    python benchmarks/render_blender_faces.py --calibration 600 --size 256 --out /tmp/blender-calibration
    python -m model_runtime.photo.calibration --extra-renders /tmp/blender-calibration

Everything is seeded, so the same commands give the same file (on the same mediapipe and Blender builds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from ..expression_space import ARKIT_CHANNELS, CHANNEL_INDEX, LEFT_CHANNELS, NUM_CHANNELS, RIGHT_CHANNELS
from ..paths import WEIGHTS_DIR
from .brows import brow_down_bound, brow_measures
from .mouth import CORNERS, MEASURES, OPEN_FROM, OPEN_FULL, drop_bound, mouth_measures, smile_bound, smile_floor

SEED = 51_017  # the calibration faces' seed; tests and benchmarks draw theirs from other seeds
FACES = 1200
MAX_ROTATION_DEG = 12.0
SIZES = (224, 256, 320)
KNOTS = 21  # points of each channel's piecewise-linear map
NEUTRAL_VIEWS = 24  # neutral renders (random rotations and sizes) whose readings give the default head's own floor
DEFAULT_PATH = WEIGHTS_DIR / "photo-calibration.json"
VERSION = 3
UNREAD = ("tongueOut",)  # the landmarker has no such score
MOUTH_FACES = 240  # extra renders of open mouths, for the smile bound
NO_SMILE_PERCENTILE = 95  # of the corners' place in open mouths without a smile: where the smile bound starts
FULL_SMILE = 0.75  # renders with at least this smile weight give the place of a full smile (their median)
WIDTH_SPAN = 0.2  # the width map's range: mouth width above the neutral one, in eye-corner distances


def calibration_faces(count: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count,52) weights, (count,3) rotations, (count,) sizes: a third every channel alone at a random level (so each
    channel's whole range is seen), a third random instances of the knowledge base's concepts, a third random sparse
    mixes of 2 to 6 channels with left/right pairs together half of the time."""
    from ..knowledge import all_concepts, sample_concept_weights

    rng = np.random.default_rng(seed)
    concepts = all_concepts()
    mirror = np.arange(NUM_CHANNELS)
    mirror[list(LEFT_CHANNELS)] = RIGHT_CHANNELS
    mirror[list(RIGHT_CHANNELS)] = LEFT_CHANNELS
    weights = np.zeros((count, NUM_CHANNELS), dtype=np.float32)
    for i, row in enumerate(weights):
        kind = i % 3
        if kind == 0:
            channel = rng.integers(NUM_CHANNELS)
            row[channel] = rng.uniform(0.05, 1.0)
            if rng.random() < 0.5:
                row[mirror[channel]] = row[channel]
        elif kind == 1:
            row[:] = sample_concept_weights(concepts[rng.integers(len(concepts))], rng,
                                            intensity=float(rng.uniform(0.4, 1.0)))
        else:
            chosen = rng.choice(NUM_CHANNELS, rng.integers(2, 7), replace=False)
            row[chosen] = rng.uniform(0.1, 1.0, chosen.size)
            if rng.random() < 0.5:
                row[mirror[chosen]] = np.maximum(row[mirror[chosen]], row[chosen])
    rotations = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, (count, 3))
    sizes = rng.choice(SIZES, count)
    return np.clip(weights, 0.0, 1.0), rotations, sizes


def open_mouth_faces(count: int, seed: int = SEED + 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count,52) weights, (count,3) rotations, (count,) sizes of open mouths: jawOpen 0.15 to 1, every other face
    smiling (0 to 1, both sides), and up to two other channels at random levels (lips, brows, eyes alike)."""
    rng = np.random.default_rng(seed)
    smiles = [CHANNEL_INDEX[name] for name in CORNERS]
    others = [c for c in range(NUM_CHANNELS) if c not in smiles and c != CHANNEL_INDEX["jawOpen"]]
    weights = np.zeros((count, NUM_CHANNELS), dtype=np.float32)
    for i, row in enumerate(weights):
        row[CHANNEL_INDEX["jawOpen"]] = rng.uniform(0.15, 1.0)
        if i % 2:
            row[smiles] = rng.uniform(0.0, 1.0)
        chosen = rng.choice(others, rng.integers(0, 3), replace=False)
        row[chosen] = rng.uniform(0.1, 0.8, chosen.size)
    rotations = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, (count, 3))
    return weights, rotations, rng.choice(SIZES, count)


def read_renders(weights: np.ndarray, rotations: np.ndarray, sizes: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The landmarker's (N,52) scores, (N,3) rotations and (N,4) mouth measures (mouth.py) on renders of the default
    head (NaN rows: no face found)."""
    from ..heads.render import render_expressions
    from .blendshapes import get_landmarker

    landmarker = get_landmarker()
    scores = np.full((len(weights), NUM_CHANNELS), np.nan)
    angles = np.full((len(weights), 3), np.nan)
    mouth = np.full((len(weights), MEASURES), np.nan)
    for i, (w, rotation, size) in enumerate(zip(weights, rotations, sizes)):
        image = render_expressions(w, int(size), rotation_deg=tuple(float(a) for a in rotation))
        reading = landmarker.read(image)
        if reading is not None:
            scores[i], angles[i], mouth[i] = reading.scores, reading.rotation_deg, mouth_measures(reading.landmarks)
    return scores, angles, mouth


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: the non-decreasing least-squares fit of y on x, as (sorted x, fitted y)."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order].astype(np.float64)
    values, counts = [], []
    for value in ys:
        values.append(value)
        counts.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            total = counts[-2] + counts[-1]
            merged = (values[-2] * counts[-2] + values[-1] * counts[-1]) / total
            values[-2:], counts[-2:] = [merged], [total]
    return xs, np.repeat(values, counts)


def monotone_table(x: np.ndarray, y: np.ndarray, knots: int = KNOTS) -> tuple[np.ndarray, np.ndarray]:
    """A piecewise-linear non-decreasing map y(x) on `knots` evenly spaced points of [0, 1], through (0, 0): the
    isotonic fit, held flat beyond the largest x seen."""
    xs, fitted = isotonic(x, y)
    kx = np.linspace(0.0, 1.0, knots)
    ky = np.interp(kx, xs, fitted)
    ky = np.maximum.accumulate(np.clip(ky - ky[0], 0.0, 1.0))
    return kx, ky


@dataclass(frozen=True)
class Calibration:
    floor: np.ndarray  # (52,) the default head's neutral reading (what a neutral face of it scores)
    knots_x: np.ndarray  # (52,K) score above the floor
    knots_y: np.ndarray  # (52,K) weight
    rotation_gain: np.ndarray  # (3,) read angle -> true angle: gain * (read - offset)
    rotation_offset: np.ndarray  # (3,)
    smile_places: np.ndarray  # (2,) where the corners sit in an open mouth without a smile, and with a full one
    neutral_width: float  # the default head's mouth width at rest (eye-corner distances)
    width_x: np.ndarray  # (K,) mouth width above the neutral one
    width_y: np.ndarray  # (K,) the least smile weight of closed lips that wide

    def weights(self, scores: np.ndarray, floor: np.ndarray | None = None, mouth: np.ndarray | None = None,
                neutral_mouth: np.ndarray | None = None, brows: np.ndarray | None = None,
                neutral_brows: np.ndarray | None = None) -> np.ndarray:
        """(…,52) scores -> weights; `floor` (the reading of the person's own neutral face) replaces the default
        head's where given; `mouth` ((…,4) mouth_measures of the same faces) bounds the smile of an open mouth (by
        the corners' place in the opening and their drop below the upper lip) and gives closed lips a least smile
        from their width, above the width in `neutral_mouth` (the person's neutral face's (4,) mouth_measures) where
        given and measured, else above the default head's; `brows` ((…,2) brows.brow_measures) bounds browDown by
        the smile read, unless the brows are lowered against `neutral_brows` (brows.py)."""
        above = np.clip(np.asarray(scores, dtype=np.float64) - (self.floor if floor is None else floor), 0.0, 1.0)
        out = np.empty_like(above)
        for c in range(NUM_CHANNELS):
            out[..., c] = np.interp(above[..., c], self.knots_x[c], self.knots_y[c])
        for name in UNREAD:
            out[..., CHANNEL_INDEX[name]] = 0.0
        if mouth is not None:
            smiles = [CHANNEL_INDEX[name] for name in CORNERS]
            out[..., smiles] = np.minimum(out[..., smiles], np.minimum(smile_bound(mouth, *self.smile_places),
                                                                       drop_bound(mouth)))
            rest = self.neutral_width
            if neutral_mouth is not None and np.isfinite(neutral_mouth[3]):
                rest = float(neutral_mouth[3])
            out[..., smiles] = np.maximum(out[..., smiles], smile_floor(mouth, rest, self.width_x, self.width_y))
        if brows is not None:
            smiles = [CHANNEL_INDEX[name] for name in CORNERS]
            downs = [CHANNEL_INDEX["browDownLeft"], CHANNEL_INDEX["browDownRight"]]
            bound = brow_down_bound(out[..., smiles].mean(axis=-1), brows, neutral_brows)
            out[..., downs] = np.minimum(out[..., downs], bound)
        return np.clip(out, 0.0, 1.0)

    def read(self, reading, neutral=None) -> np.ndarray:
        """(52,) the weights of one landmarker reading (blendshapes.FaceReading), less what `neutral` (the reading of
        the same person's neutral face) already shows."""
        rest = {} if neutral is None else {"floor": neutral.scores, "neutral_mouth": mouth_measures(neutral.landmarks),
                                           "neutral_brows": brow_measures(neutral.landmarks)}
        return self.weights(reading.scores, mouth=mouth_measures(reading.landmarks),
                            brows=brow_measures(reading.landmarks), **rest)

    def rotation(self, read_deg) -> tuple[float, float, float]:
        angles = self.rotation_gain * (np.asarray(read_deg, dtype=np.float64) - self.rotation_offset)
        return tuple(float(a) for a in angles)

    def to_json(self) -> dict:
        return {"version": VERSION, "channels": list(ARKIT_CHANNELS),
                "floor": np.round(self.floor, 5).tolist(), "knots_x": np.round(self.knots_x, 5).tolist(),
                "knots_y": np.round(self.knots_y, 5).tolist(),
                "rotation_gain": np.round(self.rotation_gain, 5).tolist(),
                "rotation_offset": np.round(self.rotation_offset, 5).tolist(),
                "smile_places": np.round(self.smile_places, 5).tolist(),
                "neutral_width": round(float(self.neutral_width), 5), "width_x": np.round(self.width_x, 5).tolist(),
                "width_y": np.round(self.width_y, 5).tolist()}


def zero_floor(weights: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each channel's median score over the renders where its weight is 0: a source's neutral reading."""
    return np.array([np.median(scores[weights[:, c] == 0, c]) if np.any(weights[:, c] == 0) else 0.0
                     for c in range(NUM_CHANNELS)])


def fit_smile_places(weights: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    """(2,) where the mouth corners sit in the opening of the renders' open mouths (gap at least OPEN_FULL), each
    side with its own smile weight: without a smile (NO_SMILE_PERCENTILE) and with a full one (median)."""
    places, smiles = [], []
    opened = mouth[:, 0] >= OPEN_FULL
    for side, name in enumerate(CORNERS):
        places.append(mouth[opened, 1 + side])
        smiles.append(weights[opened, CHANNEL_INDEX[name]])
    places, smiles = np.concatenate(places), np.concatenate(smiles)
    none, full = places[smiles == 0], places[smiles >= FULL_SMILE]
    if none.size < 10 or full.size < 10:
        raise ValueError(f"too few open-mouth renders to place the smile bound ({none.size} without a smile, "
                         f"{full.size} with a full one)")
    return np.array([np.percentile(none, NO_SMILE_PERCENTILE), np.median(full)])


def fit_width_map(weights: np.ndarray, mouth: np.ndarray, neutral_width: float) -> tuple[np.ndarray, np.ndarray]:
    """(K,) x and y of the map from closed lips' width above `neutral_width` to the smile weight (both sides' mean),
    on the renders whose lip gap is below OPEN_FROM."""
    shut = mouth[:, 0] < OPEN_FROM
    smile = weights[shut][:, [CHANNEL_INDEX[name] for name in CORNERS]].mean(axis=1)
    if not np.any(smile > 0):
        raise ValueError("no closed-lip renders with a smile to fit the width map on")
    kx, ky = monotone_table(np.clip((mouth[shut, 3] - neutral_width) / WIDTH_SPAN, 0.0, 1.0), smile)
    return kx * WIDTH_SPAN, ky


def fit_calibration(weights, scores, mouth, read_rotations, true_rotations, neutral_scores, neutral_mouth,
                    extra: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = (),
                    open_mouths: tuple[np.ndarray, np.ndarray] | None = None) -> Calibration:
    """Per-channel monotone maps, the smile bound's places, the width map and the rotation's gain/offset from the
    project's renders (weights, scores, mouth measures, rotations, and the neutral face's readings and mouth
    measures), the maps and places pooled with `extra` sources' (weights, scores, mouth measures); `open_mouths`
    (weights, mouth measures) add to the smile bound's renders."""
    ok = np.all(np.isfinite(scores), axis=1)
    sources = [(weights[ok], scores[ok], np.nanmedian(neutral_scores, axis=0))]
    mouths = [mouth[ok]]
    for w, s, m in extra:
        found = np.all(np.isfinite(s), axis=1)
        sources.append((w[found], s[found], zero_floor(w[found], s[found])))
        mouths.append(m[found])
    floor = np.mean([f for _, _, f in sources], axis=0)
    knots_x = np.zeros((NUM_CHANNELS, KNOTS))
    knots_y = np.zeros((NUM_CHANNELS, KNOTS))
    for c in range(NUM_CHANNELS):
        above = np.concatenate([np.clip(s[:, c] - f[c], 0.0, 1.0) for _, s, f in sources])
        knots_x[c], knots_y[c] = monotone_table(above, np.concatenate([w[:, c] for w, _, _ in sources]))
    gain, offset = np.ones(3), np.zeros(3)
    for axis in range(3):
        read, true = read_rotations[ok, axis], true_rotations[ok, axis]
        slope, intercept = np.polyfit(read, true, 1)
        gain[axis], offset[axis] = slope, -intercept / slope
    bound_weights, bound_mouths = [w for w, _, _ in sources], mouths
    if open_mouths is not None:
        bound_weights, bound_mouths = bound_weights + [open_mouths[0]], mouths + [open_mouths[1]]
    places = fit_smile_places(np.concatenate(bound_weights), np.concatenate(bound_mouths))
    neutral_width = float(np.nanmedian(neutral_mouth[:, 3]))
    width_x, width_y = fit_width_map(weights[ok], mouth[ok], neutral_width)
    return Calibration(floor=floor, knots_x=knots_x, knots_y=knots_y, rotation_gain=gain, rotation_offset=offset,
                       smile_places=places, neutral_width=neutral_width, width_x=width_x, width_y=width_y)


def read_calibration(path: Path) -> Calibration:
    """The calibration file; WeightsError (one sentence) when it is missing or malformed."""
    try:
        data = json.loads(Path(path).read_text())
        if data.get("version") != VERSION or data.get("channels") != list(ARKIT_CHANNELS):
            raise ValueError("another version or channel order")
        calibration = Calibration(
            floor=np.asarray(data["floor"], dtype=np.float64), knots_x=np.asarray(data["knots_x"], dtype=np.float64),
            knots_y=np.asarray(data["knots_y"], dtype=np.float64),
            rotation_gain=np.asarray(data["rotation_gain"], dtype=np.float64),
            rotation_offset=np.asarray(data["rotation_offset"], dtype=np.float64),
            smile_places=np.asarray(data["smile_places"], dtype=np.float64),
            neutral_width=float(data["neutral_width"]), width_x=np.asarray(data["width_x"], dtype=np.float64),
            width_y=np.asarray(data["width_y"], dtype=np.float64))
        shapes = (calibration.floor.shape, calibration.knots_x.shape, calibration.knots_y.shape,
                  calibration.rotation_gain.shape, calibration.rotation_offset.shape, calibration.smile_places.shape,
                  calibration.width_x.shape, calibration.width_y.shape)
        if shapes != ((NUM_CHANNELS,), (NUM_CHANNELS, KNOTS), (NUM_CHANNELS, KNOTS), (3,), (3,), (2,), (KNOTS,),
                      (KNOTS,)):
            raise ValueError(f"unexpected shapes {shapes}")
        arrays = (calibration.floor, calibration.knots_x, calibration.knots_y, calibration.rotation_gain,
                  calibration.rotation_offset, calibration.smile_places, calibration.width_x, calibration.width_y,
                  np.array([calibration.neutral_width]))
        if (not all(np.all(np.isfinite(a)) for a in arrays) or np.any(np.diff(calibration.knots_x, axis=1) < 0)
                or not calibration.smile_places[0] < calibration.smile_places[1]
                or not calibration.neutral_width > 0 or np.any(np.diff(calibration.width_x) <= 0)
                or np.any(np.diff(calibration.width_y) < 0) or np.any(calibration.width_y < 0)
                or np.any(calibration.width_y > 1)):
            raise ValueError("values out of range")
    except FileNotFoundError:
        raise WeightsError(f"The photo calibration file {path} is missing; rebuild it with "
                           f"`python -m model_runtime.photo.calibration`.") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"The photo calibration file {path} cannot be used ({exc}); rebuild it with "
                           f"`python -m model_runtime.photo.calibration`.") from None
    return calibration


_MEMO: dict[str, Calibration] = {}


def load_calibration(path: Path | None = None) -> Calibration:
    path = Path(path or DEFAULT_PATH)
    key = str(path)
    if key not in _MEMO:
        _MEMO[key] = read_calibration(path)
    return _MEMO[key]


def read_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, scores, mouth measures) of the renders in `folder` (images and weights.json: name ->
    {"weights": [52]})."""
    from PIL import Image

    from .blendshapes import get_landmarker

    faces = json.loads((Path(folder) / "weights.json").read_text())["faces"]
    landmarker = get_landmarker()
    weights = np.array([face["weights"] for face in faces.values()], dtype=np.float32)
    scores = np.full((len(faces), NUM_CHANNELS), np.nan)
    mouth = np.full((len(faces), MEASURES), np.nan)
    for i, name in enumerate(faces):
        with Image.open(Path(folder) / name) as image:
            reading = landmarker.read(np.asarray(image.convert("RGB")))
        if reading is not None:
            scores[i], mouth[i] = reading.scores, mouth_measures(reading.landmarks)
    return weights, scores, mouth


def build(faces: int = FACES, seed: int = SEED, extra_folders=()) -> tuple[Calibration, dict]:
    """Render, read and fit; also returns what was measured (for the record written beside the file)."""
    started = time.perf_counter()
    weights, rotations, sizes = calibration_faces(faces, seed)
    scores, read_rotations, mouth = read_renders(weights, rotations, sizes)
    rng = np.random.default_rng(seed + 1)
    neutral_rot = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, (NEUTRAL_VIEWS, 3))
    neutral_scores, _, neutral_mouth = read_renders(np.zeros((NEUTRAL_VIEWS, NUM_CHANNELS), np.float32),
                                                    neutral_rot, rng.choice(SIZES, NEUTRAL_VIEWS))
    extra = [read_folder(folder) for folder in extra_folders]
    mouth_weights, mouth_rotations, mouth_sizes = open_mouth_faces(MOUTH_FACES, seed + 2)
    open_mouths = (mouth_weights, read_renders(mouth_weights, mouth_rotations, mouth_sizes)[2])
    calibration = fit_calibration(weights, scores, mouth, read_rotations, rotations, neutral_scores, neutral_mouth,
                                  extra, open_mouths)
    found = np.all(np.isfinite(scores), axis=1)
    record = {"faces": faces, "seed": seed, "faces_without_detection": int((~found).sum()),
              "open_mouth_faces": MOUTH_FACES,
              "extra_renders": [{"folder": Path(f).name, "faces": len(w), "without_detection":
                                 int((~np.all(np.isfinite(s), axis=1)).sum())} for f, (w, s, _) in zip(extra_folders,
                                                                                                        extra)],
              "seconds": round(time.perf_counter() - started, 1)}
    return calibration, record


def write_calibration(calibration: Calibration, record: dict, path: Path) -> str:
    """Write the file; returns its sha256."""
    text = json.dumps({**calibration.to_json(), "built": record}, separators=(",", ":")) + "\n"
    Path(path).write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Calibrate the Face Landmarker's scores onto the default head.")
    parser.add_argument("--faces", type=int, default=FACES)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default=str(DEFAULT_PATH))
    parser.add_argument("--extra-renders", nargs="*", default=[],
                        help="folders of other renderers' renders of the default head (images + weights.json)")
    args = parser.parse_args(argv)
    calibration, record = build(args.faces, args.seed, args.extra_renders)
    digest = write_calibration(calibration, record, Path(args.out))
    print(f"wrote {args.out} ({record}); sha256 {digest[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
