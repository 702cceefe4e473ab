"""Mesh geometry shared by the renderer and the rigs, in plain numpy (the renderer and the photo reader must not
pull in torch, which `rigs` does)."""

from __future__ import annotations

import numpy as np


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V,3), in the vertices' dtype; zero for vertices in no triangle."""
    face_n = np.cross(vertices[triangles[:, 1]] - vertices[triangles[:, 0]],
                      vertices[triangles[:, 2]] - vertices[triangles[:, 0]])  # length = twice the area
    normals = np.zeros_like(vertices)
    flat = triangles.reshape(-1)
    for k in range(3):
        normals[:, k] = np.bincount(flat, weights=np.repeat(face_n[:, k], 3), minlength=vertices.shape[0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return normals
