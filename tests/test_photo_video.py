"""`i2fet track VIDEO`: a short clip made from the real photos (a grin, frames without a face, a speaking face) read
frame by frame; the One Euro filter; bad videos refused in one sentence with nothing written."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from model_runtime.animation import Animation
from model_runtime.cli import main
from model_runtime.errors import InputError
from model_runtime.expression_space import CHANNEL_INDEX
from model_runtime.photo.video import fill_missing, one_euro, track_video
from model_runtime.progress import Cancelled

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "tests" / "data" / "photos"
SIZE = 320
FPS = 10


def frame(name):
    image = Image.open(PHOTOS / name).convert("RGB")
    image.thumbnail((SIZE, SIZE))
    canvas = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    canvas.paste(image, ((SIZE - image.width) // 2, (SIZE - image.height) // 2))
    return np.asarray(canvas)


def write_clip(path, frames, fps=FPS):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (SIZE, SIZE))
    for rgb in frames:
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
    writer.release()
    return path


GREY = np.full((SIZE, SIZE, 3), 128, np.uint8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    frames = [frame("grin_obama.jpg")] * 6 + [GREY] * 3 + [frame("speaking_obama.jpg")] * 6
    return write_clip(folder / "clip.avi", frames)


@pytest.fixture(scope="module")
def tracked(clip):
    seen = []
    result = track_video(clip, progress=lambda done, total: seen.append((done, total)))
    return result, seen


def test_every_frame_is_read_at_the_videos_rate(tracked):
    result, seen = tracked
    anim = result.animation
    assert anim.fps == FPS and anim.num_frames == 15 and result.size == (SIZE, SIZE)
    assert seen[-1] == (15, 15) and [d for d, _ in seen] == list(range(1, 16))
    smile = anim.frames[:, [CHANNEL_INDEX["mouthSmileLeft"], CHANNEL_INDEX["mouthSmileRight"]]].mean(axis=1)
    jaw = anim.frames[:, CHANNEL_INDEX["jawOpen"]]
    assert smile[2:6].min() > 0.4 and smile[13:].max() < smile[2:6].min()  # the grin, then not
    assert jaw[13:].min() > jaw[:6].max() + 0.1  # the speaking mouth, wider than the grin's, comes at the end


def test_video_frames_go_through_the_photo_cues(tracked):
    """The grin's frames read its brows as relaxed, as its photo does (the landmarker scores its browDown 0.84:
    the cheek raise, photo/brows.py), so video and photo share the cues."""
    result, _ = tracked
    down = result.animation.frames[:6][:, [CHANNEL_INDEX["browDownLeft"], CHANNEL_INDEX["browDownRight"]]]
    assert down.max() < 0.3


def test_frames_without_a_face_are_filled_and_reported(tracked):
    result, _ = tracked
    assert result.missing_frames == [6, 7, 8]
    assert result.warnings == ["No face was found in 3 of 15 frames (frames 6-8); they were filled from the frames "
                               "around them."]
    assert np.all(np.isfinite(result.animation.frames))


def test_cli_track_writes_the_animation(clip, tmp_path, capsys):
    out = tmp_path / "anim.npz"
    assert main(["track", str(clip), "-o", str(out)]) == 0
    stdout, err = capsys.readouterr()
    assert "read 15/15 frames" in stdout and "Wrote" in stdout and "3 of 15 frames" in err
    anim = Animation.load(out)
    assert anim.num_frames == 15 and anim.fps == FPS


def test_cancel_from_progress_stops_the_reading(clip):
    seen = []

    def stop_after_two(done, total):
        seen.append(done)
        if done == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        track_video(clip, progress=stop_after_two)
    assert seen == [1, 2]


def test_one_euro_smooths_jitter_and_follows_a_step():
    rng = np.random.default_rng(0)
    still = 0.5 + rng.normal(0, 0.05, (120, 1))
    assert one_euro(still, 30).std() < still.std() / 2
    step = np.r_[np.zeros(30), np.ones(30)][:, None]
    out = one_euro(step, 30)
    assert out[30 + 4, 0] > 0.9 and out[29, 0] == 0.0  # within 4 frames of a full-scale change, no overshoot before
    np.testing.assert_allclose(fill_missing(np.array([[np.nan], [1.0], [np.nan], [3.0], [np.nan]])),
                               [[1.0], [1.0], [2.0], [3.0], [3.0]])


def test_blinks_stay_sharp(tmp_path, monkeypatch):
    """A blink two frames long survives whole; the same pulse on a smoothed channel is spread out."""
    from model_runtime.photo import video
    from model_runtime.photo.blendshapes import FaceReading

    pulse = np.zeros(20)
    pulse[10:12] = 1.0

    class Fake:
        def __init__(self, video=False):
            self.t = 0

        def read(self, rgb, timestamp_ms=None):
            scores = np.zeros(52)
            scores[CHANNEL_INDEX["eyeBlinkLeft"]] = scores[CHANNEL_INDEX["jawOpen"]] = pulse[self.t]
            self.t += 1
            return FaceReading(scores=scores, rotation_deg=(0.0, 0.0, 0.0), landmarks=np.zeros((478, 3)),
                               faces_found=1)

        def close(self):
            pass

    monkeypatch.setattr("model_runtime.photo.blendshapes.FaceLandmarker", Fake)
    result = video.track_video(write_clip(tmp_path / "b.avi", [GREY] * 20, fps=30))
    blink = result.animation.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]]
    jaw = result.animation.frames[:, CHANNEL_INDEX["jawOpen"]]
    assert blink[10] > 0.9 and blink[12] < 0.05  # sharp
    assert jaw[10] < blink[10] and jaw[12] > 0.05  # smoothed


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    folder = tmp_path_factory.mktemp("badvideo")
    text = folder / "notes.mp4"
    text.write_text("not a video")
    return {
        "no name": ("", "No video was given"),
        "missing": (folder / "none.mp4", "does not exist"),
        "folder": (folder, "is a folder"),
        "not a video": (text, "not a video file"),
        "no face": (write_clip(folder / "grey.avi", [GREY] * 5), "No face was found in any of the 5 frames"),
    }


@pytest.mark.parametrize("case", ["missing", "folder", "not a video", "no face", "no name"])
def test_bad_videos_are_one_sentence_and_nothing_is_written(bad, tmp_path, capsys, case):
    path, fragment = bad[case]
    with pytest.raises(InputError) as info:
        track_video(path)
    assert fragment in str(info.value) and str(info.value).endswith(".") and "\n" not in str(info.value)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["track", str(path), "-o", str(out / "a.json")]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("i2fet: error: ") and fragment in err and err.count("\n") == 1
    assert list(out.iterdir()) == []


def test_a_video_given_as_something_other_than_a_path_is_one_sentence():
    with pytest.raises(InputError, match="must be given as a file path"):
        track_video(5)


def test_a_pipe_as_the_video_is_refused_without_blocking(tmp_path):
    pipe = tmp_path / "pipe.mp4"
    os.mkfifo(pipe)
    # FFmpeg opening a pipe with no writer waits forever, so the command runs in a child that a timeout can end
    done = subprocess.run([sys.executable, "-m", "model_runtime", "track", str(pipe), "-o", str(tmp_path / "a.json")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 2 and "is not a regular file" in done.stderr, done.stderr
    assert not (tmp_path / "a.json").exists()


def test_a_file_ffmpeg_cannot_parse_gets_only_the_sentence(bad, tmp_path):
    """FFmpeg's own log lines ("moov atom not found") stay off the terminal: the user reads one sentence."""
    path, _ = bad["not a video"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    done = subprocess.run([sys.executable, "-m", "model_runtime", "track", str(path), "-o", str(tmp_path / "a.json")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("i2fet: error: The video ") and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "a.json").exists()


def test_bad_output_extension_is_refused_before_reading(clip, tmp_path, capsys):
    assert main(["track", str(clip), "-o", str(tmp_path / "a.mp4")]) == 2
    assert "Unknown animation file extension" in capsys.readouterr().err


@pytest.mark.parametrize("kind, suffix", [("JPEG", ".mp4"), ("PNG", ".avi"), ("BMP", ".mov"), ("TIFF", ".mkv"),
                                          ("GIF", ".mp4"), ("WebP", ".webm")])
def test_a_photo_renamed_as_a_video_is_refused_not_tracked_as_one_frame(kind, suffix, tmp_path):
    """FFmpeg decodes a renamed photo as a one-frame video; the user meant a video, so they are told it is a photo."""
    face = Image.open(ROOT / "tests" / "data" / "photos" / "carphone_f000.png").convert("RGB")
    path = tmp_path / f"clip{suffix}"
    face.save(path, format=kind.upper())
    with pytest.raises(InputError, match=f"is a still {kind} image, not a video"):
        track_video(path)
    out = tmp_path / "a.json"
    assert main(["track", str(path), "-o", str(out)]) == 2 and not out.exists()


@pytest.mark.parametrize("suffix, kind", [(".mjpeg", "MJPEG"), (".png", "PNG")])
def test_a_clip_of_many_image_frames_is_still_a_video(suffix, kind, tmp_path):
    """A raw Motion-JPEG stream and an animated PNG start with a JPEG's or PNG's bytes but hold many frames."""
    face = Image.open(ROOT / "tests" / "data" / "photos" / "carphone_f000.png").convert("RGB")
    frames = [face.rotate(angle) for angle in range(0, 10, 1)]
    path = tmp_path / f"clip{suffix}"
    if kind == "MJPEG":
        import io

        with open(path, "wb") as handle:
            for frame in frames:
                buffer = io.BytesIO()
                frame.save(buffer, format="JPEG")
                handle.write(buffer.getvalue())
    else:
        frames[0].save(path, format="PNG", save_all=True, append_images=frames[1:], duration=40, loop=0)
    result = track_video(path)
    assert result.animation.frames.shape[0] == len(frames)
