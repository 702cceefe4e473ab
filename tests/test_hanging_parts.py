"""Parts that hang on the skin (rigs/hanging_parts.py): which parts are judged to hang, and how they move.

Ground truth by construction (a flat sheet of skin moved by a linear field, so the motion of any skin point is known
exactly, and a card standing on it) and from ICT-FaceKit's own shapes (its lashes as its artists moved them, when its
skin moves as they moved it).
"""

import numpy as np

from transfer_heads import LASH_SHAPES, load_ict, load_ict_eye_parts, part_scores, skin_and_parts
from model_runtime.rigs.hanging_parts import hang_on_skin, hanging_parts


def _grid(nx, ny, corner, along_x, along_y):
    """A grid of quads split into triangles: vertices corner + i·along_x + j·along_y."""
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    points = corner + i.reshape(-1, 1) * along_x + j.reshape(-1, 1) * along_y
    a = (np.arange(nx - 1)[:, None] * ny + np.arange(ny - 1)[None, :]).ravel()
    quads = np.stack([a, a + ny, a + ny + 1, a + 1], axis=1)
    return points.astype(np.float64), np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def _field(points):
    """Two shapes of the sheet, linear in x and y, so barycentric interpolation of them is exact anywhere on it."""
    x, y = points[:, 0], points[:, 1]
    return np.stack([np.stack([0.1 * x, -0.2 * y, 0.05 + 0.0 * x], axis=1),
                     np.stack([0.0 * x, 0.3 * x + 0.1, 0.2 * y], axis=1)])


def _sheet_with_card():
    """Skin: a 2 x 2 sheet in the z = 0 plane. Card: a 1 x 0.5 strip leaning back over the sheet from its root row
    just above y = 0 (like a lash row over a lid), so its tip lies nearer to skin far from its root."""
    skin, skin_tri = _grid(21, 21, np.array([-1.0, -1.0, 0.0]), np.array([0.1, 0, 0]), np.array([0, 0.1, 0]))
    card, card_tri = _grid(11, 6, np.array([-0.5, 0.0, 0.01]), np.array([0.1, 0, 0]), np.array([0, 0.1, 0.06]))
    vertices = np.vstack([skin, card])
    rows = np.arange(skin.shape[0], vertices.shape[0])
    return vertices, skin_tri, np.vstack([skin_tri, card_tri + skin.shape[0]]), rows, card


def test_a_card_rides_the_skin_under_its_root():
    vertices, skin_tri, _, rows, card = _sheet_with_card()
    deltas = np.zeros((2, vertices.shape[0], 3))
    deltas[:, :skin_tri.max() + 1] = _field(vertices[:skin_tri.max() + 1])
    moved = hang_on_skin(vertices, skin_tri, deltas, [rows])
    # Each card vertex's root is the card vertex of its column on the bottom row, above skin point (x, 0, 0).
    root_points = card.copy()
    root_points[:, 1:] = 0.0
    np.testing.assert_allclose(moved[:, rows], _field(root_points), atol=1e-9)
    np.testing.assert_array_equal(moved[:, :rows[0]], deltas[:, :rows[0]])  # the skin keeps its own motion


def _ball(centre, radius, count=16):
    u, v = np.meshgrid(np.linspace(0.15, np.pi - 0.15, count), np.linspace(0, 2 * np.pi, count, endpoint=False))
    points = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1).reshape(-1, 3)
    i, j = np.arange(count)[:, None], np.arange(count - 1)[None, :]
    a, b = i * count + j, ((i + 1) % count) * count + j
    quads = np.stack([a, b, b + 1, a + 1], -1).reshape(-1, 4)
    return centre + radius * points, np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def test_a_thin_part_by_the_skin_hangs_and_an_eyeball_does_not():
    """The source has a ball (an eyeball) under the sheet; the target has a ball of its own where the source's is and
    the card on the sheet. The card hangs on the skin; the ball is of the source ball's kind and does not."""
    vertices, skin_tri, _, card_rows, _ = _sheet_with_card()
    source_ball, source_tri = _ball(np.array([0.0, -0.3, -0.32]), 0.3)
    ball, ball_tri = _ball(np.array([0.0, -0.3, -0.33]), 0.31, count=12)
    points = np.vstack([vertices, ball])
    ball_rows = np.arange(vertices.shape[0], points.shape[0])
    hanging = hanging_parts(points, skin_tri, [ball_rows, card_rows], source_ball, [source_tri])
    assert len(hanging) == 1 and np.array_equal(hanging[0], card_rows)
    assert hanging_parts(points, skin_tri, [ball_rows, card_rows], source_ball, []) == []


def test_ict_lashes_follow_its_own_lids_by_the_rule():
    """Moved by ICT's own skin shapes, the rule puts ICT's lashes (its part layout's `eyelashes`) close to where its
    artists put them in eyeBlink, eyeWide and eyeSquint (left still, they would score error 1 and cosine 0)."""
    head = load_ict(whole=True)
    eye = load_ict_eye_parts(head)
    label, skin, skin_tri = skin_and_parts(head)
    lashes = eye.parts["eyelashes"]
    parts = [lashes[label[lashes] == part] for part in np.unique(label[lashes])]
    truth = np.stack([eye.truth[head.channels.index(c)] for c in LASH_SHAPES])
    skin_only = np.where(skin[None, :, None], truth, 0.0)
    moved = hang_on_skin(head.vertices, skin_tri, skin_only, parts)
    scores = np.array([part_scores(moved[k], truth[k], lashes) for k in range(len(LASH_SHAPES))])
    assert scores[:, 0].mean() <= 0.35 and scores[:, 1].mean() >= 0.9, scores
