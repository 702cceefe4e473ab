"""A small numpy software renderer, so an expression can be looked at without Blender.

Front view of the default head, orthographic, framed on the face (optionally with the head turned by yaw, pitch and
roll about the centre of the frame, see `rotation_matrix`); Lambert shading with smooth vertex normals and a
little ambient; per-vertex colour regions (skin, dark brows, red lips, dark mouth interior, light teeth, red tongue)
and per-pixel irises/pupils on the eye helpers. The rasteriser is vectorised across triangles: every triangle is
tested against the pixels of a fixed small window at its bounding box (triangles are grouped by window size), and the
z-buffer is resolved with one sort, so there is no Python loop over triangles.
"""

from __future__ import annotations

import io
import math
import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError, OutputError, WeightsError
from ..expression_space import CHANNEL_INDEX, NUM_CHANNELS
from ..paths import NpzCache, atomic_output
from .geometry import vertex_normals
from .head import DefaultHead, head_data_file, base_mesh_file, load_default_head, source_key

SUPERSAMPLE = 2  # render at 2x and box-filter down
BACKGROUND = np.array([0.80, 0.81, 0.83], dtype=np.float32)
_EYE_TO_MOUTH = 0.38  # share of the image height between the eyes and the mouth
_SKIN = (0.86, 0.66, 0.55)
_BROW = (0.20, 0.13, 0.09)
_LIP = (0.72, 0.32, 0.33)
_MOUTH = (0.16, 0.05, 0.05)
_TEETH = (0.93, 0.91, 0.85)
_TONGUE = (0.80, 0.30, 0.30)
_SCLERA = (0.95, 0.94, 0.92)
_IRIS = (0.28, 0.20, 0.14)
_PUPIL = (0.03, 0.03, 0.03)
_CAVITY_DEPTH = 0.05  # metres behind the lips over which the mouth interior fades to _CAVITY_FLOOR
_CAVITY_FLOOR = 0.2
_LIGHT = np.array([-0.25, -1.0, 0.35])  # toward the light: in front, a little above and to the viewer's left
_AMBIENT = 0.22
_DIFFUSE = 0.85
# Eye helper: cosine of the angle from the eye's forward axis at the iris and pupil borders.
_IRIS_COS = math.cos(math.radians(38.0))
_PUPIL_COS = math.cos(math.radians(16.0))


# ----------------------------------------------------------------------------------------------------------------
# Per-head preparation (colours, framing), memoised per head object

@dataclass(frozen=True)
class _Setup:
    triangles: np.ndarray  # (T,3) int64
    tri_part: np.ndarray  # (T,) uint8
    colors: np.ndarray  # (V,3) float32 albedo
    eye_cos: np.ndarray  # (V,) float32: rest-pose cosine to the eye's forward axis (eye helpers), else -1
    inside: np.ndarray  # (K,) int64: vertices inside the mouth (teeth, tongue, mouth lining)
    lip_front: float  # rest Blender Y of the front of the lips
    center_x: float  # framing, metres (Blender X and Z)
    top_z: float
    height_m: float  # the image spans height_m metres vertically (and horizontally)
    pivot: np.ndarray  # (3,) the point a view rotation turns the head about: the frame's centre, mid-depth


_SETUPS: "weakref.WeakKeyDictionary[DefaultHead, _Setup]" = weakref.WeakKeyDictionary()


def _support(head: DefaultHead, names: Sequence[str]) -> np.ndarray:
    """Per-vertex motion of the named face units, each normalised to its own maximum."""
    total = np.zeros(head.num_vertices, dtype=np.float32)
    for name in names:
        mag = np.linalg.norm(head.deltas[CHANNEL_INDEX[name]], axis=1)
        peak = float(mag.max())
        if peak > 0:
            total = np.maximum(total, mag / peak)
    return total


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


_MASK_NAMES = ("lips", "inside-mouth")
_MASK_MEMO: dict[str, dict[str, np.ndarray] | None] = {}


def _hm08_uv_masks() -> dict[str, np.ndarray] | None:
    """Per hm08 vertex, the value (0..1) of MPFB's lips and inside-mouth skin masks (UV images shipped with the head data).

    Sampled at each vertex's UV corners (the largest value wins). Cached on disk beside the head; None when the
    files are missing or unreadable (the renderer then falls back to regions derived from the face units).
    """
    try:
        base = base_mesh_file()
        textures = [head_data_file("textures", f"mpfb_{name}.jpg") for name in _MASK_NAMES]
        key = source_key([base, *textures])
    except (WeightsError, OSError):
        return None
    if key in _MASK_MEMO:
        return _MASK_MEMO[key]
    cache = NpzCache(f"render_masks_{key}.npz", key, fields=_MASK_NAMES, compress=True,
                     check=lambda masks: all(masks[n].ndim == 1 and masks[n].dtype == np.float32 for n in _MASK_NAMES))
    masks = cache.read()
    if masks is None:
        try:
            masks = _build_uv_masks(base, textures)
        except Exception:  # noqa: BLE001 - any unreadable texture means the derived regions are used instead
            masks = None
        if masks is not None:
            cache.write(masks)
    _MASK_MEMO[key] = masks
    return masks


def _build_uv_masks(base, textures) -> dict[str, np.ndarray]:
    uvs: list[list[float]] = []
    corner_v: list[int] = []
    corner_t: list[int] = []
    num_v = 0
    with open(base, "r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("v "):
                num_v += 1
            elif line.startswith("vt "):
                parts = line.split()
                uvs.append([float(parts[1]), float(parts[2])])
            elif line.startswith("f "):
                for tok in line.split()[1:]:
                    fields = tok.split("/")
                    if len(fields) > 1 and fields[1]:
                        corner_v.append(int(fields[0]) - 1)
                        corner_t.append(int(fields[1]) - 1)
    uv = np.asarray(uvs, dtype=np.float64)[np.asarray(corner_t)]
    cv = np.asarray(corner_v)
    out = {}
    for name, path in zip(_MASK_NAMES, textures):
        with Image.open(path) as im:
            img = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        h, w = img.shape
        col = np.clip((uv[:, 0] * w).astype(np.int64), 0, w - 1)
        row = np.clip(((1.0 - uv[:, 1]) * h).astype(np.int64), 0, h - 1)
        per_vertex = np.zeros(num_v, dtype=np.float32)
        np.maximum.at(per_vertex, cv, img[row, col])
        out[name] = per_vertex
    return out


def _prepare(head: DefaultHead) -> _Setup:
    cached = _SETUPS.get(head)
    if cached is not None:
        return cached
    v = head.vertices
    parts = head.vertex_parts
    skin = parts == 0
    eye_l, eye_r = parts == 1, parts == 2
    colors = np.empty((head.num_vertices, 3), dtype=np.float32)
    colors[:] = _SKIN
    colors[parts == 3] = _TEETH
    colors[parts == 4] = _TONGUE
    colors[eye_l | eye_r] = _SCLERA

    eye_z = float(v[eye_l | eye_r, 2].mean()) if np.any(eye_l | eye_r) else float(np.percentile(v[:, 2], 70))

    masks = _hm08_uv_masks()
    src = head.source_indices
    if masks is not None and src.size and int(src.max()) < masks["lips"].shape[0]:
        # MPFB's own lips and inside-mouth skin masks, mapped through the UVs.
        lip_w = np.where(skin, _smoothstep(0.2, 0.8, masks["lips"][src]), 0.0).astype(np.float32)
        interior_w = np.where(skin, _smoothstep(0.2, 0.8, masks["inside-mouth"][src]), 0.0).astype(np.float32)
    else:
        # Fallback: the skin the lip-rolling units move most, and the skin hidden behind the lips.
        roll = _support(head, ["mouthRollLower", "mouthRollUpper"])
        seed = skin & (roll > 0.35)
        mouth_z0 = float(np.median(v[seed, 2])) if np.any(seed) else eye_z - 0.07
        near = skin & (np.abs(v[:, 0]) < 0.03) & (np.abs(v[:, 2] - mouth_z0) < 0.02)
        lip_w = np.where(near, _smoothstep(0.4, 0.7, roll), 0.0).astype(np.float32)
        lips = lip_w > 0.5
        front_y = float(v[lips, 1].min()) if np.any(lips) else float(v[:, 1].min())
        interior = skin & (np.abs(v[:, 0]) < 0.03) & (np.abs(v[:, 2] - mouth_z0) < 0.025)
        interior &= v[:, 1] > front_y + 0.012
        interior_w = _hidden_in_front_view(head, interior).astype(np.float32)
    lips = lip_w > 0.5
    mouth_z = float(np.median(v[lips, 2])) if np.any(lips) else eye_z - 0.07

    # Brows: the skin the brow-lowering units move most, in a band above the eyes.
    brow_support = _support(head, ["browDownLeft", "browDownRight"])
    band = skin & (v[:, 2] > eye_z + 0.006) & (v[:, 2] < eye_z + 0.04) & (np.abs(v[:, 0]) > 0.006)
    brow_w = np.where(band, _smoothstep(0.72, 0.92, brow_support), 0.0).astype(np.float32)

    for weight, colour in ((lip_w, _LIP), (brow_w, _BROW), (interior_w, _MOUTH)):
        colors += weight[:, None] * (np.asarray(colour, dtype=np.float32) - colors)

    # Inside the mouth, darken with depth behind the front of the lips (a fixed stand-in for ambient occlusion), so
    # an open mouth reads as a cavity: front teeth stay light, the back of the tongue goes dark.
    # The darkening follows the deformed depth (a tongue stuck out is lit), see _render_one.
    lip_front = float(v[lips, 1].min()) if np.any(lips) else float(v[skin, 1].min())
    inside = np.nonzero((parts == 3) | (parts == 4) | (interior_w > 0))[0]

    # Eye helpers: rest-pose direction cosine to the eye's forward axis (-Y), for per-pixel iris and pupil.
    eye_cos = np.full(head.num_vertices, -1.0, dtype=np.float32)
    for mask in (eye_l, eye_r):
        if np.any(mask):
            pts = v[mask].astype(np.float64)
            centre = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
            d = pts - centre
            d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
            eye_cos[mask] = -d[:, 1]

    # Framing: eyes a third from the top, eye-to-mouth about 40 % of the height (38 %, to keep the chin in).
    eye_to_mouth = max(eye_z - mouth_z, 0.03)
    height_m = eye_to_mouth / _EYE_TO_MOUTH
    top_z = eye_z + height_m / 3.0
    tris = head.triangles().astype(np.int64)
    pivot = np.array([0.0, float(np.median(v[skin, 1])), top_z - height_m / 2.0])
    setup = _Setup(
        triangles=tris,
        tri_part=head.face_parts[head.triangle_faces()],
        colors=colors,
        eye_cos=eye_cos,
        inside=inside,
        lip_front=lip_front,
        center_x=0.0,
        top_z=top_z,
        height_m=height_m,
        pivot=pivot,
    )
    _SETUPS[head] = setup
    return setup


def _hidden_in_front_view(head: DefaultHead, candidates: np.ndarray) -> np.ndarray:
    """Vertices (among candidates) that lie more than 2 mm behind the visible neutral surface, seen from the front."""
    hidden = np.zeros(head.num_vertices, dtype=bool)
    if not np.any(candidates):
        return hidden
    v = head.vertices
    res = 400
    lo = v[:, [0, 2]].min(axis=0)
    scale = (res - 1) / float((v[:, [0, 2]].max(axis=0) - lo).max())
    screen = np.empty_like(v)
    screen[:, 0] = (v[:, 0] - lo[0]) * scale
    screen[:, 1] = (v[:, 2].max() - v[:, 2]) * scale
    screen[:, 2] = v[:, 1]
    tris = head.triangles().astype(np.int64)
    skin_tri = head.face_parts[head.triangle_faces()] == 0
    pix, depth, _, _, _ = rasterize(screen, tris[skin_tri], res, res, cull=True)
    zbuf = np.full(res * res, np.inf)
    zbuf[pix] = depth
    idx = np.nonzero(candidates)[0]
    px = np.clip(np.floor(screen[idx, 0]).astype(np.int64), 0, res - 1)
    py = np.clip(np.floor(screen[idx, 1]).astype(np.int64), 0, res - 1)
    hidden[idx] = screen[idx, 2] > zbuf[py * res + px] + 0.002
    return hidden


# ----------------------------------------------------------------------------------------------------------------
# Rasteriser

def rasterize(screen: np.ndarray, tris: np.ndarray, width: int, height: int, cull: bool = True):
    """Visible fragment per covered pixel.

    screen: (V,3) pixel x (right), pixel y (down), depth (larger is farther). Pixel (i, j) has its centre at
    (i + 0.5, j + 0.5). Returns, for each covered pixel: its index y*width+x, depth, triangle index and the
    barycentric weights (w1, w2) of the triangle's second and third corners (w0 = 1 - w1 - w2).

    Vectorised scan conversion: all (triangle, pixel row) pairs are listed at once, each row's covered span is cut
    from the three edge functions, the spans are expanded to pixels with np.repeat, and the z-buffer is resolved with
    np.minimum.at. There is no Python loop over triangles (only over chunks of a few million pixels).
    """
    a, b, c = screen[tris[:, 0]], screen[tris[:, 1]], screen[tris[:, 2]]
    # Twice the signed area in a y-down screen; front faces (counter-clockwise seen from the camera) are negative.
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = area < -1e-12 if cull else np.abs(area) > 1e-12
    xs = np.stack([a[:, 0], b[:, 0], c[:, 0]], axis=1)
    ys = np.stack([a[:, 1], b[:, 1], c[:, 1]], axis=1)
    x0 = np.maximum(np.ceil(xs.min(axis=1) - 0.5), 0)
    x1 = np.minimum(np.floor(xs.max(axis=1) - 0.5), width - 1)
    y0 = np.maximum(np.ceil(ys.min(axis=1) - 0.5), 0)
    y1 = np.minimum(np.floor(ys.max(axis=1) - 0.5), height - 1)
    keep &= (x1 >= x0) & (y1 >= y0)
    ids = np.nonzero(keep)[0]
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0, dtype=np.float32)
    if ids.size == 0:
        return empty_i, empty_f, empty_i, empty_f, empty_f
    a, b, c, area = a[ids], b[ids], c[ids], area[ids]
    x0, y0, x1, y1 = x0[ids], y0[ids], x1[ids], y1[ids]
    # Edge functions w = ex*x + ey*y + ec for the barycentric weights of corners b (w1), c (w2) and a (w0).
    inv = 1.0 / area
    e1x = (c[:, 1] - a[:, 1]) * inv
    e1y = -(c[:, 0] - a[:, 0]) * inv
    e1c = -a[:, 0] * e1x - a[:, 1] * e1y
    e2x = -(b[:, 1] - a[:, 1]) * inv
    e2y = (b[:, 0] - a[:, 0]) * inv
    e2c = -a[:, 0] * e2x - a[:, 1] * e2y
    ex = np.stack([e1x, e2x, -(e1x + e2x)], axis=1)  # (T,3)
    ey = np.stack([e1y, e2y, -(e1y + e2y)], axis=1)
    ec = np.stack([e1c, e2c, 1.0 - (e1c + e2c)], axis=1)
    dzb = b[:, 2] - a[:, 2]
    dzc = c[:, 2] - a[:, 2]
    zx = e1x * dzb + e2x * dzc
    zy = e1y * dzb + e2y * dzc
    zc = a[:, 2] + e1c * dzb + e2c * dzc

    # One entry per (triangle, row).
    rows = (y1 - y0).astype(np.int64) + 1
    row_tri = np.repeat(np.arange(ids.size), rows)
    row_y = y0[row_tri] + (np.arange(row_tri.size) - np.repeat(np.cumsum(rows) - rows, rows))
    fy = row_y + 0.5
    val = ey[row_tri] * fy[:, None] + ec[row_tri]  # (R,3): w = ex*x + val
    exr = ex[row_tri]
    with np.errstate(divide="ignore", invalid="ignore"):
        cut = -val / exr
    lower = np.where(exr > 0, cut, -np.inf).max(axis=1)
    upper = np.where(exr < 0, cut, np.inf).min(axis=1)
    never = ((exr == 0) & (val < 0)).any(axis=1)
    tol = 1e-7
    start = np.maximum(np.ceil(lower - 0.5 - tol), x0[row_tri])
    stop = np.minimum(np.floor(upper - 0.5 + tol), x1[row_tri])
    span = np.where(never, 0, np.maximum(stop - start + 1, 0)).astype(np.int64)
    start = np.where(span > 0, start, 0).astype(np.int64)

    # Per row: depth, w1 and w2 at the span's first pixel centre and their steps per pixel (float32 from here on).
    fx0 = start + 0.5
    rt = row_tri
    row_coef = np.stack([
        zx[rt] * fx0 + zy[rt] * fy + zc[rt], zx[rt],
        e1x[rt] * fx0 + e1y[rt] * fy + e1c[rt], e1x[rt],
        e2x[rt] * fx0 + e2y[rt] * fy + e2c[rt], e2x[rt],
    ], axis=1).astype(np.float32)
    row_base = row_y.astype(np.int64) * width

    # Expand spans to pixels, in chunks.
    ends = np.cumsum(span)
    budget = 1 << 22
    pix_l, depth_l, tri_l, w1_l, w2_l = [], [], [], [], []
    lo = 0
    while lo < span.size:
        base = ends[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + budget, side="right")))
        n = span[lo:hi]
        r = np.repeat(np.arange(lo, hi), n)
        px = start[r] + (np.arange(r.size, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n))
        t = row_tri[r]
        # One gather of the row's coefficients (already evaluated at the row's first pixel centre), then steps.
        rc = row_coef[r]
        step = (px - start[r]).astype(np.float32)
        pix_l.append(row_base[r] + px)
        depth_l.append(rc[:, 0] + rc[:, 1] * step)
        w1_l.append(rc[:, 2] + rc[:, 3] * step)
        w2_l.append(rc[:, 4] + rc[:, 5] * step)
        tri_l.append(t)
        lo = hi
    pix = np.concatenate(pix_l)
    if pix.size == 0:
        return empty_i, empty_f, empty_i, empty_f, empty_f
    depth = np.concatenate(depth_l)
    zbuf = np.full(width * height, np.inf, dtype=np.float32)
    np.minimum.at(zbuf, pix, depth)
    win = np.nonzero(depth <= zbuf[pix])[0]
    # Ties: the last write wins, which is as good as any.
    slot = np.full(width * height, -1, dtype=np.int64)
    slot[pix[win]] = win
    covered = np.nonzero(slot >= 0)[0]
    pick = slot[covered]
    tri = np.concatenate(tri_l)[pick]
    w1 = np.clip(np.concatenate(w1_l)[pick], 0, 1)
    w2 = np.clip(np.concatenate(w2_l)[pick], 0, 1)
    return covered, zbuf[covered], ids[tri], w1, w2


def rotation_matrix(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """(3,3) head rotation in Blender axes from angles in degrees: R = Rz(yaw) @ Rx(pitch) @ Ry(roll).

    Positive yaw turns the face toward the character's left (the image's right), positive pitch lifts the chin,
    positive roll tilts the top of the head toward the character's left (the image's right). The photo fit reports
    head rotations in this same convention.
    """
    y, p, r = (math.radians(float(a)) for a in (yaw, pitch, roll))
    rz = np.array([[math.cos(y), -math.sin(y), 0.0], [math.sin(y), math.cos(y), 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(p), math.sin(p)], [0.0, -math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(r), 0.0, math.sin(r)], [0.0, 1.0, 0.0], [-math.sin(r), 0.0, math.cos(r)]])
    return rz @ rx @ ry


def _screen(verts: np.ndarray, setup: _Setup, pixels: int, rotation_deg) -> np.ndarray:
    """Vertices -> (x right, y down, depth) in a `pixels`-wide frame, after the optional view rotation."""
    if rotation_deg is not None:
        verts = (verts - setup.pivot) @ rotation_matrix(*rotation_deg).T + setup.pivot
    scale = pixels / setup.height_m
    screen = np.empty(verts.shape, dtype=np.float64)
    screen[:, 0] = (verts[:, 0] - setup.center_x) * scale + pixels / 2.0
    screen[:, 1] = (setup.top_z - verts[:, 2]) * scale
    screen[:, 2] = verts[:, 1]
    return screen


def _render_one(verts: np.ndarray, setup: _Setup, size: int, rotation_deg=None) -> np.ndarray:
    ss = size * SUPERSAMPLE
    screen = _screen(verts, setup, ss, rotation_deg)
    tris = setup.triangles
    pix, _, tri, w1, w2 = rasterize(screen, tris, ss, ss, cull=True)
    image = np.empty((ss * ss, 3), dtype=np.float32)
    image[:] = BACKGROUND
    if pix.size:
        # Per-vertex attributes: normal (3), albedo (3), eye cosine (1); interpolated in one pass. Normals follow the
        # view rotation (the light stays with the camera); the mouth's depth darkening follows the unturned head.
        shown = verts if rotation_deg is None else (verts - setup.pivot) @ rotation_matrix(*rotation_deg).T
        attrs = np.empty((verts.shape[0], 7), dtype=np.float32)
        attrs[:, :3] = vertex_normals(shown.astype(np.float64), tris)
        attrs[:, 3:6] = setup.colors
        if setup.inside.size:
            depth = verts[setup.inside, 1] - setup.lip_front - 0.006
            attrs[setup.inside, 3:6] *= np.clip(1.0 - depth / _CAVITY_DEPTH, _CAVITY_FLOOR, 1.0)[:, None]
        attrs[:, 6] = setup.eye_cos
        corners = tris[tri]
        w0 = (1.0 - w1 - w2)[:, None]
        val = attrs[corners[:, 0]] * w0 + attrs[corners[:, 1]] * w1[:, None] + attrs[corners[:, 2]] * w2[:, None]
        n = val[:, :3]
        light = (_LIGHT / np.linalg.norm(_LIGHT)).astype(np.float32)
        lambert = np.clip((n @ light) / np.maximum(np.sqrt(np.einsum("pj,pj->p", n, n)), 1e-12), 0.0, 1.0)
        albedo = val[:, 3:6]
        part = setup.tri_part[tri]
        eye = np.nonzero((part == 1) | (part == 2))[0]
        if eye.size:
            cosang = val[eye, 6]
            albedo[eye] = np.where((cosang > _PUPIL_COS)[:, None], np.asarray(_PUPIL, np.float32),
                                   np.where((cosang > _IRIS_COS)[:, None], np.asarray(_IRIS, np.float32),
                                            np.asarray(_SCLERA, np.float32)))
        image[pix] = albedo * (_AMBIENT + _DIFFUSE * lambert)[:, None]
    grid = image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3)
    acc = np.zeros((size, size, 3), dtype=np.float32)
    for dy in range(SUPERSAMPLE):
        for dx in range(SUPERSAMPLE):
            acc += grid[:, dy, :, dx, :]
    image = acc * (1.0 / (SUPERSAMPLE * SUPERSAMPLE))
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _check_view(size, rotation_deg) -> None:
    if not isinstance(size, (int, np.integer)) or size < 16 or size > 4096:
        raise InputError(f"The render size must be a whole number of pixels from 16 to 4096; got {size!r}.")
    if rotation_deg is None:
        return
    try:
        angles = np.asarray(rotation_deg, dtype=np.float64)
    except (TypeError, ValueError):
        angles = np.full(1, np.nan)
    if angles.shape != (3,) or not np.all(np.isfinite(angles)):
        raise InputError(f"A view rotation must be three finite angles (yaw, pitch, roll) in degrees; "
                         f"got {rotation_deg!r}.")


def render_expressions(weights: np.ndarray, size: int = 256, head: DefaultHead | None = None,
                       rotation_deg: Sequence[float] | None = None) -> np.ndarray:
    """Front views of the head for a batch of ARKit weights: (N,52) -> (N,size,size,3) uint8 ((52,) -> (size,size,3)).

    `rotation_deg` (yaw, pitch, roll) turns the head about the frame's centre first (see `rotation_matrix`).
    """
    w = np.asarray(weights, dtype=np.float32)
    single = w.ndim == 1
    if w.ndim not in (1, 2) or w.shape[-1] != NUM_CHANNELS:
        raise InputError(f"Expression weights must have shape (52,) or (N, 52); got {tuple(w.shape)}.")
    _check_view(size, rotation_deg)
    head = head if head is not None else load_default_head()
    setup = _prepare(head)
    frames = head.deform(w.reshape(-1, NUM_CHANNELS))
    out = np.empty((frames.shape[0], int(size), int(size), 3), dtype=np.uint8)
    for i in range(frames.shape[0]):
        out[i] = _render_one(frames[i], setup, int(size), rotation_deg)
    return out[0] if single else out


def project_points(points: np.ndarray, size: int = 256, head: DefaultHead | None = None,
                   rotation_deg: Sequence[float] | None = None) -> np.ndarray:
    """Where head-space points (K,3) land in a render of `size` with `rotation_deg`: (K,2) pixels, x right, y down."""
    _check_view(size, rotation_deg)
    setup = _prepare(head if head is not None else load_default_head())
    return _screen(np.asarray(points, dtype=np.float64).reshape(-1, 3), setup, int(size), rotation_deg)[:, :2]


# ----------------------------------------------------------------------------------------------------------------
# Contact sheet

def _font(px: int):
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(draw, text: str, font, max_width: int) -> str:
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "…", font=font) > max_width:
        text = text[:-1]
    return text + "…"


def write_contact_sheet(
    path,
    weights: np.ndarray,
    captions: Sequence[str],
    title: str | None = None,
    columns: int = 4,
    size: int = 192,
) -> None:
    """Render each row of `weights` and write a PNG grid with a caption under each cell (and an optional title)."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != NUM_CHANNELS:
        raise InputError(f"Contact-sheet weights must have shape (N, 52); got {tuple(np.shape(weights))}.")
    captions = [str(c) for c in captions]
    if w.shape[0] == 0:
        raise InputError("A contact sheet needs at least one expression.")
    if len(captions) != w.shape[0]:
        raise InputError(f"A contact sheet needs one caption per expression; got {len(captions)} for {w.shape[0]}.")
    if not isinstance(columns, (int, np.integer)) or columns < 1:
        raise InputError(f"The contact sheet needs at least one column; got {columns!r}.")
    images = render_expressions(w, size=size)
    count = images.shape[0]
    cols = min(int(columns), count)
    rows = -(-count // cols)
    pad = max(4, size // 32)
    cap_px = max(10, size // 14)
    cap_h = cap_px + pad
    title_h = (cap_px + 6 + 2 * pad) if title else 0
    sheet_w = cols * size + (cols + 1) * pad
    sheet_h = title_h + rows * (size + cap_h) + (rows + 1) * pad
    sheet = Image.new("RGB", (sheet_w, sheet_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(cap_px)
    if title:
        title_font = _font(cap_px + 6)
        draw.text((pad, pad), _fit(draw, title, title_font, sheet_w - 2 * pad), fill=(0, 0, 0), font=title_font)
    for k in range(count):
        r, c = divmod(k, cols)
        x = pad + c * (size + pad)
        y = title_h + pad + r * (size + cap_h + pad)
        sheet.paste(Image.fromarray(images[k]), (x, y))
        text = _fit(draw, captions[k], font, size)
        tw = draw.textlength(text, font=font)
        draw.text((x + (size - tw) / 2.0, y + size + pad // 2), text, fill=(30, 30, 30), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    try:
        with atomic_output(path, "wb") as handle:
            handle.write(buffer.getvalue())
    except OSError as exc:
        raise OutputError(f"Cannot write the contact sheet {path}: {exc.strerror or exc}.") from None


__all__ = ["project_points", "rasterize", "render_expressions", "rotation_matrix", "write_contact_sheet"]
