"""`i2fet shapes`: an OBJ head gets the 52 ARKit shapes in an npz, with the checks printed; bad files are refused in
one sentence (exit 2) and nothing is written."""

import numpy as np
import pytest

from transfer_heads import lip_parting, load_canonical
from model_runtime.cli import main
from model_runtime.expression_space import ARKIT_CHANNELS, CHANNEL_INDEX
from model_runtime.rigs.obj_mesh import read_obj


def _write_obj(path, vertices, faces, one_based=True):
    lines = ["# test head", "o Head"] + [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += ["vn 0 0 1"] + ["f " + " ".join(f"{i + 1 if one_based else i - len(vertices)}//1" for i in face)
                              for face in faces]
    path.write_text("\n".join(lines) + "\n")


def test_obj_faces_are_fanned_and_relative_indices_resolved(tmp_path):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 2, 0]], dtype=float)
    _write_obj(tmp_path / "a.obj", vertices, [[0, 1, 2, 3], [3, 2, 4]])
    _write_obj(tmp_path / "b.obj", vertices, [[0, 1, 2, 3], [3, 2, 4]], one_based=False)
    for name in ("a.obj", "b.obj"):
        v, t = read_obj(tmp_path / name)
        np.testing.assert_array_equal(v, vertices)
        np.testing.assert_array_equal(t, [[0, 1, 2], [0, 2, 3], [3, 2, 4]])


@pytest.mark.parametrize("text, message", [
    (None, "is not a file"), (b"\xff\xfe\x00binary", "not a text OBJ"), ("v 1 2\nf 1 2 3\n", "line 1"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "line 4"), ("# nothing\n", "holds no mesh"),
])
def test_bad_files_are_refused_and_nothing_is_written(tmp_path, capsys, text, message):
    mesh = tmp_path / "head.obj"
    if isinstance(text, bytes):
        mesh.write_bytes(text)
    elif text is not None:
        mesh.write_text(text)
    out = tmp_path / "shapes.npz"
    assert main(["shapes", str(mesh), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and err.endswith(".")
    assert not out.exists()


def test_a_head_gets_52_shapes_and_its_checks(tmp_path, capsys, cache_root):
    """MediaPipe's canonical face mesh (closed lips) as an artist's OBJ: the npz holds the mesh and 52 shapes in
    ARKit order whose jawOpen parts the lips (measured from MediaPipe's own lip landmarks), and the checks are
    printed."""
    head = load_canonical()
    mesh = tmp_path / "canonical.obj"
    _write_obj(mesh, head.vertices, head.triangles)
    out = tmp_path / "shapes.npz"
    assert main(["shapes", str(mesh), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Wrote {out}" in printed and "jawOpen parts the lips by" in printed
    with np.load(out) as saved:
        assert [str(c) for c in saved["channels"]] == list(ARKIT_CHANNELS)
        assert saved["deltas"].shape == (52, 468, 3)
        np.testing.assert_allclose(saved["vertices"], head.vertices, atol=1e-5)
        jaw = saved["deltas"][CHANNEL_INDEX["jawOpen"]].astype(np.float64)
    assert lip_parting(head.vertices, jaw, head.openings) >= 0.2


@pytest.mark.parametrize("limit, value, text", [
    ("MAX_TARGET_VERTICES", 3, "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\n"),
    ("MAX_TARGET_TRIANGLES", 2, "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\nf 2 4 3\nf 1 2 4\n"),
])
def test_a_file_over_the_mesh_limits_is_refused_while_reading(tmp_path, monkeypatch, limit, value, text):
    import model_runtime.rigs.obj_mesh as obj_mesh
    from model_runtime.errors import InputError

    monkeypatch.setattr(obj_mesh, limit, value)
    mesh = tmp_path / "scan.obj"
    mesh.write_text(text)
    what = "vertices" if limit == "MAX_TARGET_VERTICES" else "triangles"
    with pytest.raises(InputError, match=f"over {value} {what}.*decimate it first"):
        read_obj(mesh)
