"""Transfer blendshape deltas from a source head onto any head mesh through a non-rigid registration.

After `registration.register` has laid the source onto the target, each target vertex takes the closest point of the
registered source surface that faces the same way as the target vertex (normals at cos >= MATCH_COS): an upper lid
never copies the lower lid or the socket fold behind it, a lower lip never the upper lip it touches, which is where a
plain closest-point copy goes wrong (eyeBlink, mouthClose, mouthRoll). The deltas are interpolated barycentrically
after each source vertex's delta has been carried through the registration's local deformation gradient (a widened
jaw opens wider), then rotated and scaled into the target's frame. Target vertices a few millimetres (source units)
or more from the registered source fade to zero motion; their confidence says so.

`transfer_default_head_shapes`, for any head mesh, adds what a head the project did not make needs: face landmarks
detected on renders of both heads (`face_detection`) correct the registration around lids and lips where it clearly
misses them, and then each side of the eye and mouth openings copies only from the same side of the source
(`openings`); the target's skin and its other parts (eyeballs, teeth) are matched separately, while small parts the
default head has no kind of (lashes, cards, caruncles) hang on the skin (`hanging_parts`); blinks are made to close the
target's own lid gap and no shape may push an upper lid through the lower one (`lids`, where eyeballs show the lids
to the detector, the user's lid groups mark them or the seams of eyes sewn shut do: `sewn_eyes`), triangles the
transfer turns inside out are smoothed back without gluing across the openings, and checks an artist would make first
(blinks close, jawOpen parts the lips, no inside-out triangles) are measured and reported with a remedy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InputError, WeightsError
from ..heads.geometry import vertex_normals
from ..heads.head import PART_NAMES, load_default_head
from ..progress import Progress, report, within
from .face_detection import GROUPS, FaceLandmarks, default_head_face_landmarks, detect_in_head_frame
from .hanging_parts import hang_on_skin, hanging_parts
from .lids import meet_lids
from .mesh_geometry import Surface, check_mesh, components, mesh_edges
from .openings import OPENINGS, contour_height, contour_points, opening_sides, opposite, side_label
from .registration import GUIDED_MISS, Registration, register, similarity
from .sewn_eyes import sewn_lid_margins

MATCH_COS = 0.0  # a target vertex copies only source surface facing the same half-space as itself
FALLOFF = 0.06  # confidence exp(−(d / (FALLOFF · source RMS radius))²): 4.5 mm on the default head


@dataclass(frozen=True, eq=False)
class Transfer:
    deltas: np.ndarray  # (K, Vt, 3) float32, target frame and units
    confidence: np.ndarray  # (Vt,) in [0, 1]: 1 on the registered source surface, fading with distance from it
    distance: np.ndarray  # (Vt,) distance to the registered source surface, target units (inf: none facing it)
    source_triangle: np.ndarray  # (Vt,) row of source_triangles each target vertex copies from (-1: none)
    bary: np.ndarray  # (Vt, 3) barycentrics in that triangle
    registration: Registration
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    checks: "TransferChecks | None" = None  # measured where the face's landmarks were found


def transfer_shapes(source_vertices, source_triangles, source_deltas, target_vertices, target_triangles, *,
                    source_mask=None, landmarks=None, registration: Registration | None = None,
                    match_mask=None, groups=None, sure=None, progress: Progress | None = None) -> Transfer:
    """Deltas (K, Vs, 3) of the source -> deltas (K, Vt, 3) of the target (see the module docstring).

    `source_mask` selects the source vertices that are registered; `match_mask` those whose triangles target
    vertices may copy from (default: every source triangle). `groups` [(target vertex rows, source triangle rows)]
    instead says which source triangles each target vertex may copy from (target vertices in no group stay still);
    `sure` (Vt,) marks target vertices whose match is known to be right however far it is (full confidence).
    `progress` hears the registration's steps and the copy (`model_runtime.progress`).
    """
    began = time.perf_counter()
    src, src_tri = check_mesh(source_vertices, source_triangles, "source")
    tgt, tgt_tri = check_mesh(target_vertices, target_triangles, "target")
    deltas = _check_deltas(source_deltas, src.shape[0])
    if registration is None:
        registration = register(src, src_tri, tgt, tgt_tri, source_mask=source_mask, landmarks=landmarks,
                                progress=within(progress, 0.0, 0.9))
    elif registration.vertices.shape != src.shape:
        raise InputError(f"The registration is of a {registration.vertices.shape[0]}-vertex source, not this "
                         f"{src.shape[0]}-vertex one.")
    if groups is None:
        match_rows = np.arange(src_tri.shape[0])
        if match_mask is not None:
            keep = np.asarray(match_mask)
            if keep.shape != (src.shape[0],) or keep.dtype != bool:
                raise InputError(f"The match mask must be a boolean array of shape ({src.shape[0]},).")
            match_rows = np.flatnonzero(keep[src_tri].all(axis=1))
            if match_rows.size == 0:
                raise InputError("The match mask selects no whole triangle of the source mesh.")
        groups = [(np.arange(tgt.shape[0]), match_rows)]
    report(progress, 0.9, "transferring the shapes")

    reg = registration
    registered = reg.to_source(reg.vertices)
    points = reg.to_source(tgt)
    normals = vertex_normals(tgt, tgt_tri) @ reg.rotation  # rotation only: normals keep their sense
    triangle = np.full(tgt.shape[0], -1, dtype=np.int64)
    bary = np.zeros((tgt.shape[0], 3))
    distance = np.full(tgt.shape[0], np.inf)
    for rows, tri_rows in groups:
        if len(rows) == 0 or len(tri_rows) == 0:
            continue
        hits = Surface(registered, src_tri[tri_rows]).closest(points[rows], normals[rows], MATCH_COS)
        hit = hits.triangle >= 0
        triangle[rows[hit]] = tri_rows[hits.triangle[hit]]
        bary[rows[hit]] = hits.bary[hit]
        distance[rows[hit]] = hits.distance[hit]
    found = triangle >= 0
    grouped = np.zeros(tgt.shape[0], dtype=bool)
    for rows, _ in groups:
        grouped[rows] = True

    # Each source delta through the local deformation gradient, then interpolated at the matched points.
    carried = np.einsum("vij,kvj->kvi", reg.jacobian, deltas)
    corners = src_tri[np.maximum(triangle, 0)]  # (Vt, 3)
    moved = np.einsum("tc,ktcd->ktd", bary, carried[:, corners])
    radius = float(np.sqrt(((src - src.mean(0)) ** 2).sum(1).mean()))
    confidence = np.where(found, np.exp(-(np.where(found, distance, 0.0) / (FALLOFF * radius)) ** 2), 0.0)
    if sure is not None:
        confidence = np.where(found & sure, 1.0, confidence)
    out = reg.scale * (moved * confidence[None, :, None]) @ reg.rotation.T
    notes = list(reg.notes)
    if (grouped & ~found).any():
        notes.append(f"{int((grouped & ~found).sum())} target vertices face away from every source surface and stay "
                     f"still.")
    return Transfer(deltas=out.astype(np.float32), confidence=confidence,
                    distance=np.where(found, distance * reg.scale, np.inf), source_triangle=triangle, bary=bary,
                    registration=reg, seconds=time.perf_counter() - began, notes=notes)


def transfer_default_head_shapes(target_vertices, target_triangles, *, landmarks=None, lids=None,
                                 parts: tuple[str, ...] | None = None, registration: Registration | None = None,
                                 find_face: bool = True, progress: Progress | None = None) -> Transfer:
    """The default head's 52 ARKit shapes onto any head mesh; `landmarks` (default-head vertex index, target point)
    are the user's. Meshes too heavy, non-manifold or holding several heads are refused (`check_head_mesh`).
    `lids` {name in LID_GROUPS: target vertex rows along that lid's margin, corner to corner}, all four or none, are the
    user's lid margins: they replace the detector's lid lines (`_with_user_lids`), which a mesh without eyeballs, its
    eyes sewn shut, does not show the detector. Without them, eyes sewn shut by a strip of triangles show their margins
    on the mesh (`sewn_eyes`), which are used the same way (a note says so).

    With `find_face` (the default: an artist's head) the skin is registered onto the target's skin (its largest
    connected part). Face landmarks found on both heads (`face_detection`), away from the user's, correct the fit
    where it clearly misses them (on a mesh of one part, without eyeballs to show the lids, only where it misses them
    grossly); a corrected fit's skin copies from the source skin on its own side of each eye and mouth opening
    (`openings`). Where eyeballs, the user's lid margins or the seams found show the lids, each blink is corrected to
    close the target's own lid gap (`lids`).
    The target's other parts (eyeballs, teeth) copy from the source's other named `parts` (default all of
    `head.PART_NAMES`), except thin ones nearer to the skin than to any of those (lashes, cards, caruncles), which
    move with the skin under their roots (`hanging_parts`); inside-out triangles the source does not have are
    smoothed away, and the result carries `checks`. A mesh without a detectable face and without user landmarks is
    refused; without MediaPipe installed the transfer runs as without `find_face`, with a note.

    Without `find_face` (a template made by a program, such as FLAME's, which the plain registration fits well) the
    default head's skin is registered onto the whole mesh and target vertices copy from the named `parts`.

    `progress(fraction, stage)` hears each stage start and may stop the work by raising `progress.Cancelled`.
    """
    parts = PART_NAMES if parts is None else tuple(parts)
    unknown = [p for p in parts if p not in PART_NAMES]
    if unknown or not parts:
        raise InputError(f"Parts must be some of {', '.join(PART_NAMES)}; got {', '.join(unknown) or 'none'}.")
    tgt, tgt_tri = check_mesh(target_vertices, target_triangles, "target")
    label = check_head_mesh(tgt, tgt_tri)
    lids = check_lids(lids, tgt.shape[0])
    head = load_default_head()
    skin = head.vertex_parts == PART_NAMES.index("skin")
    source_tri = head.triangles().astype(np.int64)
    main = np.bincount(label[tgt_tri[:, 0]]).argmax()
    target_skin = label == main
    skin_tri = tgt_tri[target_skin[tgt_tri].all(axis=1)]
    has_parts = skin_tri.shape[0] < tgt_tri.shape[0]  # eyeballs, teeth...
    notes = []
    found = None
    if find_face and registration is None:
        report(progress, 0.0, "finding the face")
        try:
            found = _face_landmarks(head, skin, source_tri, tgt, skin_tri, tgt_tri, lids)
        except WeightsError:
            find_face = False
            notes.append("No face landmarks were looked for: MediaPipe's face mesh is not installed (Install Runtime "
                         "in the add-on's preferences adds it).")
    if lids is not None and found is None:
        notes.append("The lid margins were not used: they move the lid landmarks found on the face, and none were "
                     + ("found." if find_face and registration is None else "looked for."))
    if not find_face:
        match = np.isin(head.vertex_parts, [PART_NAMES.index(p) for p in parts])
        result = transfer_shapes(head.vertices, source_tri, head.deltas, tgt, tgt_tri, source_mask=skin,
                                 landmarks=landmarks, registration=registration, match_mask=match,
                                 progress=within(progress, 0.15, 0.95))
        report(progress, 1.0, "done")
        result.notes[:0] = notes
        return result
    target_sides = source_sides = lids_from = None
    if registration is None:
        user = [] if landmarks is None else list(landmarks)
        if found is None and not user:
            raise InputError("The mesh does not look like a head: no face was found on it from the front; add the "
                             "vertex groups I2FET nose_tip, I2FET mouth_corner_left, I2FET mouth_corner_right, I2FET "
                             "upper_lid_left and I2FET upper_lid_right to show where the face is.")
        pairs, fitted = [], skin
        if found is not None:
            pairs, target_marks, in_head, fitted, lids_from = found
            target_sides = np.where(target_skin, opening_sides(in_head, target_marks), 0)
            source_sides = opening_sides(head.vertices, default_head_face_landmarks())
            notes.append(f"{len(pairs)} face landmarks found automatically" + LIDS_FROM[lids_from])
        registration = register(head.vertices, source_tri, tgt, skin_tri, source_mask=fitted,
                                landmarks=user or None, guides=_away_from(head, pairs, user) or None,
                                guided_miss=GUIDED_MISS if has_parts else GUIDED_MISS_ONE_PART,
                                progress=within(progress, 0.15, 0.75))
    # The openings keep the sides apart only where the detected landmarks had to correct the fit: where the fit
    # already agrees with them, the detector's view of the lid and lip lines is no better than the fit's.
    sides = target_sides if registration.guided else None
    skin_rows = np.flatnonzero(skin[source_tri].all(axis=1))
    part_rows = [np.flatnonzero((head.vertex_parts[source_tri] == PART_NAMES.index(p)).all(axis=1))
                 for p in parts if p != "skin"]
    other_rows = np.sort(np.concatenate(part_rows)) if part_rows else np.zeros(0, dtype=np.int64)
    hanging = []
    if has_parts:
        loose = [np.flatnonzero(label == part) for part in np.unique(label[tgt_tri[:, 0]]) if part != main]
        hanging = hanging_parts(registration.to_source(tgt), skin_tri, loose,
                                registration.to_source(registration.vertices), [source_tri[r] for r in part_rows])
    hung = np.zeros(tgt.shape[0], dtype=bool)
    for rows in hanging:
        hung[rows] = True
    groups = [(np.flatnonzero(~target_skin & ~hung), other_rows)]
    if "skin" not in parts:
        groups.append((np.flatnonzero(target_skin), groups[0][1]))
    elif sides is None:
        groups.append((np.flatnonzero(target_skin), skin_rows))
    else:
        for side in np.unique(sides[target_skin]):
            rows = np.flatnonzero(target_skin & (sides == side))
            tri_rows = skin_rows
            if side != 0:
                tri_rows = skin_rows[~(source_sides[source_tri[skin_rows]] == opposite(side)).any(axis=1)]
            groups.append((rows, tri_rows))
    report(progress, 0.75, "transferring the shapes")
    result = transfer_shapes(head.vertices, source_tri, head.deltas, tgt, tgt_tri, registration=registration,
                             groups=groups, sure=None if sides is None else sides != 0)
    report(progress, 0.87, "smoothing inside-out triangles")
    deltas = result.deltas
    # The detected lid and lip lines are measured by where eyeballs show them, or where they had to correct the fit;
    # the lids are trusted where eyeballs show them, the user drew them or the seams of eyes sewn shut were found.
    lids_marked = lids_from is not None
    measured = target_sides is not None and (has_parts or registration.guided or lids_marked)
    lids_shown = measured and (has_parts or lids_marked)
    pinned = None
    if lids_shown:
        from ..expression_space import ARKIT_CHANNELS

        deltas, met, margins = meet_lids(tgt, deltas, in_head, target_marks, target_sides, ARKIT_CHANNELS)
        pinned = np.zeros((deltas.shape[0], tgt.shape[0]), dtype=bool)
        pinned[[ARKIT_CHANNELS.index(c) for c in met]] = margins
        if met:
            notes.append(f"Brought the upper lids onto the lower ones in {', '.join(met)}.")
    # Where the fit already agrees with the landmarks (a head shaped like the default one), a few inside-out triangles
    # are the source's own motion on another mesh, folds included (remeshed copies of the default head: repairing
    # every one made them 1-5 points worse). Where the landmarks had to correct the fit, the source's folds do not
    # land where the target would fold (ICT's lip corners, triangles a hundredth of its median face triangle's area),
    # so every inside-out triangle is repaired (ICT, measured with the fill still reaching across openings: mean
    # error 0.720 instead of 0.723), but for the seam of an eye between its lid lines, which a blink closes. On a mesh
    # without eyeballs whose lids neither the user nor a seam found on it marks (`sewn_eyes`), the detector's lid line
    # lies elsewhere (at the crease, on MediaPipe's canonical mesh, whose eyes are sewn shut): the fold the blink makes
    # there is left for the lid groups the warning names (smoothing it away made that blink open the eye by 2%).
    if registration.guided:
        intended = np.zeros((head.deltas.shape[0], skin_tri.shape[0]), dtype=bool)
    else:
        intended = _source_folds(head, source_tri, skin, result.source_triangle, skin_tri)
    if measured:
        intended = intended | _in_slits(in_head, skin_tri, target_marks, target_sides)[None]
    deltas, repaired = _unflip(tgt, skin_tri, deltas, 0.0 if registration.guided else MAX_FLIPPED, intended,
                               target_sides if measured else None, pinned)
    if repaired:
        notes.append(f"Smoothed {repaired} shapes where transferred motion turned triangles inside out.")
    if hanging:
        deltas = hang_on_skin(tgt, skin_tri, deltas, hanging)
        notes.append(f"{len(hanging)} thin parts ({int(hung.sum())} vertices: lashes, cards, shells), nearer to the "
                     f"skin than to the default head's eyes and teeth, hang on the skin: each vertex moves with the "
                     f"skin under the part's nearest root (its vertices closest to the skin).")
    checks = None
    if target_sides is not None and not measured:
        notes.append("Blinks and lip parting were not checked: without eyeballs the face detector's lid lines are "
                     "not reliable enough to measure by.")
    elif measured:
        report(progress, 0.97, "checking blinks and lips")
        checks = measure_checks(tgt, skin_tri, deltas, in_head, target_marks, target_sides, intended)
    result = replace(result, deltas=deltas, checks=checks)
    result.notes[:0] = notes
    report(progress, 1.0, "done")
    return result


def check_head_mesh(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """The (V,) connected-part label of each vertex of a mesh fit for transfer; InputError (one sentence) for a scan
    too heavy to transfer in reasonable time, a mesh with many non-manifold edges, or several head-sized parts."""
    if vertices.shape[0] > MAX_TARGET_VERTICES:
        raise InputError(f"The mesh has {vertices.shape[0]:,} vertices; shape transfer takes up to "
                         f"{MAX_TARGET_VERTICES:,}, so decimate it (or transfer onto a lighter copy) first.")
    if triangles.shape[0] > MAX_TARGET_TRIANGLES:
        raise InputError(f"The mesh has {triangles.shape[0]:,} triangles; shape transfer takes up to "
                         f"{MAX_TARGET_TRIANGLES:,}, so decimate it (or transfer onto a lighter copy) first.")
    _, uses = mesh_edges(triangles)
    shared = int((uses > 2).sum())
    if shared > MAX_NON_MANIFOLD * uses.size:
        raise InputError(f"The mesh has {shared:,} edges shared by more than two faces (non-manifold); merge or "
                         f"separate them first (Select All by Trait > Non Manifold shows them).")
    label = components(triangles, vertices.shape[0])
    used = np.unique(triangles)
    parts, sizes = np.unique(label[used], return_counts=True)
    if parts.size > 1:
        extents = []
        for part in parts[np.argsort(-sizes)][:MAX_CHECKED_PARTS]:
            extents.append(float(np.linalg.norm(np.ptp(vertices[label == part], axis=0))))
        big = [e for e in extents[1:] if e >= MAX_OTHER_PART * extents[0]]
        if big:
            raise InputError(f"The mesh has {len(big) + 1} separate parts of head size; transfer onto one head at a "
                             f"time (separate the parts by loose parts and keep the head with its eyes and teeth).")
    return label


MAX_NON_MANIFOLD = 0.001  # share of the edges: a few stray ones (a bad merge) are harmless
MAX_OTHER_PART = 0.5  # a second part at least half the head's size is another head (or a body), not an eyeball
MAX_CHECKED_PARTS = 8


@dataclass(frozen=True, eq=False)
class TransferChecks:
    """What an artist would look at first, measured on the transferred shapes."""

    blink_closure: tuple[float, float]  # share of the lid gap eyeBlinkLeft / eyeBlinkRight closes on its own eye
    blink_other_eye: tuple[float, float]  # how much each changes the other eye's gap (share of that gap)
    lip_parting: float  # how far jawOpen parts the inner lips, share of the mouth's width
    flipped: np.ndarray  # (52,) share of the skin's triangles each shape turns inside out (mouthClose on jawOpen)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        worst = int(np.argmax(self.flipped))
        from ..expression_space import ARKIT_CHANNELS

        return (f"Blinks close the lids {self.blink_closure[0]:.0%} (left) and {self.blink_closure[1]:.0%} (right); "
                f"jawOpen parts the lips by {self.lip_parting:.0%} of the mouth's width; at most "
                f"{self.flipped[worst]:.2%} of the skin's triangles turn inside out ({ARKIT_CHANNELS[worst]}).")


MIN_BLINK_CLOSURE = 0.8
MAX_OTHER_EYE = 0.1
MIN_LIP_PARTING = 0.25
MAX_FLIPPED = 0.001


def measure_checks(vertices, skin_triangles, deltas, in_head, marks, sides, intended) -> TransferChecks | None:
    """The checks of `TransferChecks` from the detected lid and lip contours (the target vertices nearest to the
    middle of each, on its own side of the opening), with a warning naming the landmark groups that would help
    where one fails (inside-out triangles only where the source shape does not fold: `intended`). None when a
    contour was not found."""
    from ..expression_space import ARKIT_CHANNELS, CHANNEL_INDEX

    def nearest(group: str, side: int) -> np.ndarray | None:
        points = marks.group(group)
        rows = np.flatnonzero(sides == side)
        if points.shape[0] < 3 or rows.size == 0:
            return None
        middle = points[np.argsort(np.abs(points[:, 0] - np.median(points[:, 0])))[:3]]
        return np.unique(rows[np.argmin(np.linalg.norm(in_head[rows][None] - middle[:, None], axis=2), axis=1)])

    eyes = []
    for k, eye in enumerate(("left", "right")):
        upper = nearest(f"upper_lid_{eye}", side_label(k, True))
        lower = nearest(f"lower_lid_{eye}", side_label(k, False))
        if upper is None or lower is None:
            return None
        eyes.append((upper, lower))
    mouth = OPENINGS_ORDER.index("mouth")
    lips = nearest("upper_lip_inner", side_label(mouth, True)), nearest("lower_lip_inner", side_label(mouth, False))
    corners = [marks.point(i) for i in (78, 308)]
    if lips[0] is None or lips[1] is None or any(c is None for c in corners):
        return None

    def gap(shape, upper, lower):
        moved = vertices + shape
        before = vertices[upper].mean(0) - vertices[lower].mean(0)
        after = moved[upper].mean(0) - moved[lower].mean(0)
        return float(1.0 - after @ before / max(float(before @ before), 1e-30))

    blinks = [deltas[CHANNEL_INDEX[c]] for c in ("eyeBlinkLeft", "eyeBlinkRight")]
    closure = tuple(gap(blinks[k], *eyes[k]) for k in range(2))
    other = tuple(abs(gap(blinks[k], *eyes[1 - k])) for k in range(2))
    jaw = deltas[CHANNEL_INDEX["jawOpen"]]
    width = float(np.linalg.norm(corners[0] - corners[1])) * _frame_scale(vertices, in_head)
    parted = (np.linalg.norm((vertices + jaw)[lips[0]].mean(0) - (vertices + jaw)[lips[1]].mean(0))
              - np.linalg.norm(vertices[lips[0]].mean(0) - vertices[lips[1]].mean(0))) / max(width, 1e-30)
    flips = np.array([_flipped(vertices, skin_triangles, shape_in_use(deltas, k)) for k in range(len(deltas))])
    flipped, unintended = flips.mean(axis=1), (flips & ~intended).mean(axis=1)
    warnings = []
    for k, eye in enumerate(("Left", "Right")):
        if closure[k] < MIN_BLINK_CLOSURE or other[k] > MAX_OTHER_EYE:
            warnings.append(f"eyeBlink{eye} closes its lids {closure[k]:.0%} and moves the other eye's by "
                            f"{other[k]:.0%}; mark each lid's margin, corner to corner, with the vertex groups "
                            f"I2FET upper_lid_left, I2FET lower_lid_left, I2FET upper_lid_right and I2FET "
                            f"lower_lid_right and run again.")
    if parted < MIN_LIP_PARTING:
        warnings.append(f"jawOpen parts the lips by only {parted:.0%} of the mouth's width; mark the vertex groups "
                        f"I2FET mouth_corner_left, I2FET mouth_corner_right and I2FET chin and run again.")
    bad = [ARKIT_CHANNELS[k] for k in np.flatnonzero(unintended >= MAX_FLIPPED)]
    if bad:
        warnings.append(f"{len(bad)} shapes turn more than {MAX_FLIPPED:.1%} of the skin's triangles inside out where "
                        f"the default head's do not "
                        f"({', '.join(bad[:4])}{'...' if len(bad) > 4 else ''}); mark the vertex groups I2FET "
                        f"mouth_corner_left, I2FET mouth_corner_right, I2FET upper_lid_left and I2FET upper_lid_right "
                        f"and run again.")
    return TransferChecks(blink_closure=closure, blink_other_eye=other, lip_parting=float(parted), flipped=flipped,
                          warnings=warnings)


def _frame_scale(vertices, in_head) -> float:
    """Target units per default-head unit (the similarity's scale, read back from the two copies of the mesh)."""
    return float(np.linalg.norm(vertices - vertices.mean(0)) / max(np.linalg.norm(in_head - in_head.mean(0)), 1e-30))


def _flipped(vertices, triangles, shape) -> float:
    def normals(v):
        p, q, r = (v[triangles[:, i]] for i in range(3))
        return np.cross(q - p, r - p)

    return (normals(vertices) * normals(vertices + shape)).sum(axis=1) <= 0


def _in_slits(in_head: np.ndarray, triangles: np.ndarray, marks, sides: np.ndarray) -> np.ndarray:
    """(T,) triangles that sew an eye shut: joining its upper and lower lid (`openings` sides) with their middle between
    the two lid contours. A blink squeezes them to nothing (they turn over as the lids meet); an open eye has them only
    at its corners."""
    labels = sides[triangles]
    middle = in_head[triangles].mean(axis=1)
    out = np.zeros(triangles.shape[0], dtype=bool)
    for k, (eye, (upper_groups, lower_groups, corners, _)) in enumerate(OPENINGS.items()):
        if not eye.startswith("eye"):
            continue
        upper, lower = side_label(k, True), side_label(k, False)
        joins = (labels == upper).any(axis=1) & (labels == lower).any(axis=1) & np.isin(labels, (upper, lower)).all(1)
        ends = [marks.point(c) for c in corners]
        top = np.concatenate([marks.group(g) for g in upper_groups])
        bottom = np.concatenate([marks.group(g) for g in lower_groups])
        if not joins.any() or any(e is None for e in ends) or top.shape[0] < 3 or bottom.shape[0] < 3:
            continue
        ends = np.stack(ends)
        x = middle[:, 0]
        inside = ((x > ends[:, 0].min()) & (x < ends[:, 0].max())
                  & (middle[:, 2] <= contour_height(np.vstack([top, ends]), x))
                  & (middle[:, 2] >= contour_height(np.vstack([bottom, ends]), x)))
        out |= joins & inside
    return out


def _source_folds(head, source_tri, skin, source_triangle, target_triangles) -> np.ndarray:
    """(52, T) target triangles lying on skin that the source's own shape turns inside out (the fold and one ring
    around it): folds the artist meant, which the repair keeps."""
    rows = source_tri[skin[source_tri].all(axis=1)]
    vertices = head.vertices.astype(np.float64)
    deltas = head.deltas.astype(np.float64)
    out = np.zeros((deltas.shape[0], target_triangles.shape[0]), dtype=bool)
    matched = source_triangle[target_triangles]  # (T, 3) source triangle each corner copies from
    for k in range(deltas.shape[0]):
        folded = _flipped(vertices, rows, shape_in_use(deltas, k))
        if not folded.any():
            continue
        near = np.zeros(vertices.shape[0], dtype=bool)
        near[rows[folded]] = True
        near[rows[near[rows].any(axis=1)]] = True
        hit = np.where(matched >= 0, near[source_tri[np.maximum(matched, 0)]].any(axis=2), False)
        out[k] = hit.any(axis=1)
    return out


# The repair's reach: more rings unflip a little more of ICT's lips but glue the lips together under jawOpen, where the
# inner lip's triangles turn over as the lips part (wider patches glued the canonical mesh's sewn lips: 11% parting
# instead of 83%).
UNFLIP_ROUNDS = 20
UNFLIP_RINGS = 2  # each patch: the inside-out triangles and up to this many rings around them
FILL_TOLERANCE = 1e-9  # the fill's conjugate gradients stop at this residual, relative to the patch's right side
FILL_ITERATIONS = 2000
COT_LIMIT = 1e3  # a cotangent weight's bound per angle (0.06 degrees); the test heads' sharpest: under 25
# Shapes that only make sense on top of another: ARKit's mouthClose closes the lips of an open jaw (alone it pushes
# the lips through each other, in ICT's artist-made shapes as well).
ON_TOP_OF = {"mouthClose": "jawOpen"}


def shape_in_use(deltas: np.ndarray, k: int) -> np.ndarray:
    """Shape k of (52, V, 3) ARKit deltas as it is used: with the shape it sits on top of, if any."""
    from ..expression_space import ARKIT_CHANNELS, CHANNEL_INDEX

    under = ON_TOP_OF.get(ARKIT_CHANNELS[k])
    return deltas[k] if under is None else deltas[k] + deltas[CHANNEL_INDEX[under]]


def _unflip(vertices, triangles, deltas, tolerated: float = 0.0, intended=None, sides=None, pinned=None
            ) -> tuple[np.ndarray, int]:
    """Deltas where the motion of each patch of inside-out triangles (and a ring or two around it) is replaced by the
    harmonic fill of the motion around the patch, until under `tolerated` of the triangles are inside out, a round
    leaves the same ones inside out once the patches are full size (the fill would only repeat itself), or
    UNFLIP_ROUNDS rounds, so a fold the transfer made up does not flip the target's skin. The round with the fewest
    inside-out triangles is kept, not the last: a fill across an opening can turn over more than it mends (ICT's
    jawOpen: 14 after the same-side fill, 21 after the fill across); `intended` (K, T) marks the
    triangles left alone (folds the source shape has too, the seam of a closing eye). Each shape is judged as it is
    used (`shape_in_use`: mouthClose on top of jawOpen).

    With `sides` (`openings.opening_sides`) the patches first neither reach nor fill across an opening, so an upper lip
    takes its motion from the upper lip alone and lips that touch (or are sewn together) are not glued where jawOpen
    parts them (ICT: filled across, its lips' own contact line parted by 3% of the mouth's width instead of 82%); what
    is still inside out then (mostly triangles spanning an opening, where the shape slides one lip past the other at
    the mouth's corners) is filled from both sides. `pinned` (K, V) marks vertices whose motion stays as it is (the
    lid margins `lids.meet_lids` brought together)."""
    edges, _ = mesh_edges(triangles)
    weights = _cotangent_weights(vertices, triangles, edges)
    stages = [(edges, weights)]
    if sides is not None:
        ends = np.sort(sides[edges], axis=1)
        across = (ends[:, 0] > 0) & (ends[:, 0] % 2 == 1) & (ends[:, 1] == ends[:, 0] + 1)  # `opposite` sides
        stages.insert(0, (edges[~across], weights[~across]))

    def normals(v):
        p, q, r = (v[triangles[:, i]] for i in range(3))
        return np.cross(q - p, r - p)

    rest = normals(vertices)
    out = np.array(deltas, dtype=np.float64)
    repaired = 0
    for k in range(out.shape[0]):
        base = shape_in_use(out, k) - out[k]
        d = out[k]
        touched = False
        best = None
        for stage_edges, stage_weights in stages:
            a, b = stage_edges[:, 0], stage_edges[:, 1]
            previous = None
            for step in range(UNFLIP_ROUNDS + 1):
                bad = (normals(vertices + base + d) * rest).sum(axis=1) <= 0
                if intended is not None:
                    bad &= ~intended[k]
                if best is None or bad.sum() < best[0]:
                    best = (int(bad.sum()), d.copy())
                if (not bad.any() or bad.mean() < tolerated or step == UNFLIP_ROUNDS
                        or (step >= UNFLIP_RINGS and previous is not None and np.array_equal(bad, previous))):
                    break
                previous = bad
                touched = True
                patch = np.zeros(vertices.shape[0], dtype=bool)
                patch[triangles[bad]] = True
                for _ in range(min(1 + step, UNFLIP_RINGS)):
                    grown = patch.copy()
                    grown[a[patch[b]]] = True
                    grown[b[patch[a]]] = True
                    patch = grown
                if pinned is not None:
                    patch &= ~pinned[k]
                _harmonic_fill(d, patch, a, b, stage_weights)
        d[:] = best[1]
        repaired += touched
    return out.astype(np.float32), repaired



def _cotangent_weights(vertices, triangles, edges) -> np.ndarray:
    """(E,) each edge's cotangent weight (half the cotangents of the angles facing it), kept above a thousandth of the
    mean so every weight is positive: the harmonic fill then minimises the motion's bending over the surface's area,
    so a patch of tiny triangles (a dense mouth or eye corner) bends no more per millimetre than a patch of large ones.
    Uniform weights bend it as much per triangle, which turns the tiny ones inside out. Each cotangent is bounded by
    COT_LIMIT, so a degenerate (zero-area) triangle cannot raise the mean, and with it the floor, to where every
    weight is the same."""
    count = vertices.shape[0]
    key = edges[:, 0] * count + edges[:, 1]
    weights = np.zeros(edges.shape[0])
    for i in range(3):
        p, q, r = vertices[triangles[:, i]], vertices[triangles[:, (i + 1) % 3]], vertices[triangles[:, (i + 2) % 3]]
        u, v = q - p, r - p
        cot = np.clip((u * v).sum(axis=1) / np.maximum(np.linalg.norm(np.cross(u, v), axis=1), 1e-30),
                      -COT_LIMIT, COT_LIMIT)
        ends = np.sort(triangles[:, [(i + 1) % 3, (i + 2) % 3]], axis=1)
        weights += np.bincount(np.searchsorted(key, ends[:, 0] * count + ends[:, 1]), weights=0.5 * cot,
                               minlength=edges.shape[0])
    return np.maximum(weights, 1e-3 * float(np.abs(weights).mean()))


def _harmonic_fill(d: np.ndarray, patch: np.ndarray, a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> None:
    """Replace d on the `patch` vertices, in place, by the harmonic interpolation (edge `weights`) of d on the
    vertices around it: the smoothest motion that agrees with its surroundings, which turns no small patch inside out
    where its surroundings do not. Solved by Jacobi-preconditioned conjugate gradients from the current motion."""
    rows = np.flatnonzero(patch)
    local = np.full(d.shape[0], -1, dtype=np.int64)
    local[rows] = np.arange(rows.size)
    at = np.concatenate([a[patch[a]], b[patch[b]]])  # patch vertex, and each of its neighbours
    near = np.concatenate([b[patch[a]], a[patch[b]]])
    w = np.concatenate([weights[patch[a]], weights[patch[b]]])
    inside = patch[near]
    diagonal = np.maximum(np.bincount(local[at], weights=w, minlength=rows.size), 1e-30)[:, None]
    rhs = np.stack([np.bincount(local[at[~inside]], weights=w[~inside] * d[near[~inside], i], minlength=rows.size)
                    for i in range(3)], axis=1)
    to, of, w_in = local[at[inside]], local[near[inside]], w[inside]

    def apply(x):
        return diagonal * x - np.stack([np.bincount(to, weights=w_in * x[of, i], minlength=rows.size)
                                        for i in range(3)], axis=1)

    x = d[rows].copy()
    r = rhs - apply(x)
    z = r / diagonal
    p = z.copy()
    rz = (r * z).sum(axis=0)
    stop = FILL_TOLERANCE * max(float(np.linalg.norm(rhs)), 1e-30)
    for _ in range(FILL_ITERATIONS):
        if float(np.linalg.norm(r)) <= stop:
            break
        q = apply(p)
        step = rz / np.maximum((p * q).sum(axis=0), 1e-300)
        x += step * p
        r -= step * q
        z = r / diagonal
        rz_next = (r * z).sum(axis=0)
        p = z + (rz_next / np.maximum(rz, 1e-300)) * p
        rz = rz_next
    d[rows] = x


def _face_landmarks(head, skin, source_tri, tgt, skin_tri, tgt_tri, lids=None):
    """([(default-head skin vertex, target point)] for every landmark found on both heads, the target's landmarks,
    the target in the default head's frame, the default head's region that fits it (the whole skin, or the face
    alone for a face mask) and where the lid margins came from (a key of LIDS_FROM)), or None when the detector finds
    no face on the target. Without the user's `lids`, the margins of eyes sewn shut are looked for on the mesh
    (`sewn_eyes`); found, they take the user's place.

    The target is put in the default head's frame by a similarity fitted on the whole skin, or, when the detector
    finds no face that way (a face mask has no back of the head to fit), on the default head's face alone.
    """
    # The default head is rendered as the target is: without its eyeballs and teeth when the target has none.
    source = default_head_face_landmarks(with_parts=skin_tri.shape[0] < tgt_tri.shape[0])
    face = skin & (np.linalg.norm(head.deltas, axis=2).max(axis=0) >= FACE_MOTION_M)
    for region in (skin, face):
        tris = source_tri[region[source_tri].all(axis=1)]
        rotation, scale, translation = similarity(head.vertices[region], _reindex(tris, region), tgt, skin_tri)
        in_head = (tgt - translation) @ rotation / scale
        found = detect_in_head_frame(in_head, tgt_tri, skin_tri)
        if found is not None:
            break
    else:
        return None
    lids_from = None if lids is None else "groups"
    if lids is None:
        lids = sewn_lid_margins(in_head, skin_tri, found)
        lids_from = None if lids is None else "mesh"
    if lids is not None:
        # The user's lids pair with the default head's true lids: where its eyeballs show them to the detector.
        shown = default_head_face_landmarks(with_parts=True)
        found, moved = _with_user_lids(found, in_head, lids, shown)
        keep = ~np.isin(source.ids, moved)
        source = FaceLandmarks(ids=np.concatenate([source.ids[keep], moved]),
                               points=np.vstack([source.points[keep], np.stack([shown.point(i) for i in moved])]))
    skin_rows = np.flatnonzero(skin)
    pairs = []
    for landmark, point in zip(found.ids, found.points):
        at = source.point(landmark)
        if at is None or landmark in AMBIGUOUS:
            continue
        vertex = skin_rows[np.argmin(np.linalg.norm(head.vertices[skin_rows] - at, axis=1))]
        # The vertex stands in for the landmark's point: the target point moves by the same small offset.
        point = point + (head.vertices[vertex] - at)
        pairs.append((int(vertex), scale * point @ rotation.T + translation))
    return pairs, found, in_head, region, lids_from


# The end of the note on the landmarks found, by where the lid margins came from.
LIDS_FROM = {None: ".", "groups": ", the lids from the vertex groups marking them.",
             "mesh": ", the lids from the seams of the eyes sewn shut, found on the mesh."}


# The user's lid margins, by eye (`openings.OPENINGS`): the vertex groups I2FET upper_lid_left, ... in Blender.
LID_GROUPS = {"eye_left": ("upper_lid_left", "lower_lid_left"), "eye_right": ("upper_lid_right", "lower_lid_right")}


def check_lids(lids, count: int) -> dict[str, np.ndarray] | None:
    """The user's lid margins as {group: vertex rows}, or None; InputError (one sentence) unless all four are given,
    each with at least two vertices of the mesh."""
    if not lids:
        return None
    names = [name for pair in LID_GROUPS.values() for name in pair]
    missing = [name for name in names if name not in lids]
    unknown = sorted(set(lids) - set(names))
    if missing or unknown:
        raise InputError(f"Lid margins come as all four of {', '.join(names)}; "
                         + (f"{', '.join(missing)} missing." if missing else f"{', '.join(unknown)} is not one."))
    out = {}
    for name in names:
        rows = np.unique(np.asarray(lids[name]).ravel())
        if rows.size < 2 or rows.dtype.kind not in "iu" or rows.min() < 0 or rows.max() >= count:
            raise InputError(f"The lid margin {name} must list at least two vertices of the {count}-vertex mesh.")
        out[name] = rows.astype(np.int64)
    return out


def _with_user_lids(found, in_head: np.ndarray, lids: dict[str, np.ndarray], source
                    ) -> tuple[FaceLandmarks, np.ndarray]:
    """The detector's landmarks with each lid landmark moved onto the user's margin of that lid (target in the default
    head's frame), at the same place across the eye as the landmark sits on the default head (`source`), and each eye
    corner onto the margins' end on its side: the registration then pairs the default head's lids with the user's,
    and the openings and lids steps read the user's lines. Also the landmark numbers moved."""
    moved: dict[int, np.ndarray] = {}
    for eye, (upper_name, lower_name) in LID_GROUPS.items():
        margins = {name: in_head[lids[name]] for name in (upper_name, lower_name)}
        both = np.vstack(list(margins.values()))
        _refuse_the_other_eye(found, both.mean(axis=0), eye, (upper_name, lower_name))
        ends = both[np.argmin(both[:, 0])], both[np.argmax(both[:, 0])]
        corners = OPENINGS[eye][2]
        at = [source.point(c) for c in corners]
        if any(point is None for point in at):
            continue
        at = np.stack(at)
        lo, hi = float(at[:, 0].min()), float(at[:, 0].max())
        for corner, point in zip(corners, at):
            moved[corner] = ends[1] if point[0] == hi else ends[0]
        for name, margin in margins.items():
            line = np.vstack([margin, *ends])
            for landmark in GROUPS[name]:
                point = source.point(landmark)
                if point is None:
                    continue
                x = ends[0][0] + (point[0] - lo) / (hi - lo) * (ends[1][0] - ends[0][0])
                moved[landmark] = contour_points(line, x)
    keep = ~np.isin(found.ids, list(moved))
    ids = np.concatenate([found.ids[keep], np.array(list(moved), dtype=np.int64)])
    points = np.vstack([found.points[keep], np.stack(list(moved.values()))])
    order = np.argsort(ids)
    return FaceLandmarks(ids=ids[order], points=points[order]), np.array(sorted(moved), dtype=np.int64)


def _refuse_the_other_eye(found, centre: np.ndarray, eye: str, names: tuple[str, str]) -> None:
    """InputError (one sentence) when the lid groups of one eye lie nearer the corners the detector found for the
    other eye: groups swapped left for right would drag the fit across the face."""
    def middle(name):
        points = [found.point(c) for c in OPENINGS[name][2]]
        return None if any(p is None for p in points) else np.mean(points, axis=0)

    other = next(name for name in LID_GROUPS if name != eye)
    own_middle, other_middle = middle(eye), middle(other)
    if own_middle is not None and other_middle is not None and \
            np.linalg.norm(centre - other_middle) < np.linalg.norm(centre - own_middle):
        raise InputError(f"The lid groups {names[0]} and {names[1]} lie at the other eye; swap the left and right "
                         f"lid groups.")


def _reindex(triangles: np.ndarray, keep: np.ndarray) -> np.ndarray:
    remap = np.full(keep.shape[0], -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    return remap[triangles]


# The inner lip line of a closed mouth: the detector puts these on either lip, so they pair nothing reliably.
AMBIGUOUS = frozenset(GROUPS["upper_lip_inner"] + GROUPS["lower_lip_inner"])
OPENINGS_ORDER = tuple(OPENINGS)
# On a mesh of one part (no eyeballs or teeth) the detector's lids and lips are unreliable, so they correct the fit
# only when it misses them grossly. Measured median misses: 2.0-3.0% on remeshed, holed, re-proportioned copies of the
# default head's skin (which the plain fit matches: a correction made 20-24% error instead of 2-8%), 23% on
# MediaPipe's canonical face mesh (a face mask the plain fit gets wrong); ICT-FaceKit's head, with its parts, 3.2%.
GUIDED_MISS_ONE_PART = 0.10
MAX_TARGET_VERTICES = 300_000  # a scan with millions of vertices would take minutes and gigabytes
MAX_TARGET_TRIANGLES = 4 * MAX_TARGET_VERTICES  # a closed mesh has about two per vertex; n-gons fan into more
FACE_MOTION_M = 5e-4  # the default head's face: skin some shape moves at least this much
USER_OVERRIDE_M = 0.015  # automatic landmarks this close (default head) to a user's landmark give way to it


def _away_from(head, found, user) -> list[tuple[int, np.ndarray]]:
    """The automatic landmarks not within USER_OVERRIDE_M of one of the user's."""
    if not user:
        return found
    theirs = head.vertices[[int(i) for i, _ in user]]
    return [(i, p) for i, p in found if np.linalg.norm(theirs - head.vertices[i], axis=1).min() > USER_OVERRIDE_M]


def _check_deltas(source_deltas, count: int) -> np.ndarray:
    try:
        deltas = np.asarray(source_deltas, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("The source deltas must be a numeric array of shape (shapes, vertices, 3).") from None
    if deltas.ndim != 3 or deltas.shape[1:] != (count, 3) or deltas.shape[0] == 0:
        raise InputError(f"The source deltas must have shape (shapes, {count}, 3) to match the source vertices; got "
                         f"{deltas.shape}.")
    if not np.all(np.isfinite(deltas)):
        raise InputError("The source deltas hold non-finite values (NaN or infinity).")
    return deltas
