"""Lid margins of eyes sewn shut, found on the mesh itself.

A head without eyeballs often closes each eye with a strip of triangles spanning the opening (MediaPipe's canonical
face mesh does): every vertex of the strip lies on its border, which runs from one eye corner along the upper lid's
margin to the other corner and back along the lower lid's. The face detector sees a closed eye there and puts both
lid contours at the crease, so the lid step cannot use them; the strip itself shows where the margins are.

Where the detector's eye region (`face_detection` landmarks, in the default head's frame) covers a closed surface (no
hole's border in it), the strip through each triangle there is followed both ways, in the eye's own frame (X from
the detected corner to corner, Z up across the eye, so a tilted eye or a face left rolled is walked level): each
triangle of a zigzag strip is entered across a rung (an edge from one margin to the other) and left across the next,
its third vertex continuing the upper or the lower margin (`_walk`), until a third vertex lies between the two
margins: the corner where they meet. Among the strips found, the seam is the one that (1) ends at the detector's two
eye corners, (2) lies recessed between the lids (`_recessed`: rows of lid skin pinched at the corners, which the walk
also finds, lie on the lids' slopes) and (3) is found again from most of its own triangles (a walk that strayed off
the seam is found from one or two). Its two margins, corner to corner, are what the user's lid groups would mark
(`shape_transfer.check_lids`). Anything less (an open eye, no such strip, two strips equally likely, either eye
missing) gives nothing: weak evidence is refused. Openings with rounded ends, where both margins run across the eye's
axis before they meet (ICT-FaceKit's eye openings closed by a strip), are refused too: the walk cannot tell there
which margin a vertex continues.
"""

from __future__ import annotations

import numpy as np

from .face_detection import FaceLandmarks
from .mesh_geometry import mesh_edges
from .openings import OPENINGS

# The region searched around each detected eye, in eye widths (corner to corner): beyond the corners, above and below
# the detected contours' middle (the detector puts a closed eye's contours at the crease, a quarter width above the
# seam on the canonical mesh), and in depth.
REACH = (0.35, 0.6, 0.6)
# A third vertex ahead of one end of the rung only, along the eye (by ADVANCE eye widths), continues that end's margin;
# ahead of both, the margin whose height (Z) it lies within LEVEL of the rung's height from; between: the corner. The
# canonical mesh's third vertices: within 0.22 of an end, its corners 0.30-0.44 from both.
LEVEL = 0.3
ADVANCE = 0.02
CORNER_MISS = 0.3  # eye widths a strip's end may lie from the detected corner on its side (canonical mesh: 0.18)
MIN_CHAIN = 3  # vertices of each margin, corners included
RECESS = 0.1  # mean sine of the fold at the margin edges (canonical mesh: 0.38, each edge 0.11 or more)
NOT_RECESSED = 0.1  # share of the margin edges that may fold the other way
MIN_SUPPORT = 0.5  # share of a strip's middle triangles from which the walk finds that same strip (canonical: all)


def sewn_lid_margins(in_head: np.ndarray, triangles: np.ndarray, marks: FaceLandmarks
                     ) -> dict[str, np.ndarray] | None:
    """{lid group name (`openings.OPENINGS`' contour groups): vertex rows along that lid's margin, corner to corner}
    for both eyes, or None unless both eyes are sewn shut by a strip found as the module docstring says.
    `triangles` are the skin's; `in_head` is the mesh in the default head's frame, where `marks` were found."""
    edges, uses = mesh_edges(triangles)
    border = edges[uses == 1]
    out = {}
    for eye, (upper_groups, lower_groups, _, _) in OPENINGS.items():
        if not eye.startswith("eye"):
            continue
        found = _seam(in_head, triangles, border, marks, eye)
        if found is None:
            return None
        out[upper_groups[0]], out[lower_groups[0]] = found
    return out


def _seam(in_head, triangles, border, marks: FaceLandmarks, eye: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(upper, lower) margin rows of one eye's sewing strip, or None (see `sewn_lid_margins`)."""
    upper_groups, lower_groups, corners, _ = OPENINGS[eye]
    ends = [marks.point(c) for c in corners]
    contour = [marks.group(g) for g in upper_groups + lower_groups]
    if any(e is None for e in ends) or any(c.shape[0] < 3 for c in contour):
        return None
    ends = np.stack(ends)
    ends = ends[np.argsort(ends[:, 0])]
    # The eye's own frame: X from corner to corner, Z up across the eye, Y into the head (a tilted eye, or a face the
    # similarity left rolled, is walked as a level one).
    along = ends[1] - ends[0]
    width = float(np.linalg.norm(along))
    if width <= 0:
        return None
    along /= width
    up = np.array([0.0, 0.0, 1.0]) - along[2] * along
    up /= max(float(np.linalg.norm(up)), 1e-30)
    axes = np.stack([along, np.cross(up, along), up])
    centre = np.vstack(contour + [ends]).mean(axis=0) @ axes.T
    in_head = in_head @ axes.T
    ends = ends @ axes.T
    box = ((np.abs(in_head[:, 0] - centre[0]) <= (0.5 + REACH[0]) * width)
           & (np.abs(in_head[:, 2] - centre[2]) <= REACH[1] * width)
           & (np.abs(in_head[:, 1] - centre[1]) <= REACH[2] * width))
    if box[border].all(axis=1).any():
        return None  # the eye is open: a hole's border crosses the region
    rows = np.flatnonzero(box[triangles].all(axis=1))
    if rows.size == 0:
        return None
    local = triangles[rows]
    across = {}  # undirected edge -> the region's triangles (local rows) on it
    for k, tri in enumerate(local):
        for i in range(3):
            key = (min(tri[i], tri[(i + 1) % 3]), max(tri[i], tri[(i + 1) % 3]))
            across.setdefault(key, []).append(k)
    seeds: dict[tuple, set] = {}  # strip -> the triangles whose walk finds it
    for k, tri in enumerate(local):
        for i in range(3):
            strip = _strip_through(in_head, local, across, k, (tri[i], tri[(i + 1) % 3]), width)
            if strip is not None:
                seeds.setdefault(strip, set()).add(k)
    scored = []
    for (upper, lower), found_from in seeds.items():
        found_ends = np.stack([in_head[upper[0]], in_head[upper[-1]]])
        middle_triangles = len(upper) + len(lower) - 4  # all but the two at the corners
        if (len(upper) >= MIN_CHAIN and len(lower) >= MIN_CHAIN
                and np.linalg.norm(found_ends - ends, axis=1).max() <= CORNER_MISS * width
                and _recessed(in_head, local, across, upper, lower)):
            scored.append((len(found_from) / max(middle_triangles, 1), upper, lower))
    scored.sort(key=lambda item: -item[0])
    if not scored or scored[0][0] < MIN_SUPPORT or (len(scored) > 1 and scored[1][0] >= scored[0][0]):
        return None  # no strip, or two equally likely: which is the seam is not clear
    return np.array(scored[0][1]), np.array(scored[0][2])


def _recessed(in_head, local, across, upper, lower) -> bool:
    """Whether the lids rise in front of the strip along its margins, as they do around an opening sewn shut: at each
    margin edge, the far corner of the lid triangle beyond it lies in front of the strip triangle's plane (the face
    looks toward −Y), by RECESS on average (sine of the fold), at most NOT_RECESSED of the edges behind it."""
    members = set(upper) | set(lower)
    folds = []
    for chain in (upper, lower):
        for a, b in zip(chain[:-1], chain[1:]):
            sides = across.get((min(a, b), max(a, b)), ())
            strip = [k for k in sides if set(local[k]) <= members]
            lid = [k for k in sides if k not in strip]
            if len(strip) != 1 or len(lid) != 1:
                return False
            p, q, r = in_head[local[strip[0]]]
            normal = np.cross(q - p, r - p)
            normal *= -np.sign(normal[1]) / max(float(np.linalg.norm(normal)), 1e-30)
            far = in_head[next(v for v in local[lid[0]] if v != a and v != b)] - 0.5 * (in_head[a] + in_head[b])
            folds.append(float(normal @ far) / max(float(np.linalg.norm(far)), 1e-30))
    folds = np.array(folds)
    return bool(folds.mean() >= RECESS and (folds <= 0).mean() <= NOT_RECESSED)


def _strip_through(in_head, local, across, start: int, chain: tuple[int, int], width: float
                   ) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The zigzag strip through triangle `start` (local row) if its edge `chain` lies on a margin and its other two
    edges are rungs: ((upper margin rows), (lower margin rows)), each from the corner of smaller X to the other, or
    None where a walk leaves the region, meets itself or does not end at a corner."""
    tri = local[start]
    a, b = (int(v) for v in chain)
    apex = int(next(v for v in tri if v not in chain))
    if (in_head[a, 2] > in_head[apex, 2]) != (in_head[b, 2] > in_head[apex, 2]):
        return None  # the edge does not lie on one side of the third vertex
    walked = {start}
    sides = []
    for near, far in ((a, b), (b, a)):
        toward = 1.0 if in_head[near, 0] > in_head[far, 0] else -1.0
        path = _walk(in_head, local, across, start, (near, apex), toward, width, walked)
        if path is None:
            return None
        sides.append(path)
    # Each side: the margin vertices met beyond the start (upper, lower) and the corner it ended at.
    (up_a, low_a, corner_a), (up_b, low_b, corner_b) = sides
    on_upper = in_head[a, 2] > in_head[apex, 2]
    upper = [corner_a] + up_a[::-1] + ([a, b] if on_upper else [apex]) + up_b + [corner_b]
    lower = [corner_a] + low_a[::-1] + ([apex] if on_upper else [a, b]) + low_b + [corner_b]
    if len(set(upper) | set(lower)) != len(upper) + len(lower) - 2:
        return None  # the walk met itself: not a strip spanning the opening
    if in_head[upper[0], 0] > in_head[upper[-1], 0]:
        upper, lower = upper[::-1], lower[::-1]
    return tuple(upper), tuple(lower)


def _walk(in_head, local, across, start: int, rung: tuple[int, int], toward: float, width: float, walked: set
          ) -> tuple[list[int], list[int], int] | None:
    """Follow the strip from triangle `start` across `rung` toward growing X times `toward` (+1 or -1) until a
    corner: (upper margin vertices met, lower ones, the corner), or None. Each next third vertex lies on the margin
    it is ahead of along the eye (X) by ADVANCE, or, ahead of both, on the margin whose height (Z) it is within LEVEL
    of the rung's height from; between the two, it is the corner where the margins meet."""
    upper, lower = [], []
    current = start
    top, bottom = rung if in_head[rung[0], 2] > in_head[rung[1], 2] else rung[::-1]
    while True:
        key = (min(top, bottom), max(top, bottom))
        nxt = [k for k in across.get(key, ()) if k != current]
        if len(nxt) != 1 or nxt[0] in walked:
            return None
        current = nxt[0]
        walked.add(current)
        apex = int(next(v for v in local[current] if v != top and v != bottom))
        ahead = [(in_head[apex, 0] - in_head[v, 0]) * toward > ADVANCE * width for v in (top, bottom)]
        level = (in_head[apex, 2] - in_head[bottom, 2]) / max(float(in_head[top, 2] - in_head[bottom, 2]), 1e-30)
        if ahead[0] and (not ahead[1] or level >= 1.0 - LEVEL):
            upper.append(apex)
            top = apex
        elif ahead[1] and (not ahead[0] or level <= LEVEL):
            lower.append(apex)
            bottom = apex
        elif ahead[0] and ahead[1]:
            return upper, lower, apex
        else:
            return None  # the strip turns back: not a margin running along the eye
