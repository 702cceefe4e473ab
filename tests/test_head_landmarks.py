"""Named landmarks on the default head sit where their names say."""

import numpy as np

from model_runtime.heads.head import load_default_head
from model_runtime.heads.landmarks import LANDMARK_NAMES, default_head_landmarks


def test_landmarks_are_where_their_names_say(cache_root):
    head = load_default_head()
    marks = default_head_landmarks(head)
    assert tuple(marks) == LANDMARK_NAMES
    p = {name: head.vertices[index] for name, index in marks.items()}
    assert all(head.vertex_parts[i] == 0 for i in marks.values())  # all on the skin
    assert p["nose_tip"][1] == head.vertices[head.vertex_parts == 0, 1].min()  # the most forward skin point
    for part in ("mouth_corner", "upper_lid", "brow_outer"):
        left, right = p[f"{part}_left"], p[f"{part}_right"]
        assert left[0] > 0.01 and right[0] < -0.01  # the character's left is +X
        np.testing.assert_allclose(left * [-1, 1, 1], right, atol=0.002)  # mirror images
    heights = [p[n][2] for n in ("chin", "mouth_corner_left", "nose_tip", "upper_lid_left", "brow_outer_left")]
    assert heights == sorted(heights)  # bottom to top
