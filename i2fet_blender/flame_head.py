"""FLAME heads in Blender: build one from the user's FLAME file, recognise FLAME heads (ours and the FLAME add-on's),
and key FLAME expression, jaw and eye parameters on them.

Our head: a mesh in Blender axes (FLAME's (x, y, z) becomes (x, -z, y)), in scene units (FLAME is in metres; the
scene's unit scale is applied explicitly), with shape keys `Exp000`... (one per expression component, signed slider)
and an armature `root/neck/jaw/left_eye/right_eye` at FLAME's rest joints. Every bone points along +Z with no roll,
so its local frame *is* FLAME's frame and a bone's local rotation is FLAME's rotation for that joint. The optional
pose-corrective keys `Pose_<bone>_<r><c>` hold FLAME's posedirs; drivers set each to entry (r, c) of R - I from the
bone's XYZ Euler rotation (simple expressions, so they run without Python auto-execution).

Heads from elsewhere (the FLAME add-on, imports) are recognised by their `Exp###` keys and a jaw bone in an Armature
modifier's rig; how their data and bones are oriented relative to FLAME is measured (Procrustes of the mesh against
the FLAME template, and each bone's rest matrix) rather than assumed.
`model_runtime.rigs` (torch) is imported inside the functions that need it, so the extension registers without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import bpy
import numpy as np
from mathutils import Matrix

from model_runtime.errors import InputError
from model_runtime.heads.rig_names import match_channels

from . import shape_keys

OBJECT_NAME = "FLAME Head"
RIG_NAME = "FLAME Rig"
BONE_NAMES = ("root", "neck", "jaw", "left_eye", "right_eye")
EXP_SLIDER = 5.0  # FLAME coefficients are in standard deviations; +-5 covers any plausible expression
CORRECTIVE_SLIDER = 2.0  # entries of R - I lie in [-2, 2]
EXP_KEY = re.compile(r"^Exp(\d+)$")
SHA_PROP = "i2fet_flame_sha256"
FLAME_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # column j: FLAME axis j in Blender
# Relative RMS distance after a similarity fit beyond which the mesh is another model (or another vertex order, which
# gives ~100%). A head whose rest shape carries an identity (shape coefficients of a few standard deviations) differs
# from the template by some 10%, and must still be accepted.
MAX_TEMPLATE_MISMATCH = 0.25

# Entry (r, c) of R - I for Blender's XYZ Euler (R = Rz Ry Rx), as simple driver expressions of x, y, z.
_R_MINUS_I = (
    ("cos(y)*cos(z) - 1", "sin(x)*sin(y)*cos(z) - cos(x)*sin(z)", "cos(x)*sin(y)*cos(z) + sin(x)*sin(z)"),
    ("cos(y)*sin(z)", "sin(x)*sin(y)*sin(z) + cos(x)*cos(z) - 1", "cos(x)*sin(y)*sin(z) - sin(x)*cos(z)"),
    ("-sin(y)", "sin(x)*cos(y)", "cos(x)*cos(y) - 1"),
)


def units_per_metre(scene) -> float:
    scale = float(scene.unit_settings.scale_length or 1.0)
    return 1.0 / scale


def _to_blender(xyz: np.ndarray) -> np.ndarray:
    return np.asarray(xyz, dtype=np.float64) @ FLAME_TO_BLENDER.T


# ----------------------------------------------------------------------------------------------------------------
# Building


def _corrective_name(joint: int, r: int, c: int) -> str:
    return f"Pose_{BONE_NAMES[joint]}_{r}{c}"


def add_flame_head(context, model, *, correctives: bool = True, location=None) -> bpy.types.Object:
    """Add `model` (a `FlameModel`) as a rigged mesh at the 3D cursor; returns the mesh object (active, selected)."""
    scale = units_per_metre(context.scene)
    rest = _to_blender(model.v_template) * scale
    faces = np.asarray(model.f, dtype=np.int32)
    mesh = bpy.data.meshes.new(OBJECT_NAME)
    mesh.from_pydata(rest.tolist(), [], faces.tolist())
    mesh.update(calc_edges=True)
    if mesh.validate(verbose=False):
        bpy.data.meshes.remove(mesh)
        raise InputError("The FLAME model's faces do not form a valid mesh (repeated or out-of-range vertices).")
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    obj = bpy.data.objects.new(OBJECT_NAME, mesh)
    rig = _add_rig(context, model, scale)
    collection = context.collection or context.scene.collection
    collection.objects.link(rig)
    collection.objects.link(obj)
    rig.location = context.scene.cursor.location.copy() if location is None else location
    obj.parent = rig

    basis = obj.shape_key_add(name="Basis", from_mix=False)
    basis.interpolation = "KEY_LINEAR"
    flat_rest = rest.astype(np.float32)
    for i in range(model.num_expression):
        block = obj.shape_key_add(name=f"Exp{i:03d}", from_mix=False)
        block.slider_min, block.slider_max = -EXP_SLIDER, EXP_SLIDER
        block.points.foreach_set("co", (flat_rest + _to_blender(model.exprdirs[:, :, i]) * scale).astype(
            np.float32).ravel())
    if correctives:
        _add_correctives(obj, rig, model, flat_rest, scale)
    obj.data.shape_keys.name = f"{obj.name} Keys"

    for j, name in enumerate(BONE_NAMES):
        group = obj.vertex_groups.new(name=name)
        weights = model.weights[:, j]
        for index in np.flatnonzero(weights > 1e-6).tolist():
            group.add([index], float(weights[index]), "REPLACE")
    modifier = obj.modifiers.new("FLAME Skinning", "ARMATURE")
    modifier.object = rig
    modifier.use_vertex_groups = True
    modifier.use_deform_preserve_volume = False  # FLAME is plain linear blend skinning

    obj[SHA_PROP] = model.sha256
    obj["i2fet_flame_edition"] = model.edition
    for other in context.view_layer.objects:
        if other.select_get():
            other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


def _add_rig(context, model, scale: float) -> bpy.types.Object:
    joints = _to_blender(model.J_regressor @ model.v_template) * scale
    armature = bpy.data.armatures.new(RIG_NAME)
    rig = bpy.data.objects.new(RIG_NAME, armature)
    context.scene.collection.objects.link(rig)  # edit mode needs the rig in the view layer for a moment
    previous = context.view_layer.objects.active
    context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    length = 0.02 * scale
    bones = []
    for j, name in enumerate(BONE_NAMES):
        bone = armature.edit_bones.new(name)
        bone.head = joints[j].tolist()
        bone.tail = (joints[j] + np.array([0.0, 0.0, length])).tolist()
        bone.roll = 0.0
        bones.append(bone)
    for j, parent in enumerate(model.parents):
        if parent >= 0:
            bones[j].parent = bones[int(parent)]
    bpy.ops.object.mode_set(mode="OBJECT")
    context.scene.collection.objects.unlink(rig)
    context.view_layer.objects.active = previous
    for pose_bone in rig.pose.bones:
        pose_bone.rotation_mode = "XYZ"
    rig[SHA_PROP] = model.sha256
    return rig


def _add_correctives(obj, rig, model, rest: np.ndarray, scale: float) -> None:
    for j in range(1, len(BONE_NAMES)):
        bone_path = f'pose.bones["{BONE_NAMES[j]}"].rotation_euler'
        for r in range(3):
            for c in range(3):
                name = _corrective_name(j, r, c)
                row = model.posedirs[9 * (j - 1) + 3 * r + c].reshape(-1, 3)
                block = obj.shape_key_add(name=name, from_mix=False)
                block.slider_min, block.slider_max = -CORRECTIVE_SLIDER, CORRECTIVE_SLIDER
                block.points.foreach_set("co", (rest + _to_blender(row) * scale).astype(np.float32).ravel())
                driver = block.driver_add("value").driver
                driver.type = "SCRIPTED"
                for axis, var_name in enumerate("xyz"):
                    var = driver.variables.new()
                    var.name = var_name
                    var.type = "SINGLE_PROP"
                    var.targets[0].id = rig
                    var.targets[0].data_path = f"{bone_path}[{axis}]"
                driver.expression = _R_MINUS_I[r][c]


# ----------------------------------------------------------------------------------------------------------------
# Recognising


def find_rig(obj):
    """The armature object deforming `obj` through an Armature modifier (or its armature parent), or None."""
    for modifier in getattr(obj, "modifiers", ()):
        if modifier.type == "ARMATURE" and modifier.object is not None:
            return modifier.object
    parent = getattr(obj, "parent", None)
    return parent if parent is not None and parent.type == "ARMATURE" else None


def expression_keys(obj) -> dict[int, str]:
    """The `Exp###` shape keys of `obj`: {FLAME expression component: key name}, ordered by component."""
    numbered = {}
    for name in shape_keys.shape_key_names(obj):
        found = EXP_KEY.match(name)
        if found:
            numbered.setdefault(int(found.group(1)), name)
    return dict(sorted(numbered.items()))


def is_flame_head(obj) -> bool:
    """A mesh with Exp### keys and no ARKit-named ones (an ARKit face with one stray `Exp01` key stays ARKit)."""
    if obj is None or obj.type != "MESH" or not expression_keys(obj):
        return False
    match = match_channels(shape_keys.shape_key_names(obj))
    return not match.mapping and not getattr(match, "split", None)


def _bone(rig, *names):
    if rig is None:
        return None
    lowered = {bone.name.lower(): bone.name for bone in rig.pose.bones}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


@dataclass
class FlameTarget:
    obj: bpy.types.Object
    expression_keys: dict[int, str]  # FLAME expression component -> its Exp### key
    rig: bpy.types.Object | None
    jaw_bone: str | None
    eye_bones: tuple[str, str] | None
    flame_axes: np.ndarray  # (3, 3): column j is FLAME's axis j in the rig's armature space (or the object's)
    warnings: list[str] = field(default_factory=list)


def _data_rotation(obj, model) -> np.ndarray:
    """Rotation taking FLAME's axes to the mesh data's, measured by a similarity fit of the mesh to the template (a
    mirrored mesh cannot be fitted by a proper rotation, so it ends up far apart and is refused too)."""
    from model_runtime.rigs.registration import umeyama

    mesh = shape_keys.rest_coordinates(obj)
    tmpl = np.asarray(model.v_template, dtype=np.float64)
    rot, scale, shift = umeyama(tmpl, mesh)
    spread = np.sqrt(np.mean(np.sum((mesh - mesh.mean(0)) ** 2, 1)))
    mismatch = np.sqrt(np.mean(np.sum((mesh - scale * tmpl @ rot.T - shift) ** 2, 1))) / max(spread, 1e-18)
    if mismatch > MAX_TEMPLATE_MISMATCH:
        raise InputError(f"{obj.name!r} has the FLAME vertex count but its shape does not match the FLAME model's "
                         f"template ({mismatch:.0%} apart); use the FLAME file it was made from.")
    return rot


def check_flame_target(obj, model) -> FlameTarget:
    """Raise InputError (one sentence) unless `obj` is a FLAME head of `model` that can take keyframes."""
    if obj is None or obj.type != "MESH":
        raise InputError("Select a FLAME head mesh (Add FLAME Head makes one).")
    if shape_keys.is_linked(obj):
        raise InputError(f"{obj.name!r} is linked from another file or overridden; make it local first.")
    keys = expression_keys(obj)
    if not keys:
        raise InputError(f"{obj.name!r} has no Exp### shape keys, so it is not a FLAME head.")
    count = len(obj.data.vertices)
    if count != model.num_vertices:
        raise InputError(f"{obj.name!r} has {count} vertices but the FLAME model has {model.num_vertices}; use the "
                         f"FLAME file this head was made from.")
    warnings = []
    made_from = obj.get(SHA_PROP)
    if made_from and made_from != model.sha256:
        raise InputError(f"{obj.name!r} was made from another FLAME file than the one in the preferences; choose "
                         f"that file again.")
    beyond = [name for number, name in keys.items() if number >= model.num_expression]
    if beyond:
        warnings.append(f"{obj.name!r} has Exp keys beyond the model's {model.num_expression} components "
                        f"({beyond[0]}, ...); they are left alone.")
    rig = find_rig(obj)
    if rig is not None and shape_keys.is_linked(rig):
        raise InputError(f"The rig {rig.name!r} is linked from another file; make it local first.")
    for owner in (obj.data.shape_keys, rig):
        ad = getattr(owner, "animation_data", None)
        if ad is not None and ad.use_tweak_mode:
            raise InputError(f"{owner.name!r} is in NLA tweak mode; leave tweak mode first.")
    jaw = _bone(rig, "jaw")
    eyes = (_bone(rig, "left_eye", "eye_l", "eye.l", "lefteye"), _bone(rig, "right_eye", "eye_r", "eye.r",
                                                                      "righteye"))
    if jaw is None:
        warnings.append(f"{obj.name!r} has no rig with a jaw bone, so only the expression is keyed.")
    data_rot = _data_rotation(obj, model)
    to_rig = np.eye(3)
    if rig is not None:
        relative = (rig.matrix_world.inverted() @ obj.matrix_world).to_3x3()
        relative = np.array(relative, dtype=np.float64)
        to_rig = relative / np.cbrt(abs(np.linalg.det(relative)))
    return FlameTarget(obj=obj, expression_keys=keys, rig=rig, jaw_bone=jaw,
                       eye_bones=eyes if None not in eyes else None, flame_axes=to_rig @ data_rot, warnings=warnings)


# ----------------------------------------------------------------------------------------------------------------
# Keying


def _rotation_curves(target: FlameTarget, bone_name: str, axis_angles: np.ndarray) -> list:
    """Curves [(path, index, values)] that give `bone_name` the FLAME rotations (T, 3) in its own rotation mode."""
    from model_runtime.rigs.flame_layer import rodrigues_np

    pose_bone = target.rig.pose.bones[bone_name]
    rest = np.array(pose_bone.bone.matrix_local.to_3x3(), dtype=np.float64)
    axes = target.flame_axes
    flame_rot = rodrigues_np(np.asarray(axis_angles, dtype=np.float64))  # (T, 3, 3)
    local = np.einsum("ji,jk,tkl,ml,mn->tin", rest, axes, flame_rot, axes, rest)  # restᵀ A R Aᵀ rest
    return shape_keys.rotation_mode_curves(pose_bone, f'pose.bones["{bpy.utils.escape_identifier(bone_name)}"].', local)


@dataclass
class FlameWriteResult:
    start_frame: int
    end_frame: int
    num_keys: int
    clipped: int  # expression values clamped to a key's slider range
    warnings: list[str]


def write_flame_animation(target: FlameTarget, expression: np.ndarray, jaw_pose: np.ndarray,
                          eye_pose: np.ndarray | None = None, *, start_frame: int = 1, name: str = "I2FET FLAME",
                          anim=None, fps: float = 30.0, reduce: bool = False,
                          tolerance: float = shape_keys.DEFAULT_TOLERANCE, rig_curves=()) -> FlameWriteResult:
    """Key FLAME parameters per frame: Exp### shape keys, the jaw bone and (when given and present) the eye bones;
    `rig_curves` (the head's motion on its neck bone, see `head_motion`) join the rig's action."""
    expression = np.asarray(expression, dtype=np.float64)
    frames = expression.shape[0]
    key = target.obj.data.shape_keys
    curves, clipped = [], 0
    for number, key_name in target.expression_keys.items():
        if number >= expression.shape[1]:
            continue
        block = key.key_blocks[key_name]
        values = expression[:, number]
        clipped += int(np.sum((values < block.slider_min) | (values > block.slider_max)))
        curves.append((shape_keys.shape_key_path(key_name), 0, np.clip(values, block.slider_min, block.slider_max)))
    missing = [i for i in range(expression.shape[1]) if i not in target.expression_keys and np.any(expression[:, i])]
    rig_curves = list(rig_curves)
    if target.jaw_bone is not None:
        rig_curves += _rotation_curves(target, target.jaw_bone, jaw_pose)
    if eye_pose is not None and target.eye_bones is not None and np.any(eye_pose):
        rig_curves += _rotation_curves(target, target.eye_bones[0], eye_pose[:, :3])
        rig_curves += _rotation_curves(target, target.eye_bones[1], eye_pose[:, 3:])
    warnings = list(target.warnings)
    if missing:
        warnings.append(f"{len(missing)} expression components have no Exp key on {target.obj.name!r} (e.g. "
                        f"Exp{missing[0]:03d}); they were skipped.")
    if clipped:
        warnings.append(f"{clipped} expression values were beyond the Exp keys' slider range and were clamped.")
    common = dict(start_frame=start_frame, name=name, anim=anim, fps=fps, reduce=reduce, tolerance=tolerance)
    written = shape_keys.write_curves(key, curves, **common)
    num_keys = written.num_keys
    if rig_curves:
        num_keys += shape_keys.write_curves(target.rig, rig_curves, **common).num_keys
    return FlameWriteResult(start_frame=int(start_frame), end_frame=int(start_frame) + frames - 1, num_keys=num_keys,
                            clipped=clipped, warnings=warnings)


def _flame_rotation(target: FlameTarget, bone_name: str) -> np.ndarray:
    """The bone's current pose as a FLAME axis-angle (the inverse of `_rotation_curves`)."""
    pose_bone = target.rig.pose.bones[bone_name]
    rest = np.array(pose_bone.bone.matrix_local.to_3x3(), dtype=np.float64)
    local = np.array(pose_bone.matrix_basis.to_3x3(), dtype=np.float64)
    from model_runtime.rigs.flame_layer import axis_angle_np

    return axis_angle_np(target.flame_axes.T @ rest @ local @ rest.T @ target.flame_axes)


def read_flame_parameters(target: FlameTarget, frames) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The head's evaluated FLAME parameters at `frames` (NLA and drivers included, as the viewport shows them):
    expression (T, highest Exp number + 1; components without a key are 0), jaw (T, 3), eyes (T, 6) or None."""
    frames = list(frames)
    scene = bpy.context.scene
    keep = scene.frame_current
    blocks = target.obj.data.shape_keys.key_blocks
    width = max(target.expression_keys) + 1
    expression = np.zeros((len(frames), width), dtype=np.float32)
    jaw = np.zeros((len(frames), 3))
    eyes = np.zeros((len(frames), 6)) if target.eye_bones is not None else None
    try:
        for t, frame in enumerate(frames):
            scene.frame_set(int(frame))
            for number, name in target.expression_keys.items():
                expression[t, number] = blocks[name].value
            if target.jaw_bone is not None:
                jaw[t] = _flame_rotation(target, target.jaw_bone)
            if eyes is not None:
                eyes[t] = np.r_[_flame_rotation(target, target.eye_bones[0]),
                                _flame_rotation(target, target.eye_bones[1])]
    finally:
        scene.frame_set(keep)
    return expression, jaw, eyes
