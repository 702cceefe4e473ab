"""Heads the project did not make, for measuring ARKit shape transfer: ICT-FaceKit's head (with its artists' own
shapes as the truth) and MediaPipe's canonical face mesh (468 vertices, closed eyes and mouth, no shapes).

The lid and lip points the checks measure are found here from each mesh's own construction, never by the code under
test: on ICT from the face region's open borders (the eye and mouth openings), on the canonical mesh from MediaPipe's
landmark numbering (vertex i is landmark i).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_runtime.expression_space import ARKIT_CHANNELS
from model_runtime.rigs.mesh_geometry import components, mesh_edges

DATA = Path(__file__).resolve().parent / "data"
ICT_FACE_LAST = 9408
LID_POINTS = 5
ICT_SPLIT = ("browInnerUp", "cheekPuff")  # ICT has a left and a right half of these; the truth is their sum


@dataclass(frozen=True)
class Openings:
    """Contour vertices of each opening, in the mesh's numbering: per eye (left, right: the character's own) its
    upper and lower lid near the middle, and the mouth's upper and lower inner lip near the middle and its corners."""

    upper_lid: tuple[np.ndarray, np.ndarray]
    lower_lid: tuple[np.ndarray, np.ndarray]
    upper_lip: np.ndarray
    lower_lip: np.ndarray
    corners: np.ndarray  # (2,) left, right


@dataclass(frozen=True)
class TestHead:
    name: str
    vertices: np.ndarray  # (V,3) float64
    triangles: np.ndarray  # (T,3) int64
    face_triangles: np.ndarray  # (F,) rows of triangles that count for flips (skin of the face, not openings)
    openings: Openings
    truth: np.ndarray | None  # (51, V_face, 3) ARKit shapes but tongueOut, on `face` vertices; None: unknown
    face: np.ndarray  # (V,) bool: the vertices errors are measured on
    channels: tuple[str, ...]  # the channels `truth` rows stand for


def _quads_to_triangles(quads: np.ndarray) -> np.ndarray:
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def load_ict(whole: bool = False) -> TestHead:
    """ICT's skin (face, head and neck, mouth and eye sockets: one connected surface of 14,062 vertices), or with
    `whole` every part (26,719 vertices: eyeballs, teeth, gums, lashes...), centimetres, +y up, facing +z."""
    d = np.load(DATA / "ict" / "ict_face.npz")
    quads = d["quads"].astype(np.int64)
    tris = np.concatenate([_quads_to_triangles(quads), d["tris"].astype(np.int64)])
    vertices = d["neutral"].astype(np.float64)
    if not whole:
        skin_last = int(d["part_starts"][list(d["part_names"]).index("gums_tongue")]) - 1
        tris = tris[(tris <= skin_last).all(axis=1)]
        vertices = vertices[:skin_last + 1]
    names = [str(n) for n in d["expr_names"]]
    deltas = d["face_deltas"].astype(np.float64)
    channels = tuple(c for c in ARKIT_CHANNELS if c != "tongueOut")
    truth = np.stack([_ict_shape(c, names, deltas) for c in channels])
    face_tris = np.flatnonzero((tris <= ICT_FACE_LAST).all(axis=1))
    face = np.zeros(vertices.shape[0], dtype=bool)
    face[:ICT_FACE_LAST + 1] = True
    full = np.zeros((truth.shape[0], vertices.shape[0], 3))
    full[:, :ICT_FACE_LAST + 1] = truth
    openings = _ict_openings(vertices, tris[face_tris], tuple(full[channels.index(c)]
                                                             for c in ("eyeBlinkLeft", "eyeBlinkRight")))
    return TestHead("ICT-FaceKit" + (" (all parts)" if whole else ""), vertices, tris, face_tris, openings, full,
                    face, channels)


@dataclass(frozen=True)
class IctEyeParts:
    """ICT's own shapes of its eye sockets and the small parts around its eyes, for judging what hangs on the skin;
    rows are vertex numbers of the whole head (`load_ict(whole=True)`), parts named by ICT's own part layout."""

    rows: np.ndarray  # (N,) vertices with a truth here: eye sockets, lacrimal fluid, eye blend and occlusion, lashes
    truth: np.ndarray  # (51, 26719, 3) the face's truth (`load_ict`) with these rows' own added
    parts: dict[str, np.ndarray]  # ICT's part name -> its vertex rows


def load_ict_eye_parts(head: TestHead) -> IctEyeParts:
    d = np.load(DATA / "ict" / "ict_face.npz")
    e = np.load(DATA / "ict" / "ict_eye_parts.npz")
    names = [str(n) for n in d["expr_names"]]
    rows = e["rows"].astype(np.int64)
    deltas = e["deltas"].astype(np.float64)
    truth = head.truth.copy()
    truth[:, rows] = np.stack([_ict_shape(c, names, deltas) for c in head.channels])
    starts = [int(s) for s in d["part_starts"]] + [head.vertices.shape[0]]
    parts = {str(n): np.arange(starts[i], starts[i + 1]) for i, n in enumerate(d["part_names"])}
    return IctEyeParts(rows, truth, parts)


# The shapes that move ICT's eyelashes, judged against ICT's own lash motion.
LASH_SHAPES = tuple(f"eye{s}{e}" for s in ("Blink", "Wide", "Squint") for e in ("Left", "Right"))


def skin_and_parts(head: TestHead) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole head's (V,) connected-part label of each vertex, (V,) skin mask (its largest part) and the skin's
    triangles."""
    label = components(head.triangles, head.vertices.shape[0])
    skin = label == np.bincount(label).argmax()
    return label, skin, head.triangles[skin[head.triangles].all(axis=1)]


def _ict_shape(channel: str, names: list[str], deltas: np.ndarray) -> np.ndarray:
    if channel in ICT_SPLIT:
        return deltas[names.index(channel + "_L")] + deltas[names.index(channel + "_R")]
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if channel.endswith(side) and channel[:-len(side)] + suffix in names:
            return deltas[names.index(channel[:-len(side)] + suffix)]
    return deltas[names.index(channel)]


def _loops(triangles: np.ndarray) -> list[np.ndarray]:
    """The open border's loops as vertex sets."""
    edges, counts = mesh_edges(triangles)
    border = edges[counts == 1]
    parent = {int(v): int(v) for v in np.unique(border)}

    def find(v):
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b in border:
        parent[find(int(a))] = find(int(b))
    groups: dict[int, list[int]] = {}
    for v in parent:
        groups.setdefault(find(v), []).append(v)
    return [np.asarray(sorted(g)) for g in groups.values()]


def _middle(vertices, loop, up_index: int, upper: bool, share: float = 0.1) -> np.ndarray:
    """Loop vertices within `share` of the loop's width of its middle, on its upper or lower side."""
    x = vertices[loop, 0]
    centre, width = 0.5 * (x.min() + x.max()), x.max() - x.min()
    near = loop[np.abs(x - centre) <= share * width]
    mid = vertices[loop, up_index].mean()
    side = vertices[near, up_index] > mid
    return near[side] if upper else near[~side]


def _ict_openings(vertices: np.ndarray, face_triangles: np.ndarray, blinks: tuple[np.ndarray, np.ndarray]
                  ) -> Openings:
    """The mouth from the face region's mouth opening (its border is the inner lip line). ICT's lids wrap back into
    the socket, so its eye openings' borders lie behind the lid margins: each upper margin is where the eye's own
    blink moves the skin most, the lower margin the still skin where that blink brings the upper margin."""
    loops = sorted(_loops(face_triangles), key=len)[:-1]  # the largest is the face's outline
    if len(loops) != 3:
        raise RuntimeError(f"ICT's face region should have three openings; found {len(loops)}.")
    m = loops[int(np.argmin([vertices[loop, 1].mean() for loop in loops]))]
    upper, lower = zip(*(lids_from_blink(vertices, blink) for blink in blinks))
    return Openings(upper_lid=tuple(upper), lower_lid=tuple(lower),
                    upper_lip=_middle(vertices, m, 1, True), lower_lip=_middle(vertices, m, 1, False),
                    corners=np.array([m[np.argmax(vertices[m, 0])], m[np.argmin(vertices[m, 0])]]))


def lids_from_blink(vertices: np.ndarray, blink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An eye's lid margins from a true blink of it: the upper margin where the blink moves the skin most, the lower
    margin the still skin where it brings the upper margin."""
    motion = np.linalg.norm(blink, axis=1)
    top = np.argsort(-motion)[:LID_POINTS]
    still = np.flatnonzero(motion < 0.3 * motion.max())
    landed = vertices[top] + blink[top]
    d = np.linalg.norm(vertices[still][None] - landed[:, None], axis=2)
    return top, np.unique(still[np.argmin(d, axis=1)])


# MediaPipe's landmark numbers (the subject's left = the image's right = +x in the canonical mesh).
_MP_UPPER_LID = ((385, 386, 387), (158, 159, 160))
_MP_LOWER_LID = ((373, 374, 380), (144, 145, 153))
_MP_UPPER_LIP, _MP_LOWER_LIP = (13, 82, 312), (14, 87, 317)
_MP_CORNERS = (308, 78)  # inner mouth corners, left and right


def load_canonical() -> TestHead:
    """MediaPipe's canonical face mesh: a face mask in centimetres, +y up, facing +z, eyes and mouth closed by
    triangles (those across the openings are left out of the flip count)."""
    d = np.load(DATA / "canonical_face_mesh.npz")
    vertices = d["vertices"].astype(np.float64)
    tris = d["triangles"].astype(np.int64)
    openings = Openings(upper_lid=tuple(np.array(s) for s in _MP_UPPER_LID),
                        lower_lid=tuple(np.array(s) for s in _MP_LOWER_LID),
                        upper_lip=np.array(_MP_UPPER_LIP), lower_lip=np.array(_MP_LOWER_LIP),
                        corners=np.array(_MP_CORNERS))
    across = _across_openings(tris)
    face = np.ones(vertices.shape[0], dtype=bool)
    return TestHead("MediaPipe canonical mesh", vertices, tris, np.flatnonzero(~across), openings, None, face,
                    tuple(c for c in ARKIT_CHANNELS if c != "tongueOut"))


# MediaPipe's lid margins and inner lip line, each closed loop in order (from its published face-mesh connections).
_MP_CONTOURS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191),
)


def canonical_lid_groups() -> dict[str, np.ndarray]:
    """The canonical mesh's lid margins, corner to corner, as an artist would mark them with the vertex groups I2FET
    upper_lid_left, ... (MediaPipe's numbering: each contour above runs from the outer corner along the lower lid to
    the inner corner, then back along the upper lid)."""
    out = {}
    for contour, eye in zip(_MP_CONTOURS[:2], ("right", "left")):
        out[f"lower_lid_{eye}"] = np.array(contour[:9])
        out[f"upper_lid_{eye}"] = np.array(contour[8:] + contour[:1])
    return out


def _across_openings(triangles: np.ndarray) -> np.ndarray:
    """Triangles whose three corners all lie on one opening's contour: they close the eye or the mouth."""
    out = np.zeros(triangles.shape[0], dtype=bool)
    for contour in _MP_CONTOURS:
        out |= np.isin(triangles, contour).all(axis=1)
    return out


# ----------------------------------------------------------------------------------------------------------------
# What the checks measure


def lid_closure(vertices, deltas_shape, openings: Openings, eye: int) -> float:
    """Share of the eye's lid gap that the shape closes (1 = closed, 0 = unchanged, < 0 = opened)."""
    return gap_closure(vertices, deltas_shape, openings.upper_lid[eye], openings.lower_lid[eye])


def gap_closure(vertices, deltas_shape, upper, lower) -> float:
    gap = vertices[upper].mean(0) - vertices[lower].mean(0)
    moved = (vertices + deltas_shape)
    after = moved[upper].mean(0) - moved[lower].mean(0)
    size = float(np.linalg.norm(gap))
    return float(1.0 - (after @ gap) / size ** 2) if size > 0 else 0.0


def lip_parting(vertices, deltas_shape, openings: Openings) -> float:
    """How far the shape parts the inner lips, as a share of the mouth's width."""
    width = float(np.linalg.norm(vertices[openings.corners[0]] - vertices[openings.corners[1]]))
    moved = vertices + deltas_shape
    before = np.linalg.norm(vertices[openings.upper_lip].mean(0) - vertices[openings.lower_lip].mean(0))
    after = np.linalg.norm(moved[openings.upper_lip].mean(0) - moved[openings.lower_lip].mean(0))
    return float((after - before) / width)


def flipped_share(vertices, triangles, deltas_shape) -> float:
    """Share of the triangles whose normal turns by more than 90 degrees under the shape."""
    def normals(v):
        a, b, c = (v[triangles[:, i]] for i in range(3))
        return np.cross(b - a, c - a)

    before, after = normals(vertices), normals(vertices + deltas_shape)
    return float(((before * after).sum(1) < 0).mean())


def folded_share(vertices, triangles, deltas_shape) -> float:
    """Share of the triangles folded against their neighbours: the normal now points against those of at least two of
    its edge neighbours that it agreed with at rest. A triangle merely rotated past 90 degrees with its neighbours (a
    lip's inner face turning forward as the jaw opens) is not folded, though `flipped_share` counts it."""
    def normals(v):
        a, b, c = (v[triangles[:, i]] for i in range(3))
        return np.cross(b - a, c - a)

    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(triangles.shape[0]), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, owner = edges[order], owner[order]
    shared = np.flatnonzero((edges[1:] == edges[:-1]).all(axis=1))
    one, two = owner[shared], owner[shared + 1]
    before, after = normals(vertices), normals(vertices + deltas_shape)
    turned = ((before[one] * before[two]).sum(1) > 0) & ((after[one] * after[two]).sum(1) < 0)
    count = np.bincount(one[turned], minlength=triangles.shape[0]) + np.bincount(two[turned],
                                                                                 minlength=triangles.shape[0])
    return float((count >= 2).mean())


def ict_scores(pred: np.ndarray, head: TestHead) -> tuple[np.ndarray, np.ndarray]:
    """Per-shape relative error ‖pred − truth‖/‖truth‖ and cosine over the face vertices; `pred` (52, V, 3) in
    ARKit order."""
    rows = [ARKIT_CHANNELS.index(c) for c in head.channels]
    p = pred[rows][:, head.face].reshape(len(rows), -1).astype(np.float64)
    t = head.truth[:, head.face].reshape(len(rows), -1)
    tn = np.linalg.norm(t, axis=1)
    err = np.linalg.norm(p - t, axis=1) / np.maximum(tn, 1e-30)
    cos = (p * t).sum(1) / np.maximum(np.linalg.norm(p, axis=1) * tn, 1e-30)
    return err, cos


def part_scores(pred: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
    """Relative error and cosine of one shape (V, 3) against its truth on `rows` (a still prediction: 1 and 0)."""
    p, t = pred[rows].ravel().astype(np.float64), truth[rows].ravel()
    pn, tn = np.linalg.norm(p), np.linalg.norm(t)
    return float(np.linalg.norm(p - t) / max(tn, 1e-30)), float(p @ t / max(pn * tn, 1e-30))


def through_skin(vertices, skin_triangles, deltas_shape, rows) -> int:
    """How many of `rows` (vertices of parts off the skin) the shape puts behind the skin they were in front of: the
    side of the closest point of the moved skin, judged by that triangle's normal, before and after (brute force
    over the skin's triangles that can hold it, so no code under test is involved)."""
    def behind(v):
        p = v[rows]
        a, b, c = (v[skin_triangles[:, i]] for i in range(3))
        centres = (a + b + c) / 3
        reach = np.linalg.norm(np.stack([a, b, c]) - centres, axis=2).max(axis=0)  # centre to farthest corner
        normal = np.cross(b - a, c - a)
        out = np.zeros(len(rows), dtype=bool)
        for start in range(0, len(rows), 32):
            q = p[start:start + 32]
            d = np.linalg.norm(q[:, None] - centres[None], axis=2)
            # A triangle can hold a point's closest point only if its centre is within the distance to the nearest
            # centre (a point on the skin) plus its own reach.
            near = np.flatnonzero((d <= d.min(axis=1, keepdims=True) + reach[None]).any(axis=0))
            closest = _closest_on_triangles(q[:, None], a[near][None], b[near][None], c[near][None])
            best = np.argmin(np.linalg.norm(closest - q[:, None], axis=2), axis=1)
            at = np.arange(q.shape[0])
            out[start:start + 32] = ((q - closest[at, best]) * normal[near][best]).sum(1) < 0
        return out

    return int((behind(vertices + deltas_shape) & ~behind(vertices)).sum())


def _closest_on_triangles(p, a, b, c):
    """Closest points on triangles (a, b, c) to p, broadcast (Ericson's regions, written out here on purpose)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = np.where(np.abs(va + vb + vc) > 1e-30, va + vb + vc, 1e-30)
    v, w = vb / denom, vc / denom
    out = a + ab * v[..., None] + ac * w[..., None]  # inside
    bc = c - b
    regions = [
        ((d1 <= 0) & (d2 <= 0), a),
        ((d3 >= 0) & (d4 <= d3), b),
        ((d6 >= 0) & (d5 <= d6), c),
    ]
    t_ab = d1 / np.where(np.abs(d1 - d3) > 1e-30, d1 - d3, 1e-30)
    t_ac = d2 / np.where(np.abs(d2 - d6) > 1e-30, d2 - d6, 1e-30)
    t_bc = (d4 - d3) / np.where(np.abs((d4 - d3) + (d5 - d6)) > 1e-30, (d4 - d3) + (d5 - d6), 1e-30)
    edges = [
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * t_ab[..., None]),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * t_ac[..., None]),
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + bc * t_bc[..., None]),
    ]
    for mask, point in edges[::-1] + regions[::-1]:
        out = np.where(mask[..., None], np.broadcast_to(point, out.shape), out)
    return out
