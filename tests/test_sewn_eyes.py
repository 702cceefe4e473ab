"""Lid margins of eyes sewn shut, found on the mesh (model_runtime.rigs.sewn_eyes), on MediaPipe's canonical face mesh:
its vertex i is MediaPipe's landmark i, so its true lid margins are MediaPipe's published eye contours
(tests/transfer_heads.canonical_lid_groups), not anything the code under test produced. Where the evidence is weak
(an open eye, a seam away from the detected corners, a seam standing out instead of recessed) nothing is found."""

import numpy as np
import pytest

from transfer_heads import _MP_CONTOURS, canonical_lid_groups, load_canonical
from model_runtime.heads.head import load_default_head
from model_runtime.rigs.face_detection import FaceLandmarks
from model_runtime.rigs.openings import OPENINGS
from model_runtime.rigs.sewn_eyes import sewn_lid_margins
from model_runtime.rigs.shape_transfer import _face_landmarks


@pytest.fixture(scope="module")
def detected(cache_root):
    """The canonical mesh, the face landmarks the detector found on it and the mesh in the default head's frame."""
    head = load_default_head()
    skin = head.vertex_parts == 0
    mesh = load_canonical()
    found = _face_landmarks(head, skin, head.triangles().astype(np.int64), mesh.vertices, mesh.triangles,
                            mesh.triangles)
    assert found is not None
    _, marks, in_head, _, lids_from = found
    return mesh, marks, in_head, lids_from


def _as_found(margin: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The true margin run in the found one's direction (both run corner to corner)."""
    return truth if truth[0] == margin[0] else truth[::-1]


def test_the_seams_are_the_canonical_meshs_own_lid_margins(detected):
    mesh, marks, in_head, lids_from = detected
    margins = sewn_lid_margins(in_head, mesh.triangles, marks)
    assert margins is not None
    truth = canonical_lid_groups()
    assert sorted(margins) == sorted(truth)
    for name, margin in margins.items():
        np.testing.assert_array_equal(margin, _as_found(margin, truth[name]), err_msg=name)
    assert lids_from == "mesh"  # the transfer takes them in place of the user's lid groups


def test_an_open_eye_gives_no_margins(detected):
    """The right eye's sewing strip taken out (a hole where the eye is): no seam, so no margins for either eye."""
    mesh, marks, in_head, _ = detected
    strip = np.isin(mesh.triangles, _MP_CONTOURS[0]).all(axis=1)
    assert strip.sum() == len(_MP_CONTOURS[0]) - 2
    assert sewn_lid_margins(in_head, mesh.triangles[~strip], marks) is None


def test_a_seam_away_from_the_detected_corners_gives_no_margins(detected):
    """The detector's eye corners both moved half an eye's width toward the nose: the seam no longer ends at them."""
    mesh, marks, in_head, _ = detected
    points = marks.points.copy()
    for eye in ("eye_left", "eye_right"):
        corners = OPENINGS[eye][2]
        x = np.array([marks.point(c)[0] for c in corners])
        for corner in corners:
            points[marks.ids == corner, 0] -= 0.5 * np.sign(x.mean()) * np.ptp(x)
    assert sewn_lid_margins(in_head, mesh.triangles, FaceLandmarks(ids=marks.ids, points=points)) is None


def test_a_seam_standing_out_of_the_face_gives_no_margins(detected):
    """The mesh seen from behind (depth mirrored, landmarks with it): the lids now fall away behind the strips instead
    of rising in front of them, which is no sewn eye."""
    mesh, marks, in_head, _ = detected
    mirror = np.array([1.0, -1.0, 1.0])
    flipped = FaceLandmarks(ids=marks.ids, points=marks.points * mirror)
    assert sewn_lid_margins(in_head * mirror, mesh.triangles[:, ::-1], flipped) is None
