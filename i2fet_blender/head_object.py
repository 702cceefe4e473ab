"""Build the default head (MakeHuman CC0 bust with 52 ARKit shape keys, from `model_runtime.heads.head`) as a Blender mesh."""

from __future__ import annotations

import bpy
import numpy as np

from model_runtime.expression_space import ARKIT_CHANNELS

OBJECT_NAME = "I2FET Head"
# Plain materials per part: (material name, base colour RGBA, roughness). Both eyes share one material.
PART_MATERIALS = {
    "skin": ("I2FET Skin", (0.80, 0.58, 0.47, 1.0), 0.55),
    "eye_left": ("I2FET Eye", (0.92, 0.92, 0.90, 1.0), 0.15),
    "eye_right": ("I2FET Eye", (0.92, 0.92, 0.90, 1.0), 0.15),
    "teeth": ("I2FET Teeth", (0.95, 0.93, 0.85, 1.0), 0.30),
    "tongue": ("I2FET Tongue", (0.70, 0.30, 0.32, 1.0), 0.45),
}


def _material(name: str, color, roughness: float) -> bpy.types.Material:
    mat = bpy.data.materials.get(name)
    if mat is not None and mat.library is None:
        return mat
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = color
    mat.roughness = roughness
    if bpy.app.version < (5, 0, 0):  # 5.0 materials always use nodes (use_nodes is deprecated there)
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF") if mat.node_tree is not None else None
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = color
        bsdf.inputs["Roughness"].default_value = roughness
    return mat


def build_mesh(head, name: str = OBJECT_NAME) -> bpy.types.Mesh:
    """A mesh datablock with the head's vertices, faces and one material index per part (no shape keys yet)."""
    verts = np.ascontiguousarray(head.vertices, dtype=np.float32)
    counts = np.asarray(head.face_vertex_counts, dtype=np.int32)
    indices = np.ascontiguousarray(head.face_vertex_indices, dtype=np.int32)
    starts = np.zeros_like(counts)
    if counts.shape[0] > 1:
        starts[1:] = np.cumsum(counts)[:-1]
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(verts.shape[0])
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.add(indices.shape[0])
    mesh.loops.foreach_set("vertex_index", indices)
    mesh.polygons.add(counts.shape[0])
    mesh.polygons.foreach_set("loop_start", starts)
    mesh.polygons.foreach_set("material_index", np.asarray(head.face_parts, dtype=np.int32))
    mesh.update(calc_edges=True)
    if mesh.validate(verbose=False):
        # validate() returns True when it had to fix something: the cached head is broken.
        raise RuntimeError("The default head's topology is invalid; clear the I2FET cache folder and retry.")
    mesh.shade_smooth() if hasattr(mesh, "shade_smooth") else mesh.polygons.foreach_set(
        "use_smooth", np.ones(counts.shape[0], dtype=bool))
    for part in head.PART_NAMES:
        mat_name, color, rough = PART_MATERIALS[part]
        mesh.materials.append(_material(mat_name, color, rough))
    return mesh


def add_shape_keys(obj, head) -> None:
    basis = obj.shape_key_add(name="Basis", from_mix=False)
    basis.interpolation = "KEY_LINEAR"
    rest = np.ascontiguousarray(head.vertices, dtype=np.float32)
    for i, channel in enumerate(ARKIT_CHANNELS):
        block = obj.shape_key_add(name=channel, from_mix=False)
        block.points.foreach_set("co", (rest + head.deltas[i]).astype(np.float32).ravel())
    obj.data.shape_keys.name = f"{obj.name} Keys"
    obj.data.shape_keys.use_relative = True


def add_default_head(context, location=None, subdivision_levels: int = 1, head=None) -> bpy.types.Object:
    """Add the default head at the 3D cursor (or `location`) to the active collection, select it, make it active."""
    if head is None:
        from model_runtime.heads.head import load_default_head

        head = load_default_head()
    mesh = build_mesh(head)
    obj = bpy.data.objects.new(OBJECT_NAME, mesh)
    collection = context.collection or context.scene.collection
    collection.objects.link(obj)
    obj.location = context.scene.cursor.location.copy() if location is None else location
    add_shape_keys(obj, head)
    if subdivision_levels > 0:
        mod = obj.modifiers.new("Subdivision", "SUBSURF")
        mod.levels = subdivision_levels
        mod.render_levels = subdivision_levels + 1
    obj["i2fet_head"] = 1
    view_layer = context.view_layer
    for other in view_layer.objects:
        if other.select_get():
            other.select_set(False)
    obj.select_set(True)
    view_layer.objects.active = obj
    return obj
