"""Render the default head at known expressions with Blender's Workbench engine (not the project's renderer): grey
material, Blender's studio light, another camera framing. The photo reader's tests and benchmark read these files to
measure how much of its accuracy is tied to the project's own renderer.

    python benchmarks/render_blender_faces.py [--out tests/data/renders_blender] [--size 320]
    python benchmarks/render_blender_faces.py --calibration 600 --out DIR   (extra renders for the calibration)

Writes one JPEG per face and `weights.json` (file -> 52 weights, rotation). Seeded: the same command gives the same
weights (pixels may differ by a few levels between Blender versions). With --calibration N, the faces are the
calibration's own kind (photo/calibration.py `calibration_faces`, another seed) and each is lit by another of
Blender's studio lights with a grey or skin-coloured material, except the test set's light (paint.sl): the test
renders stay a look the calibration has not seen.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

SEED = 77_001  # not the calibration's seed (photo/calibration.py)
CALIBRATION_SEED = 61_003
CALIBRATION_LIGHTS = ("basic.sl", "outdoor.sl", "rim.sl", "studio.sl", "Default")
CALIBRATION_COLORS = ((0.55, 0.55, 0.55), (0.80, 0.62, 0.52), (0.45, 0.32, 0.25), (0.70, 0.70, 0.72))
CONCEPTS = ("neutral", "happy", "surprised", "sad", "angry", "disgusted", "grin", "laugh", "shout", "wink", "pout",
            "frown", "raise_eyebrows", "close_eyes", "kiss", "squint")


def faces(seed: int = SEED) -> list[tuple[str, np.ndarray, tuple[float, float, float]]]:
    from model_runtime.knowledge import get_concept, sample_concept_weights

    rng = np.random.default_rng(seed)
    out = []
    for name in CONCEPTS:
        weights = sample_concept_weights(get_concept(name), rng).astype(np.float32)
        rotation = tuple(float(a) for a in np.round(rng.uniform(-8.0, 8.0, 3), 1)) if name != "neutral" else (0., 0., 0.)
        out.append((name, weights, rotation))
    return out


def calibration_set(count: int):
    from model_runtime.photo.calibration import calibration_faces

    weights, rotations, _ = calibration_faces(count, CALIBRATION_SEED)
    return [(f"c{i:04d}", w, tuple(float(a) for a in np.round(r, 1))) for i, (w, r) in enumerate(zip(weights,
                                                                                                   rotations))]


def render(out_dir: Path, size: int, calibration: int = 0) -> None:
    import bpy

    from model_runtime.heads.head import load_default_head
    from model_runtime.heads.render import rotation_matrix

    head = load_default_head()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    mesh = bpy.data.meshes.new("head")
    counts = head.face_vertex_counts.astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    polygons = [head.face_vertex_indices[s:s + c].tolist() for s, c in zip(starts, counts)]
    mesh.from_pydata(head.vertices.astype(np.float64).tolist(), [], polygons)
    mesh.shade_smooth()
    obj = bpy.data.objects.new("head", mesh)
    scene.collection.objects.link(obj)
    subsurf = obj.modifiers.new("Subdivision", "SUBSURF")
    subsurf.levels = subsurf.render_levels = 1

    pivot = head.vertices.mean(axis=0)
    camera_data = bpy.data.cameras.new("camera")
    camera_data.type = "ORTHO"
    camera_data.ortho_scale = 0.21  # metres: wider than the project's renderer's frame (0.18), a little lower
    camera = bpy.data.objects.new("camera", camera_data)
    scene.collection.objects.link(camera)
    camera.location = (0.0, -2.0, 0.69)
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)  # looking along +y at the face
    scene.camera = camera

    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.studio_light = "paint.sl"  # one of Blender's bundled studio lights, lit from above and the side
    shading.color_type = "SINGLE"
    shading.single_color = (0.55, 0.55, 0.55)
    scene.world = bpy.data.worlds.new("world")
    scene.world.color = (0.25, 0.25, 0.27)
    shading.show_cavity = True
    scene.display.render_aa = "8"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.image_settings.file_format = "JPEG"
    scene.render.image_settings.quality = 92
    scene.view_settings.view_transform = "Standard"

    out_dir.mkdir(parents=True, exist_ok=True)
    record = {}
    rest = head.vertices.astype(np.float64)
    rng = np.random.default_rng(CALIBRATION_SEED)
    for name, weights, rotation in (calibration_set(calibration) if calibration else faces()):
        if calibration:
            shading.studio_light = CALIBRATION_LIGHTS[rng.integers(len(CALIBRATION_LIGHTS))]
            shading.single_color = CALIBRATION_COLORS[rng.integers(len(CALIBRATION_COLORS))]
            scene.world.color = tuple(float(v) for v in rng.uniform(0.1, 0.8, 3))
            camera_data.ortho_scale = float(rng.uniform(0.19, 0.24))
        verts = head.deform(weights).astype(np.float64)
        verts = (verts - pivot) @ rotation_matrix(*rotation).T + pivot
        mesh.vertices.foreach_set("co", verts.ravel())
        mesh.update()
        scene.render.filepath = str(out_dir / f"{name}.jpg")
        bpy.ops.render.render(write_still=True)
        record[f"{name}.jpg"] = {"weights": [round(float(v), 4) for v in weights], "rotation_deg": list(rotation)}
    mesh.vertices.foreach_set("co", rest.ravel())
    (out_dir / "weights.json").write_text(json.dumps({"renderer": f"Blender {bpy.app.version_string} Workbench",
                                                      "seed": CALIBRATION_SEED if calibration else SEED,
                                                      "faces": record}, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="tests/data/renders_blender")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--calibration", type=int, default=0, help="render this many calibration faces instead")
    args = parser.parse_args()
    render(Path(args.out), args.size, args.calibration)


if __name__ == "__main__":
    main()
