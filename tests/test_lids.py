"""Eyelids that meet (model_runtime.rigs.lids) on a flat sheet with two elliptic eye holes, whose lid margins are known
from its construction: a blink that stops short is brought onto the lower lid, a shape pushing the upper lid through
the lower one is stopped there, and nothing else moves."""

import numpy as np
import pytest

from model_runtime.expression_space import ARKIT_CHANNELS, CHANNEL_INDEX
from model_runtime.rigs.face_detection import GROUPS, FaceLandmarks
from model_runtime.rigs.lids import FALLOFF, meet_lids
from model_runtime.rigs.openings import opening_sides

HALF_WIDTH, HALF_HEIGHT = 0.014, 0.005  # each eye's ellipse (metres, the default head's frame: x across, z up)
CENTRES = {"left": 0.032, "right": -0.032}
CORNERS = {"left": (263, 362), "right": (33, 133)}  # outer, inner (MediaPipe's numbers)


def _sheet():
    """A 1 mm grid in the plane y = 0 (facing -y) with the two eye holes cut out; (vertices, triangles)."""
    x, z = np.meshgrid(np.linspace(-0.07, 0.07, 141), np.linspace(-0.03, 0.03, 61))
    points = np.stack([x.ravel(), np.zeros(x.size), z.ravel()], axis=1)
    n = x.shape[1]
    i = (np.arange(x.shape[0] - 1)[:, None] * n + np.arange(n - 1)[None, :]).ravel()
    triangles = np.concatenate([np.stack([i, i + 1, i + n + 1], 1), np.stack([i, i + n + 1, i + n], 1)])
    centre = points[triangles].mean(axis=1)
    inside = np.zeros(triangles.shape[0], dtype=bool)
    for cx in CENTRES.values():
        inside |= ((centre[:, 0] - cx) / HALF_WIDTH) ** 2 + (centre[:, 2] / HALF_HEIGHT) ** 2 < 1.0
    triangles = triangles[~inside]
    used = np.unique(triangles)
    remap = np.full(points.shape[0], -1)
    remap[used] = np.arange(used.size)
    return points[used], remap[triangles]


def _landmarks():
    """Lid contours on each ellipse, as the detector would report them."""
    ids, points = [], []
    angles = np.linspace(0.15, np.pi - 0.15, 7)
    for eye, cx in CENTRES.items():
        for group, sign in ((f"upper_lid_{eye}", 1.0), (f"lower_lid_{eye}", -1.0)):
            for landmark, angle in zip(GROUPS[group], angles):
                ids.append(landmark)
                points.append([cx + HALF_WIDTH * np.cos(angle), 0.0, sign * HALF_HEIGHT * np.sin(angle)])
        for landmark, end in zip(CORNERS[eye], (1.0, -1.0) if cx > 0 else (-1.0, 1.0)):
            ids.append(landmark)
            points.append([cx + end * HALF_WIDTH, 0.0, 0.0])
    return FaceLandmarks(ids=np.array(ids), points=np.array(points))


def _margins(vertices, triangles, cx):
    """Upper and lower margin vertices (on the hole's border) of the eye at cx, middle half of its width, paired by
    x: from the sheet's construction, not from the code under test."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    unique, count = np.unique(edges, axis=0, return_counts=True)
    border = np.unique(unique[count == 1])
    border = border[(np.abs(vertices[border, 0] - cx) <= 0.5 * HALF_WIDTH) & (np.abs(vertices[border, 2]) < 0.01)]
    upper = border[vertices[border, 2] > 0]
    lower = border[vertices[border, 2] < 0]
    pair = lower[np.argmin(np.abs(vertices[upper, 0][:, None] - vertices[lower, 0][None]), axis=1)]
    return upper, pair


def _lid_motion(vertices, cx, share):
    """Moves the upper lid of the eye at cx down by `share` of its gap, fading upward over 6 mm."""
    dx = (vertices[:, 0] - cx) / HALF_WIDTH
    gap = 2.0 * HALF_HEIGHT * np.sqrt(np.clip(1.0 - dx ** 2, 0.0, None))
    above = (vertices[:, 2] > 0) & (np.abs(dx) < 1.0)
    fade = np.exp(-(np.clip(vertices[:, 2] - HALF_HEIGHT * np.sqrt(np.clip(1 - dx ** 2, 0, None)), 0, None)
                    / 0.006) ** 2)
    out = np.zeros_like(vertices)
    out[:, 2] = np.where(above, -share * gap * fade, 0.0)
    return out


def _remaining(vertices, shape, upper, lower) -> np.ndarray:
    """The gap the shape leaves at each margin pair, as a share of the gap at rest (below 0: crossed)."""
    before = vertices[upper, 2] - vertices[lower, 2]
    after = (vertices + shape)[upper, 2] - (vertices + shape)[lower, 2]
    return after / before


@pytest.fixture(scope="module")
def sheet():
    vertices, triangles = _sheet()
    marks = _landmarks()
    return vertices, triangles, marks, opening_sides(vertices, marks)


def test_blinks_that_stop_short_meet_the_lower_lid(sheet):
    vertices, triangles, marks, sides = sheet
    deltas = np.zeros((52,) + vertices.shape, dtype=np.float32)
    deltas[CHANNEL_INDEX["eyeBlinkLeft"]] = _lid_motion(vertices, CENTRES["left"], 0.3)
    deltas[CHANNEL_INDEX["eyeBlinkRight"]] = _lid_motion(vertices, CENTRES["right"], 0.3)
    out, changed, _ = meet_lids(vertices, deltas, vertices, marks, sides, ARKIT_CHANNELS)
    assert sorted(changed) == ["eyeBlinkLeft", "eyeBlinkRight"]
    for eye, channel in (("left", "eyeBlinkLeft"), ("right", "eyeBlinkRight")):
        upper, lower = _margins(vertices, triangles, CENTRES[eye])
        before = _remaining(vertices, deltas[CHANNEL_INDEX[channel]], upper, lower)
        after = _remaining(vertices, out[CHANNEL_INDEX[channel]].astype(np.float64), upper, lower)
        assert before.min() > 0.6  # the blink as transferred leaves most of the gap open
        assert np.all(np.abs(after) <= 0.15), (eye, after)  # closed, and not through the lower lid
    blink = out[CHANNEL_INDEX["eyeBlinkLeft"]] - deltas[CHANNEL_INDEX["eyeBlinkLeft"]]
    moved = np.linalg.norm(blink, axis=1) > 0
    assert moved.any()
    assert np.all(vertices[moved, 2] > 0), "the lower lid moved"
    assert np.all(vertices[moved, 0] > 0), "the other eye moved"
    reach = FALLOFF * 2 * HALF_WIDTH
    assert np.all(vertices[moved, 2] < HALF_HEIGHT + reach), "the correction reaches past its falloff"
    # Smooth: neighbouring vertices of the sheet (1 mm apart) differ by a small part of the largest correction.
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]]])
    step = np.linalg.norm(blink[edges[:, 0]] - blink[edges[:, 1]], axis=1)
    assert step.max() <= 0.35 * np.linalg.norm(blink, axis=1).max()


def test_no_shape_pushes_the_upper_lid_through_the_lower(sheet):
    vertices, triangles, marks, sides = sheet
    deltas = np.zeros((52,) + vertices.shape, dtype=np.float32)
    squint = CHANNEL_INDEX["eyeSquintLeft"]
    deltas[squint] = _lid_motion(vertices, CENTRES["left"], 1.6)
    deltas[CHANNEL_INDEX["eyeWideLeft"]] = -_lid_motion(vertices, CENTRES["left"], 0.4)  # opens: left alone
    out, changed, _ = meet_lids(vertices, deltas, vertices, marks, sides, ARKIT_CHANNELS)
    assert "eyeSquintLeft" in changed and "eyeWideLeft" not in changed
    upper, lower = _margins(vertices, triangles, CENTRES["left"])
    assert _remaining(vertices, deltas[squint], upper, lower).min() < -0.4
    after = _remaining(vertices, out[squint].astype(np.float64), upper, lower)
    assert after.min() >= -0.15, after
    np.testing.assert_array_equal(out[CHANNEL_INDEX["eyeWideLeft"]], deltas[CHANNEL_INDEX["eyeWideLeft"]])


def test_eyes_without_found_contours_are_left_alone(sheet):
    """The left eye's lower lid was not found: its blink stays as transferred."""
    vertices, _, marks, sides = sheet
    deltas = np.zeros((52,) + vertices.shape, dtype=np.float32)
    deltas[CHANNEL_INDEX["eyeBlinkLeft"]] = _lid_motion(vertices, CENTRES["left"], 0.3)
    keep = ~np.isin(marks.ids, GROUPS["lower_lid_left"])
    out, changed, _ = meet_lids(vertices, deltas, vertices, FaceLandmarks(marks.ids[keep], marks.points[keep]), sides,
                             ARKIT_CHANNELS)
    assert "eyeBlinkLeft" not in changed
    left = CHANNEL_INDEX["eyeBlinkLeft"]
    np.testing.assert_array_equal(out[left], deltas[left])
