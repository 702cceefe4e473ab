"""ARKit shape transfer onto heads the project did not make (tests/transfer_heads.py): ICT-FaceKit's head against its
artists' own shapes, and MediaPipe's low-poly canonical face mesh with closed eyes and mouth; the face landmarks and
openings the transfer relies on; the inside-out repair; refusals.

Floors are looser than the goals of benchmarks/bench_transfer.py but well above what the transfer did before it
found landmarks and respected openings (ICT: error 0.96, cosine 0.45, blinks opening the eye by 131%, jawOpen
parting the lips by 3% of the mouth's width).
"""

import re

import numpy as np
import pytest

from transfer_heads import (LASH_SHAPES, canonical_lid_groups, flipped_share, folded_share, ict_scores, lid_closure,
                            lip_parting, load_canonical, load_ict, load_ict_eye_parts, part_scores, skin_and_parts,
                            through_skin)
from model_runtime.errors import InputError
from model_runtime.expression_space import CHANNEL_INDEX
from model_runtime.heads.head import load_default_head
from model_runtime.rigs.face_detection import GROUPS, default_head_face_landmarks
from model_runtime.rigs.openings import opening_sides, side_label
from model_runtime.rigs.mesh_geometry import mesh_edges
from model_runtime.rigs.shape_transfer import _cotangent_weights, _unflip, shape_in_use, transfer_default_head_shapes

BLINKS = ("eyeBlinkLeft", "eyeBlinkRight")


@pytest.fixture(scope="module")
def ict(cache_root):
    head = load_ict(whole=True)
    return head, transfer_default_head_shapes(head.vertices, head.triangles)


@pytest.fixture(scope="module")
def canonical(cache_root):
    head = load_canonical()
    return head, transfer_default_head_shapes(head.vertices, head.triangles)


@pytest.fixture(scope="module")
def canonical_with_lids(cache_root):
    head = load_canonical()
    return head, transfer_default_head_shapes(head.vertices, head.triangles, lids=canonical_lid_groups())


def _worst(share, head, deltas) -> float:
    face = head.triangles[head.face_triangles]
    return max(share(head.vertices, face, shape_in_use(deltas, k)) for k in range(len(deltas)))


def assert_lids_close_and_lips_part(head, deltas, least_closure):
    """Each blink closes its own eye (from `least_closure` up to a fifth of the gap through the lower lid; ICT's own
    blinks: 104%) and leaves the other, and jawOpen parts the lips by a fifth of the mouth's width."""
    for k, channel in enumerate(BLINKS):
        own = lid_closure(head.vertices, deltas[CHANNEL_INDEX[channel]], head.openings, k)
        assert least_closure <= own <= 1.2, (channel, own)
        assert abs(lid_closure(head.vertices, deltas[CHANNEL_INDEX[channel]], head.openings, 1 - k)) <= 0.1, channel
    assert lip_parting(head.vertices, deltas[CHANNEL_INDEX["jawOpen"]], head.openings) >= 0.2


def test_test_data_is_what_its_readme_says():
    ict_head, canonical_head = load_ict(whole=True), load_canonical()
    assert ict_head.vertices.shape == (26719, 3) and ict_head.truth.shape == (51, 26719, 3)
    assert canonical_head.vertices.shape == (468, 3) and canonical_head.triangles.shape == (898, 3)
    # ICT's own shapes pass the checks the transfer is held to (lid and lip points found from ICT's construction).
    blinks = [ict_head.truth[ict_head.channels.index(c)] for c in BLINKS]
    assert all(lid_closure(ict_head.vertices, blinks[k], ict_head.openings, k) > 0.8 for k in range(2))
    jaw = ict_head.truth[ict_head.channels.index("jawOpen")]
    assert lip_parting(ict_head.vertices, jaw, ict_head.openings) > 0.5


def test_ict_shapes_come_close_to_its_artists(ict):
    head, result = ict
    errors, cosines = ict_scores(result.deltas.astype(np.float64), head)
    assert errors.mean() <= 0.85 and cosines.mean() >= 0.65, (errors.mean(), cosines.mean())


def test_ict_lids_close_and_lips_part(ict):
    head, result = ict
    deltas = result.deltas.astype(np.float64)
    assert_lids_close_and_lips_part(head, deltas, 0.8)
    face = head.triangles[head.face_triangles]
    assert max(flipped_share(head.vertices, face, shape_in_use(deltas, k)) for k in range(len(deltas))) < 0.01


def test_ict_checks_are_reported(ict):
    """The transfer's own checks (from the landmarks it found) pass where those measured from ICT's construction do
    (test_ict_lids_close_and_lips_part), and no warning is raised for them."""
    head, result = ict
    checks = result.checks
    assert checks is not None
    for k in range(2):
        assert checks.blink_closure[k] >= 0.6
        assert checks.blink_other_eye[k] <= 0.1
    assert checks.lip_parting >= 0.2
    assert checks.flipped.shape == (52,) and checks.flipped.max() < 0.01
    assert "jawOpen parts the lips by" in checks.summary()
    assert not any("eyeBlink" in w or "jawOpen parts" in w for w in checks.warnings), checks.warnings
    assert any(note.endswith("face landmarks found automatically.") for note in result.notes), result.notes


def test_ict_lashes_ride_the_lids_and_stay_out_of_the_closed_eye(ict):
    """ICT's lashes (its part layout's `eyelashes`: parts the default head does not have) follow the lids: close to
    ICT's own lash shapes in eyeBlink, eyeWide and eyeSquint (left still, as they were: error 1, cosine 0), and a
    full blink puts no more lash vertices behind the closed lid than ICT's own blink does (left still: 97 and 109,
    against ICT's 43 and 46). Its eyeballs stay with their sockets: still under a blink, as in ICT's shapes."""
    head, result = ict
    eye = load_ict_eye_parts(head)
    deltas = result.deltas.astype(np.float64)
    lashes = eye.parts["eyelashes"]
    scores = np.array([part_scores(deltas[CHANNEL_INDEX[c]], eye.truth[head.channels.index(c)], lashes)
                       for c in LASH_SHAPES])
    assert scores[:, 0].mean() <= 0.7 and scores[:, 1].mean() >= 0.8, scores
    _, _, skin_tri = skin_and_parts(head)
    for channel in BLINKS:
        own = through_skin(head.vertices, skin_tri, eye.truth[head.channels.index(channel)], lashes)
        assert through_skin(head.vertices, skin_tri, deltas[CHANNEL_INDEX[channel]], lashes) <= 1.25 * own, channel
        for side in ("eyeball_left", "eyeball_right"):
            assert np.abs(deltas[CHANNEL_INDEX[channel]][eye.parts[side]]).max() == 0.0, (channel, side)
    assert any("hang on the skin" in note for note in result.notes)


def test_canonical_mesh_parts_its_closed_lips_without_opening_its_eyes(canonical):
    """A closed mouth (lips sewn together by triangles) still parts under jawOpen; blinks never open the eyes."""
    head, result = canonical
    deltas = result.deltas.astype(np.float64)
    assert lip_parting(head.vertices, deltas[CHANNEL_INDEX["jawOpen"]], head.openings) >= 0.2
    for k, channel in enumerate(BLINKS):
        assert lid_closure(head.vertices, deltas[CHANNEL_INDEX[channel]], head.openings, k) > 0.03, channel
        assert abs(lid_closure(head.vertices, deltas[CHANNEL_INDEX[channel]], head.openings, 1 - k)) <= 0.1
    face = head.triangles[head.face_triangles]
    assert max(flipped_share(head.vertices, face, shape_in_use(deltas, k)) for k in range(len(deltas))) < 0.005


def test_ict_face_turns_inside_out_nowhere_but_where_its_artists_shapes_do(ict):
    """No shape flips 0.1% of ICT's face triangles (the issue's goal; measured 0.05%, in jawOpen; 0.11% when the repair
    kept its last round instead of its best, 0.48% when it filled patches with a few uniform sweeps, ICT's own shapes
    0.82%) nor folds 0.1% against their neighbours."""
    head, result = ict
    deltas = result.deltas.astype(np.float64)
    assert _worst(flipped_share, head, deltas) < 0.001
    assert _worst(folded_share, head, deltas) < 0.001


def test_canonical_mesh_blinks_with_its_lids_marked(canonical_with_lids):
    """Its eyes are sewn shut, so the detector sees them closed (blinks closed 5% at best from the detector's lid
    lines); with the four lid margins given as the user's lid groups, from MediaPipe's numbering (the mesh's own, not
    the code's), each blink closes its own eye and leaves the other, the lips still part and at most one face triangle
    of 852 flips in any shape (from the detector's lid lines, two in eyeBlinkRight: the crease folding over the lid
    the detector could not see)."""
    head, result = canonical_with_lids
    deltas = result.deltas.astype(np.float64)
    assert_lids_close_and_lips_part(head, deltas, 0.7)
    assert _worst(flipped_share, head, deltas) < 0.0015
    assert any("the lids from the vertex groups" in note for note in result.notes)
    assert result.checks is not None and min(result.checks.blink_closure) >= 0.7
    assert not any("eyeBlink" in w for w in result.checks.warnings), result.checks.warnings


def test_canonical_mesh_blinks_from_the_seams_of_its_sewn_eyes(canonical):
    """Without lid groups, the seams its eyes are sewn shut along give the lid margins (tests/test_sewn_eyes.py
    compares them with MediaPipe's numbering): each blink closes its own eye (5% from the detector's lid lines
    alone) and leaves the other, the lips still part, no shape flips a face triangle in a thousand (two in
    eyeBlinkRight before), and the transfer's own checks raise no blink warning."""
    head, result = canonical
    deltas = result.deltas.astype(np.float64)
    assert_lids_close_and_lips_part(head, deltas, 0.8)
    assert _worst(flipped_share, head, deltas) < 0.001
    assert any(note.endswith("the lids from the seams of the eyes sewn shut, found on the mesh.")
               for note in result.notes), result.notes
    assert result.checks is not None and min(result.checks.blink_closure) >= 0.8
    assert not any("eyeBlink" in w for w in result.checks.warnings), result.checks.warnings


def test_lid_margins_not_used_say_so(cache_root):
    """Without face detection the lid margins have no landmarks to move: the result says they were not used."""
    head = load_canonical()
    result = transfer_default_head_shapes(head.vertices, head.triangles, lids=canonical_lid_groups(), find_face=False)
    assert any(note.startswith("The lid margins were not used") for note in result.notes), result.notes


def test_lid_margins_of_the_wrong_eye_are_refused(cache_root):
    """Left and right lid groups swapped would pull the fit across the face: refused in one sentence."""
    head = load_canonical()
    lids = canonical_lid_groups()
    swapped = {name.replace("left", "RIGHT").replace("right", "left").replace("RIGHT", "right"): rows
               for name, rows in lids.items()}
    with pytest.raises(InputError, match="lie at the other eye"):
        transfer_default_head_shapes(head.vertices, head.triangles, lids=swapped)


@pytest.mark.parametrize("change, message", [
    (lambda lids: lids.pop("lower_lid_left"), "lower_lid_left missing"),
    (lambda lids: lids.update(upper_lid_right=np.array([3, 10**6])), "at least two vertices of the 468-vertex"),
    (lambda lids: lids.update(upper_lid_right=np.array([3])), "at least two vertices"),
    (lambda lids: lids.update(brow=np.array([3, 4])), "brow is not one"),
])
def test_incomplete_lid_groups_are_refused_in_one_sentence(change, message, monkeypatch):
    import model_runtime.rigs.shape_transfer as shape_transfer

    head = load_canonical()
    lids = canonical_lid_groups()
    change(lids)
    monkeypatch.setattr(shape_transfer, "load_default_head", lambda: pytest.fail("the default head was loaded"))
    with pytest.raises(InputError, match=re.escape(message)) as info:
        transfer_default_head_shapes(head.vertices, head.triangles, lids=lids)
    assert str(info.value).endswith(".") and str(info.value).count(". ") == 0


def test_default_head_landmarks_and_openings_sit_where_their_shapes_move(cache_root):
    head = load_default_head()
    marks = default_head_face_landmarks()
    assert marks.ids.size >= 0.8 * len(set().union(*GROUPS.values()))
    sides = opening_sides(head.vertices.astype(np.float64), marks)
    skin = head.vertex_parts == 0
    for k, (channel, group) in enumerate((("eyeBlinkLeft", "upper_lid_left"), ("eyeBlinkRight", "upper_lid_right"))):
        motion = np.where(skin, np.linalg.norm(head.deltas[CHANNEL_INDEX[channel]], axis=1), 0.0)
        top = np.argsort(-motion)[:10]
        assert np.mean(sides[top] == side_label(k, True)) >= 0.8, channel
        # The detected upper lid lies on the skin that blink moves.
        nearest = np.linalg.norm(head.vertices[top][None] - marks.group(group)[:, None], axis=2).min()
        assert nearest < 0.004
    lower_lip = np.where(skin, np.linalg.norm(head.deltas[CHANNEL_INDEX["mouthRollLower"]], axis=1), 0.0)
    upper_lip = np.where(skin, np.linalg.norm(head.deltas[CHANNEL_INDEX["mouthRollUpper"]], axis=1), 0.0)
    assert np.mean(sides[np.argsort(-lower_lip)[:10]] == side_label(2, False)) >= 0.8
    assert np.mean(sides[np.argsort(-upper_lip)[:10]] == side_label(2, True)) >= 0.8


def _flat_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of unit squares in the z = 0 plane, two triangles a square: vertices and triangles."""
    x, y = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1)
    i = np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]
    quads = np.stack([i, i + 1, i + n + 1, i + n], axis=-1).reshape(-1, 4)
    return vertices, np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def test_inside_out_triangles_are_smoothed_away():
    """A grid whose middle vertex is pushed past its neighbours flips triangles; the repair leaves none flipped and
    leaves a harmless shape alone."""
    n = 7
    vertices, triangles = _flat_grid(n)
    deltas = np.zeros((52, n * n, 3), dtype=np.float32)
    deltas[0, 3 * n + 3, 0] = 2.5  # crosses the next column: inside out
    deltas[1, :, 2] = np.sin(vertices[:, 0])  # bends out of plane, flips nothing
    fixed, repaired = _unflip(vertices, triangles, deltas)
    assert flipped_share(vertices, triangles, deltas[0]) > 0
    assert flipped_share(vertices, triangles, fixed[0]) == 0
    np.testing.assert_array_equal(fixed[1], deltas[1])
    assert repaired == 1


def test_cotangent_weights_survive_a_degenerate_triangle():
    """On a grid of unit squares cut along one diagonal, each inner axis edge faces two 45-degree angles (weight 1)
    and each diagonal two right angles (weight 0, kept at the floor). A zero-area triangle added on the border (three
    vertices in a row) must not make every weight alike, as an unbounded cotangent would by raising the floor with
    the mean."""
    n = 5
    vertices, triangles = _flat_grid(n)
    sliver = np.concatenate([triangles, [[0, 1, 2]]])
    for tris in (triangles, sliver):
        edges, _ = mesh_edges(tris)
        weights = _cotangent_weights(vertices, tris, edges)
        rows = vertices[edges]
        axis = (np.abs(rows[:, 0] - rows[:, 1]).sum(axis=1) == 1) & np.all(rows[:, :, :2].min(axis=1) > 0, axis=1) \
            & np.all(rows[:, :, :2].max(axis=1) < n - 1, axis=1)
        diagonal = np.abs(rows[:, 0, :2] - rows[:, 1, :2]).min(axis=1) == 1
        assert np.all(np.isfinite(weights))
        np.testing.assert_allclose(weights[axis], 1.0, atol=1e-6)
        assert weights[diagonal].max() < 0.1


def test_the_repair_does_not_glue_the_lips_across_an_opening():
    """A sheet cut by an opening (rows 0-2 the lower lip, 3-6 the upper, `openings` labels): jawOpen drops the lower
    lip and a stray vertex of it folds its triangles. Filled across the opening the upper lip would be dragged down
    with it; with the sides the upper lip stays still and the fold is gone."""
    n = 7
    vertices, triangles = _flat_grid(n)
    sides = np.where(vertices[:, 1] >= 3, side_label(2, True), side_label(2, False))
    lower = vertices[:, 1] <= 2
    deltas = np.zeros((52, n * n, 3), dtype=np.float32)
    jaw = CHANNEL_INDEX["jawOpen"]
    deltas[jaw, lower, 1] = -3.0
    deltas[jaw, 2 * n + 3, 0] = 2.5  # past its neighbour on the lip's edge: inside out
    assert flipped_share(vertices, triangles, deltas[jaw]) > 0
    apart, _ = _unflip(vertices, triangles, deltas, sides=sides)
    glued, _ = _unflip(vertices, triangles, deltas)
    assert flipped_share(vertices, triangles, apart[jaw]) == 0
    assert np.abs(apart[jaw, ~lower]).max() == 0.0
    assert np.abs(glued[jaw, ~lower]).max() > 0.5


def _sphere(count=40):
    u, v = np.meshgrid(np.linspace(0.1, np.pi - 0.1, count), np.linspace(0, 2 * np.pi, count, endpoint=False))
    points = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1).reshape(-1, 3) * 0.1
    i, j = np.arange(count)[:, None], np.arange(count - 1)[None, :]
    a, b = i * count + j, ((i + 1) % count) * count + j
    quads = np.stack([a, b, b + 1, a + 1], -1).reshape(-1, 4)
    return points, np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def test_a_mesh_without_a_face_is_refused_in_one_sentence(cache_root):
    points, triangles = _sphere()
    with pytest.raises(InputError, match=re.escape("does not look like a head")) as info:
        transfer_default_head_shapes(points, triangles)
    text = str(info.value)
    assert "I2FET nose_tip" in text and text.endswith(".") and text.count(". ") == 0


def _shifted(points, triangles, offset):
    return np.vstack([points, points + offset]), np.vstack([triangles, triangles + points.shape[0]])


@pytest.mark.parametrize("case, message", [
    ("heavy", "decimate it"), ("non-manifold", "non-manifold"), ("two heads", "separate parts of head size"),
    ("too many triangles", "triangles; shape transfer takes up to"),
])
def test_meshes_unfit_for_transfer_are_refused_before_any_work(case, message, monkeypatch):
    """Refused in one sentence before the default head is even loaded (so nothing is registered or rendered)."""
    import model_runtime.rigs.shape_transfer as shape_transfer

    points, triangles = _sphere()
    if case == "heavy":
        points = np.vstack([points, np.random.default_rng(0).random((300_001 - points.shape[0], 3))])
    elif case == "too many triangles":  # few vertices, over a million faces: mesh_edges alone would take long
        triangles = np.tile(triangles, (1_200_001 // triangles.shape[0] + 1, 1))
    elif case == "non-manifold":
        # Three extra triangles on each of 20 edges: each such edge is shared by four faces.
        apex = points.mean(0) + np.array([0.0, 0.0, 0.3])
        extra = np.array([[a, b, points.shape[0]] for a, b in triangles[:20, :2] for _ in range(3)])
        points, triangles = np.vstack([points, apex]), np.vstack([triangles, extra])
    else:
        points, triangles = _shifted(points, triangles, np.array([0.5, 0.0, 0.0]))
    monkeypatch.setattr(shape_transfer, "load_default_head", lambda: pytest.fail("the default head was loaded"))
    with pytest.raises(InputError, match=re.escape(message)) as info:
        transfer_default_head_shapes(points, triangles)
    text = str(info.value)
    assert text.endswith(".") and text.count(". ") == 0


def test_small_parts_beside_the_head_pass_the_mesh_check():
    """Eyeballs and teeth are parts too: parts well under the head's size are accepted."""
    from model_runtime.rigs.shape_transfer import check_head_mesh

    points, triangles = _sphere()
    both = _shifted(points, triangles * 1, np.zeros(3))
    small = (np.vstack([points, 0.2 * points]), both[1])
    label = check_head_mesh(*small)
    assert np.unique(label).size == 2


def test_without_mediapipe_the_plain_transfer_runs_with_a_note(monkeypatch, cache_root):
    """No face detector installed (the photo runtime is optional in Blender): the plain registration runs on the
    whole mesh instead of failing, and the result says why no landmarks were used."""
    import model_runtime.rigs.shape_transfer as shape_transfer
    from model_runtime.errors import WeightsError

    def no_detector(*args, **kwargs):
        raise WeightsError("Starting from a photo needs MediaPipe's face mesh; it cannot be imported.")

    calls = []

    def plain(*args, **kwargs):
        calls.append(kwargs)
        return shape_transfer.Transfer(deltas=np.zeros((52, 1, 3), np.float32), confidence=np.ones(1),
                                       distance=np.zeros(1), source_triangle=np.zeros(1, np.int64),
                                       bary=np.ones((1, 3)) / 3, registration=None, notes=["fitted"])

    monkeypatch.setattr(shape_transfer, "_face_landmarks", no_detector)
    monkeypatch.setattr(shape_transfer, "transfer_shapes", plain)
    points, triangles = _sphere()
    result = transfer_default_head_shapes(points, triangles)
    assert len(calls) == 1 and "groups" not in calls[0] and calls[0]["match_mask"] is not None
    assert "MediaPipe's face mesh is not installed" in result.notes[0] and result.notes[1] == "fitted"


def test_the_face_mesh_detector_keeps_mediapipes_log_lines_off_the_terminal():
    """`i2fet shapes` finds a head's landmarks with MediaPipe's face mesh, whose graph loads its models on its own
    threads after it is built: their log lines ("Feedback manager requires ...") must not reach the user's stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    probe = ("import time, numpy as np\nfrom PIL import Image\nfrom model_runtime.photo.landmarks import get_detector\n"
             "detector = get_detector()\ntime.sleep(1.0)\n"
             "face = np.asarray(Image.open(r'%s').convert('RGB'))\nprint(detector.detect(face).faces_found)\n"
             "time.sleep(0.5)\n" % (root / "tests" / "data" / "photos" / "grin_obama.jpg"))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr
    assert done.stderr == "", done.stderr
