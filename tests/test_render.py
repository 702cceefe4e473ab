import time

import numpy as np
import pytest
from PIL import Image

from model_runtime.heads import render as render_module
from model_runtime.errors import InputError, OutputError
from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.heads.head import load_default_head
from model_runtime.heads.render import render_expressions, write_contact_sheet

SIZE = 128


@pytest.fixture(scope="module")
def head(cache_root):
    return load_default_head()


def weights(**channels):
    w = np.zeros(NUM_CHANNELS, dtype=np.float32)
    for name, value in channels.items():
        w[CHANNEL_INDEX[name]] = value
    return w


@pytest.fixture(scope="module")
def frames(head):
    batch = np.stack([
        weights(),
        weights(jawOpen=1.0),
        weights(mouthSmileLeft=1.0, mouthSmileRight=1.0),
        weights(eyeBlinkLeft=1.0),
        weights(browInnerUp=1.0),
    ])
    return render_expressions(batch, size=SIZE, head=head)


def box(image, top, bottom, left, right):
    """A region given in fractions of the image (rows top..bottom, columns left..right)."""
    n = image.shape[0]
    return image[int(top * n):int(bottom * n), int(left * n):int(right * n)].astype(np.int32)


def luminance(region):
    return region @ np.array([0.299, 0.587, 0.114])


# Framing: eyes a third from the top, the mouth about 0.7 down; the character's left eye is on the image's right.
MOUTH = (0.60, 0.82, 0.38, 0.62)
EYE_LEFT = (0.26, 0.41, 0.57, 0.79)
EYE_RIGHT = (0.26, 0.41, 0.21, 0.43)
BROWS = (0.12, 0.30, 0.20, 0.80)


def test_shape_and_dtype(head, frames):
    assert frames.shape == (5, SIZE, SIZE, 3) and frames.dtype == np.uint8
    single = render_expressions(weights(), size=64, head=head)
    assert single.shape == (64, 64, 3) and single.dtype == np.uint8
    np.testing.assert_array_equal(render_expressions(np.zeros((1, NUM_CHANNELS)), size=SIZE, head=head)[0], frames[0])


def test_rejects_bad_input(head):
    with pytest.raises(InputError):
        render_expressions(np.zeros((2, 51)), head=head)
    with pytest.raises(InputError):
        render_expressions(np.zeros(NUM_CHANNELS), size=0, head=head)


def test_face_is_framed_and_reads_as_a_face(frames):
    neutral = frames[0]
    background = np.all(neutral == neutral[0, 0], axis=-1)
    assert background[:, : SIZE // 20].mean() > 0.5  # the margins are mostly background
    assert not background[SIZE // 4: 3 * SIZE // 4, SIZE // 3: 2 * SIZE // 3].any()  # the face fills the centre
    brows = luminance(box(neutral, *BROWS))
    skin = luminance(box(neutral, 0.45, 0.55, 0.40, 0.60))
    assert (brows < 0.6 * np.median(skin)).sum() > 20  # dark brows
    for eye in (EYE_LEFT, EYE_RIGHT):
        lum = luminance(box(neutral, *eye))
        assert (lum < 60).sum() > 3 and (lum > np.median(skin) + 10).sum() > 3  # dark iris, light sclera
    mouth = box(neutral, *MOUTH)
    redness = mouth[..., 0] - mouth[..., 1]
    assert (redness > 1.4 * np.median(box(neutral, 0.45, 0.55, 0.40, 0.60)[..., 0] - box(neutral, 0.45, 0.55, 0.40, 0.60)[..., 1])).sum() > 30


def test_expressions_change_the_right_regions(frames):
    neutral, jaw, smile, blink, brow = frames
    changed = lambda img, region: np.abs(box(img, *region) - box(neutral, *region)).sum(axis=-1) > 30
    assert changed(jaw, MOUTH).sum() > 100
    assert changed(smile, MOUTH).sum() > 30
    assert changed(brow, BROWS).sum() > 20
    # The open mouth is a dark cavity.
    dark = lambda img: (luminance(box(img, *MOUTH)) < 70).sum()
    assert dark(jaw) > dark(neutral) + 80


def test_blink_closes_the_characters_left_eye_only(frames):
    neutral, blink = frames[0], frames[3]
    left_change = (np.abs(box(blink, *EYE_LEFT) - box(neutral, *EYE_LEFT)).sum(axis=-1) > 30).sum()
    right_change = (np.abs(box(blink, *EYE_RIGHT) - box(neutral, *EYE_RIGHT)).sum(axis=-1) > 30).sum()
    assert left_change > 30 and right_change < left_change / 5
    # The iris and sclera disappear under the lid.
    iris = lambda img: (luminance(box(img, *EYE_LEFT)) < 60).sum()
    assert iris(blink) < iris(neutral) / 2


def test_rasteriser_depth_and_culling():
    # Two overlapping squares (two triangles each) at different depths, one facing away.
    screen = np.array([
        [2, 2, 5.0], [12, 2, 5.0], [12, 12, 5.0], [2, 12, 5.0],  # far square, front-facing
        [6, 6, 1.0], [16, 6, 1.0], [16, 16, 1.0], [6, 16, 1.0],  # near square, front-facing
    ], dtype=np.float64)
    front = np.array([[0, 2, 1], [0, 3, 2], [4, 6, 5], [4, 7, 6]])
    pix, depth, tri, w1, w2 = render_module.rasterize(screen, front, 20, 20, cull=True)
    assert pix.size == 10 * 10 + 10 * 10 - 6 * 6  # both squares, overlap counted once
    near = np.isin(tri, [2, 3])
    assert near.sum() == 100 and np.all(depth[near] == 1.0)
    assert np.all((w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1 + 1e-6))
    pix_back, *_ = render_module.rasterize(screen, front[:, ::-1], 20, 20, cull=True)
    assert pix_back.size == 0  # reversed winding faces away


def test_fallback_regions_without_the_uv_masks(head, monkeypatch):
    monkeypatch.setattr(render_module, "_hm08_uv_masks", lambda: None)
    monkeypatch.setattr(render_module, "_SETUPS", render_module.weakref.WeakKeyDictionary())
    neutral, jaw = render_expressions(np.stack([weights(), weights(jawOpen=1.0)]), size=SIZE, head=head)
    dark = lambda img: (luminance(box(img, *MOUTH)) < 70).sum()
    assert dark(jaw) > dark(neutral) + 80


def test_render_speed(head):
    batch = np.random.default_rng(0).uniform(0, 0.5, (8, NUM_CHANNELS))
    render_expressions(batch[:1], size=192, head=head)
    start = time.perf_counter()
    render_expressions(batch, size=192, head=head)
    assert time.perf_counter() - start < 5.0  # about 0.35 s on two cores; generous for loaded machines


def test_contact_sheet_writes_a_png(head, tmp_path):
    path = tmp_path / "sheet.png"
    batch = np.stack([weights(), weights(jawOpen=1.0), weights(eyeBlinkLeft=1.0)])
    write_contact_sheet(path, batch, ["neutral", "jaw open", "blink left"], title="Three faces", columns=2, size=96)
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and image.mode == "RGB"
        w, h = image.size
    assert 2 * 96 <= w < 2 * 96 + 40
    assert 2 * 96 + 20 < h < 2 * 96 + 150  # two rows, captions and a title
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]


def test_contact_sheet_rejects_bad_input(tmp_path):
    path = tmp_path / "sheet.png"
    with pytest.raises(InputError):
        write_contact_sheet(path, np.zeros((2, NUM_CHANNELS)), ["only one"])
    with pytest.raises(InputError):
        write_contact_sheet(path, np.zeros((0, NUM_CHANNELS)), [])
    assert not path.exists()


def test_contact_sheet_leaves_nothing_behind_on_failure(head, tmp_path):
    with pytest.raises(OutputError):
        write_contact_sheet(tmp_path / "missing" / "sheet.png", weights()[None], ["x"], size=32)
    target = tmp_path / "taken"
    target.mkdir()  # a folder where the file should go: the final move fails
    with pytest.raises(OutputError):
        write_contact_sheet(target, weights()[None], ["x"], size=32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert list(target.iterdir()) == []


def test_view_rotation_turns_the_head_and_defaults_to_the_front_view(head):
    from model_runtime.heads.render import project_points

    nose = head.vertices[int(np.argmin(head.vertices[:, 1]))][None]  # the tip of the nose
    front = project_points(nose, SIZE, head)[0]
    np.testing.assert_allclose(project_points(nose, SIZE, head, (0.0, 0.0, 0.0))[0], front, atol=1e-9)
    assert project_points(nose, SIZE, head, (20.0, 0.0, 0.0))[0, 0] > front[0] + 3  # yaw: toward the image's right
    assert project_points(nose, SIZE, head, (0.0, 15.0, 0.0))[0, 1] < front[1] - 1  # pitch: chin (and nose) up
    turned = render_expressions(weights(), size=64, head=head, rotation_deg=(20.0, 0.0, 0.0))
    assert turned.shape == (64, 64, 3) and not np.array_equal(turned, render_expressions(weights(), 64, head))
    for bad in [(1.0, 2.0), ("a", 0, 0), (0.0, 0.0, float("nan"))]:
        with pytest.raises(InputError):
            render_expressions(weights(), size=64, head=head, rotation_deg=bad)
