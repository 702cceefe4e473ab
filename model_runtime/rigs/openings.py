"""The eye and mouth openings of a head: which side of each opening every vertex near it lies on.

Shape transfer must keep an upper lid with the upper lid and a lower lip with the lower lip: a target vertex on one
side of an opening may only copy motion from the source's same side. Each opening's slit is the line between its
detected contours (`face_detection.GROUPS`): the middle of the upper and lower lid contours for an eye, the inner lip
line for the mouth, whether the mesh is open there (a hole with a border) or closed (lids or lips sewn together). A
vertex near the opening (within a box scaled by the opening's width, in front of the back of the head) is "upper"
above the slit, "lower" below. Works in the default head's frame (Z up, face toward −Y), where `face_detection`
reports its landmarks.
"""

from __future__ import annotations

import numpy as np

from .face_detection import GROUPS, FaceLandmarks

# opening: (upper contour groups, lower contour groups, corner landmarks, reach sideways / up-down / in depth as a
# share of the opening's width)
OPENINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[int, int], tuple[float, float, float]]] = {
    "eye_left": (("upper_lid_left",), ("lower_lid_left",), (263, 362), (0.3, 0.8, 0.6)),
    "eye_right": (("upper_lid_right",), ("lower_lid_right",), (33, 133), (0.3, 0.8, 0.6)),
    "mouth": (("upper_lip_inner",), ("lower_lip_inner",), (78, 308), (0.15, 0.6, 0.6)),
}
NONE = 0


def side_label(opening: int, upper: bool) -> int:
    """The label of one side of the `opening`-th entry of OPENINGS (labels start at 1; 0 is no opening)."""
    return 1 + 2 * opening + (0 if upper else 1)


def opposite(label: int) -> int:
    return label + 1 if label % 2 else label - 1


def opening_sides(vertices: np.ndarray, landmarks: FaceLandmarks) -> np.ndarray:
    """(V,) side label of each vertex (see `side_label`), 0 away from every opening or where an opening's contours
    were not found; vertices in the default head's frame."""
    out = np.zeros(vertices.shape[0], dtype=np.int64)
    for k, (upper_groups, lower_groups, corners, reach) in enumerate(OPENINGS.values()):
        upper = np.concatenate([landmarks.group(g) for g in upper_groups])
        lower = np.concatenate([landmarks.group(g) for g in lower_groups])
        ends = [landmarks.point(c) for c in corners]
        if upper.shape[0] < 3 or lower.shape[0] < 3 or any(e is None for e in ends):
            continue
        ends = np.stack(ends)
        width = float(abs(ends[0, 0] - ends[1, 0]))
        x = vertices[:, 0]
        slit = 0.5 * (contour_height(np.vstack([upper, ends]), x) + contour_height(np.vstack([lower, ends]), x))
        depth = float(np.concatenate([upper, lower, ends])[:, 1].mean())
        lo, hi = ends[:, 0].min() - reach[0] * width, ends[:, 0].max() + reach[0] * width
        near = ((vertices[:, 0] >= lo) & (vertices[:, 0] <= hi) & (np.abs(vertices[:, 2] - slit) <= reach[1] * width)
                & (np.abs(vertices[:, 1] - depth) <= reach[2] * width) & (out == NONE))
        above = vertices[:, 2] > slit
        out[near & above] = side_label(k, True)
        out[near & ~above] = side_label(k, False)
    return out


def contour_points(points: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(len(x), 3) the points of the contour through `points` at each x (linear between them, flat beyond the
    ends)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(points[:, 0])
    return np.stack([x] + [np.interp(x, points[order, 0], points[order, i]) for i in (1, 2)], axis=-1)


def contour_height(points: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Height of the contour through `points` at each x (linear between them, flat beyond the ends)."""
    return contour_points(points, x)[..., 2]
