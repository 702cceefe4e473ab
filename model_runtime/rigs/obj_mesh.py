"""Wavefront OBJ meshes for `i2fet shapes`: positions and faces only (normals, UVs, groups and materials are not
needed to transfer shapes), polygons fanned into triangles, vertex order kept so the shapes match the file."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..paths import check_input_name
from .shape_transfer import MAX_TARGET_TRIANGLES, MAX_TARGET_VERTICES


def read_obj(path) -> tuple[np.ndarray, np.ndarray]:
    """(V,3) float64 vertices and (T,3) int64 triangles of an OBJ file; InputError (one sentence) for a file that is
    missing, not text, malformed, empty or heavier than shape transfer takes."""
    path = check_input_name(path, "mesh")
    if not path.is_file():
        raise InputError(f"{path} is not a file.")
    vertices: list[list[float]] = []
    triangles: list[list[int]] = []
    try:
        with path.open("r", encoding="utf-8", errors="strict") as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields or fields[0] not in ("v", "f"):
                    continue
                try:
                    if fields[0] == "v":
                        vertices.append([float(x) for x in fields[1:4]])
                        if len(vertices[-1]) != 3:
                            raise ValueError
                        if len(vertices) > MAX_TARGET_VERTICES:
                            raise InputError(f"{path} has over {MAX_TARGET_VERTICES:,} vertices; shape transfer "
                                             f"takes up to that many, so decimate it first.")
                    else:
                        corners = [int(f.split("/")[0]) for f in fields[1:]]
                        if len(corners) < 3 or 0 in corners:
                            raise ValueError
                        corners = [c - 1 if c > 0 else len(vertices) + c for c in corners]
                        triangles.extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
                        if len(triangles) > MAX_TARGET_TRIANGLES:
                            raise InputError(f"{path} has over {MAX_TARGET_TRIANGLES:,} triangles; shape transfer "
                                             f"takes up to that many, so decimate it first.")
                except ValueError:
                    raise InputError(f"{path} line {number} is not a valid OBJ vertex or face: {line.strip()[:60]!r}."
                                     ) from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text OBJ file.") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    if not vertices or not triangles:
        raise InputError(f"{path} holds no mesh: an OBJ file needs 'v' vertex and 'f' face lines.")
    return np.asarray(vertices, dtype=np.float64), np.asarray(triangles, dtype=np.int64)
