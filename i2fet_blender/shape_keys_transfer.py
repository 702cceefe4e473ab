"""Add ARKit Shape Keys: give any head mesh the default head's 52 ARKit shapes (registration + transfer in the
runtime's `rigs.shape_transfer`), written as ordinary relative shape keys on top of the mesh's rest shape.

The operator reads the mesh (`read_head_mesh`), computes the keys without bpy (`compute_keys`, in a worker thread
when Blender has a window) and writes them in one go (`write_keys`); `add_arkit_shape_keys` does all three.

The registration is automatic: the face's lids, lips, nose, brows and jaw are found on renders of the mesh and used
where the fit misses them, and the message reports blink closure, jawOpen lip parting and inside-out triangles
measured on the result, with a warning naming the groups to add where one fails. To guide it, put vertex groups named `I2FET <landmark>` on the mesh (`I2FET nose_tip`,
`I2FET chin`, `I2FET mouth_corner_left`, ... see `model_runtime.heads.landmarks.LANDMARK_NAMES`); each group's
centre is where that landmark of the default head must land. Eyes the detector cannot see open (sewn shut, without
eyeballs) take their lid margins from the four groups `I2FET upper_lid_left`, `I2FET lower_lid_left`,
`I2FET upper_lid_right` and `I2FET lower_lid_right`, each the vertices along that lid's margin from corner to corner
(`rigs.shape_transfer.LID_GROUPS`); given all four, the upper-lid groups are margins rather than centres."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS
from model_runtime.heads.rig_names import match_channels

from . import shape_keys

MIN_VERTICES = 100  # fewer and it cannot be a face
# Median ‖J − I‖ of the registration's deformation gradient over the skin. Measured: 0.02-0.13 on remeshed,
# re-proportioned, rotated and rescaled heads; 0.44 on a sphere, 0.78 on a torus.
MAX_BENDING = 0.3


@dataclass
class TransferReport:
    summary: str
    warnings: list[str] = field(default_factory=list)


def _triangles(obj) -> np.ndarray:
    mesh = obj.data
    mesh.calc_loop_triangles()
    tris = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
    mesh.loop_triangles.foreach_get("vertices", tris)
    return tris.reshape(-1, 3)


LANDMARK_PREFIX = "I2FET "


def _lid_margin_names() -> tuple[str, ...]:
    from model_runtime.rigs.shape_transfer import LID_GROUPS

    return tuple(name for pair in LID_GROUPS.values() for name in pair)


def _landmark_groups(obj) -> dict[str, list[int]]:
    """{landmark or lid margin name: its vertices} from the mesh's `I2FET <name>` vertex groups."""
    from model_runtime.heads.landmarks import LANDMARK_NAMES

    groups = {g.index: g.name[len(LANDMARK_PREFIX):] for g in obj.vertex_groups if g.name.startswith(LANDMARK_PREFIX)}
    if not groups:
        return {}
    names = LANDMARK_NAMES + tuple(n for n in _lid_margin_names() if n not in LANDMARK_NAMES)
    unknown = sorted(name for name in groups.values() if name not in names)
    if unknown:
        raise InputError(f"The vertex group '{LANDMARK_PREFIX}{unknown[0]}' names no landmark; use "
                         f"{', '.join(names)}.")
    members: dict[int, list[int]] = {index: [] for index in groups}
    for vertex in obj.data.vertices:
        for element in vertex.groups:
            if element.group in members and element.weight > 0.0:
                members[element.group].append(vertex.index)
    empty = sorted(groups[i] for i, found in members.items() if not found)
    if empty:
        raise InputError(f"The landmark group '{LANDMARK_PREFIX}{empty[0]}' has no vertices; assign the vertices where "
                         f"that landmark is, or delete the group.")
    return {groups[i]: found for i, found in members.items()}


def _user_landmarks(groups: dict[str, list[int]], rest: np.ndarray, lids: dict | None
                    ) -> list[tuple[int, np.ndarray]]:
    """[(default-head vertex, target point)] from the `I2FET <landmark>` groups (`_landmark_groups`), not the lid
    margins (`lids`, from `_user_lids`)."""
    from model_runtime.heads.head import load_default_head
    from model_runtime.heads.landmarks import LANDMARK_NAMES, default_head_landmarks

    points = {name: found for name, found in groups.items()
              if name in LANDMARK_NAMES and not (lids is not None and name in _lid_margin_names())}
    if not points:
        return []
    source = default_head_landmarks(load_default_head())
    return [(source[name], rest[found].mean(axis=0)) for name, found in points.items()]


def _user_lids(groups: dict[str, list[int]]) -> dict[str, np.ndarray] | None:
    """{lid margin name: its vertices} when the groups (`_landmark_groups`) mark any lower lid (then all four must be
    there: the transfer refuses fewer), else None (upper-lid groups alone are landmarks)."""
    if not any(name.startswith("lower_lid_") for name in groups):
        return None
    return {name: np.asarray(found, dtype=np.int64) for name, found in groups.items() if name in _lid_margin_names()}


def check_mesh_for_transfer(obj) -> None:
    """Raise InputError unless `obj` is a local, editable mesh without ARKit shape keys yet."""
    if obj is None or obj.type != "MESH":
        raise InputError("Select a head mesh to give ARKit shape keys to.")
    if shape_keys.is_linked(obj):
        raise InputError(f"{obj.name!r} is linked from another file or overridden; make it local first.")
    if obj.mode != "OBJECT":
        raise InputError(f"{obj.name!r} is in {obj.mode.lower().replace('_', ' ')} mode; switch to Object Mode first.")
    existing = match_channels(shape_keys.shape_key_names(obj))
    if existing.mapping:
        raise InputError(f"{obj.name!r} already has {len(existing.mapping)} of the {len(ARKIT_CHANNELS)} ARKit shape "
                         f"keys; remove them first to transfer a fresh set.")
    if len(obj.data.vertices) < MIN_VERTICES or not len(obj.data.polygons):
        raise InputError(f"{obj.name!r} has {len(obj.data.vertices)} vertices and {len(obj.data.polygons)} faces; a "
                         f"head mesh needs at least {MIN_VERTICES} vertices with faces.")


@dataclass(frozen=True, eq=False)
class HeadMesh:
    """What the transfer needs from the object, read on the main thread: `compute_keys` works from this alone (it may
    run in a worker thread, where bpy must not be touched)."""

    name: str
    rest: np.ndarray  # (V,3) float64
    triangles: np.ndarray  # (T,3) int64
    landmarks: list  # the user's [(default-head vertex, target point)]
    lids: dict | None = None  # the user's lid margins {name: vertex rows} (`_user_lids`)


@dataclass(frozen=True, eq=False)
class ComputedKeys:
    deltas: np.ndarray  # (52, V, 3) float64
    report: TransferReport


def read_head_mesh(obj, *, landmarks=None) -> HeadMesh:
    """Check `obj` (InputError when it cannot take the keys) and read what the transfer needs."""
    check_mesh_for_transfer(obj)
    rest = shape_keys.rest_coordinates(obj)
    groups = _landmark_groups(obj)  # read once: a Python pass over every vertex, on the main thread
    lids = _user_lids(groups)
    if landmarks is None:
        landmarks = _user_landmarks(groups, rest, lids)
    if lids is not None:
        from model_runtime.rigs.shape_transfer import check_lids

        check_lids(lids, rest.shape[0])
    return HeadMesh(name=obj.name, rest=rest, triangles=_triangles(obj), landmarks=list(landmarks), lids=lids)


def compute_keys(head: HeadMesh, progress=None) -> ComputedKeys:
    """The transfer and its checks, without bpy; `progress` as `model_runtime.progress` (raising Cancelled stops)."""
    from model_runtime.rigs.shape_transfer import transfer_default_head_shapes

    landmarks, rest = head.landmarks, head.rest
    transfer = transfer_default_head_shapes(rest, head.triangles, landmarks=landmarks or None, lids=head.lids,
                                            progress=progress)
    bending = transfer.registration.median_bending()
    if bending > MAX_BENDING:
        raise InputError(f"{head.name!r} does not look like a head: the default head had to bend by {bending:.0%} to "
                         f"fit it (heads need under {MAX_BENDING:.0%}); nothing was added.")
    deltas = np.asarray(transfer.deltas, dtype=np.float64)
    if deltas.shape != (len(ARKIT_CHANNELS), rest.shape[0], 3) or not np.all(np.isfinite(deltas)):
        raise InputError(f"The shape transfer onto {head.name!r} failed (it produced no usable shapes).")

    reg = transfer.registration
    size = float(np.linalg.norm(np.ptp(rest, axis=0)))
    fit = float(np.median(reg.distance)) / max(size, 1e-12)
    moved = int(np.count_nonzero(np.abs(deltas).max(axis=(0, 2)) > 0))
    warnings = list(getattr(transfer, "notes", []))
    checked = ""
    if transfer.checks is not None:
        checked = " " + transfer.checks.summary()
        warnings.extend(transfer.checks.warnings)
    guided = ""
    if landmarks:
        miss = float(np.max(reg.landmark_error[:len(landmarks)])) / max(size, 1e-12)  # the user's come first
        guided = f" Guided by {len(landmarks)} landmarks (the farthest lands {miss:.1%} of the head's size away)."
    return ComputedKeys(deltas=deltas, report=TransferReport(
        summary=f"Added {len(ARKIT_CHANNELS)} ARKit shape keys to {head.name!r}: {moved} of {rest.shape[0]} vertices "
                f"move; the default head fits this mesh to a median {fit:.2%} of its size.{guided}{checked}",
        warnings=warnings))


def write_keys(obj, head: HeadMesh, keys: ComputedKeys) -> TransferReport:
    """Write the 52 keys onto `obj` in one go, if it is still the mesh `head` was read from (it may have been edited
    while the keys were computed); nothing stays written if a write fails."""
    check_mesh_for_transfer(obj)
    same = (len(obj.data.vertices) == head.rest.shape[0] and np.array_equal(shape_keys.rest_coordinates(obj), head.rest)
            and np.array_equal(_triangles(obj), head.triangles))
    if not same:
        raise InputError(f"{obj.name!r} was edited while its shape keys were computed; nothing was added, run Add "
                         f"ARKit Shape Keys again.")
    had_keys, active = obj.data.shape_keys is not None, obj.active_shape_key_index
    added = []
    try:
        if not had_keys:
            basis = obj.shape_key_add(name="Basis", from_mix=False)
            basis.interpolation = "KEY_LINEAR"
        flat_rest = head.rest.astype(np.float32)
        for i, channel in enumerate(ARKIT_CHANNELS):
            block = obj.shape_key_add(name=channel, from_mix=False)
            added.append(block)
            block.points.foreach_set("co", (flat_rest + keys.deltas[i]).astype(np.float32).ravel())
    except BaseException:
        if not had_keys:
            obj.shape_key_clear()
        else:
            for block in reversed(added):
                obj.shape_key_remove(block)
            obj.active_shape_key_index = active
        raise
    obj.data.update()
    return keys.report


def add_arkit_shape_keys(obj, *, landmarks=None) -> TransferReport:
    """Transfer the 52 shapes onto `obj` in one call (the operator splits it across threads); nothing is written
    unless the whole transfer succeeded."""
    head = read_head_mesh(obj, landmarks=landmarks)
    return write_keys(obj, head, compute_keys(head))
