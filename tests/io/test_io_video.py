"""Videos through OpenCV: frames (grey or luminance), container times, no calibration."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import vpimage.io
from vpimage.errors import InvalidStudyError


def ramp_frames(n=8, rows=48, columns=64):
    """Frames [n, rows, columns] uint8: a horizontal ramp plus 10 grey levels per frame."""
    base = np.tile(np.linspace(20, 200, columns).astype(np.uint8), (rows, 1))
    return np.stack([base + 5 * i for i in range(n)])


def write_video(path, frames, fps, fourcc, colour=False):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, frames.shape[2:0:-1], isColor=colour)
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.merge([frame, frame // 2, frame]) if colour else frame)
    writer.release()
    return path


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_lossless_grey_video_reads_exactly_with_container_times(tmp_path):
    frames = ramp_frames()
    study = vpimage.io.open(write_video(tmp_path / "run.avi", frames, 12.5, "FFV1"))
    assert (study.n_frames, study.rows, study.columns) == frames.shape
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), frames.astype(np.float32))
    np.testing.assert_allclose(study.timing.time_s, np.arange(8) / 12.5, atol=1e-6)
    assert study.timing.fps == pytest.approx(12.5) and study.timing.source == "container timestamps"
    np.testing.assert_array_equal(study.frame(5), frames[5])
    np.testing.assert_array_equal(study.frame(2), frames[2])  # backwards: the file is reopened
    assert study.sop_class == "video" and study.transfer_syntax.lower() == "video (ffv1)"


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_lossy_mp4_is_close(tmp_path):
    frames = ramp_frames()
    study = vpimage.io.open(write_video(tmp_path / "run.mp4", frames, 10.0, "mp4v"))
    decoded = np.stack(list(study.iter_frames()))
    assert np.abs(decoded - frames).mean() < 2.0  # MPEG-4 part 2 at OpenCV's default quality
    np.testing.assert_allclose(study.timing.time_s, np.arange(8) / 10.0, atol=1e-6)


def test_colour_video_becomes_luminance_with_warnings(tmp_path):
    frames = ramp_frames(n=3)
    path = write_video(tmp_path / "run.avi", frames, 5.0, "FFV1", colour=True)
    with pytest.warns(UserWarning) as caught:
        study = vpimage.io.open(path)
    messages = " ".join(str(w.message) for w in caught)
    assert "converted to luminance" in messages and "no calibration" in messages
    expected = cv2.cvtColor(cv2.merge([frames[1], frames[1] // 2, frames[1]]), cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(study.frame(1), expected)
    assert study.photometric == "RGB" and study.geometry.mm_per_px is None


def test_not_a_video(tmp_path):
    path = tmp_path / "run.mp4"
    path.write_bytes(b"\0" * 1000)
    with pytest.raises(InvalidStudyError) as info:
        vpimage.io.open(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize("fourcc, suffix", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_a_video_whose_frames_are_lost_midway_is_refused(tmp_path, fourcc, suffix):
    # 500 bytes zeroed half-way: the container still declares 20 frames, the decoder gives
    # up after fewer (6 and 9 with OpenCV 5.0); the rest must not be taken for a
    # shorter run.
    rng = np.random.default_rng(0)
    frames = (rng.random((20, 64, 64)) * 255).astype(np.uint8)
    path = write_video(tmp_path / f"run{suffix}", frames, 10.0, fourcc)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 500] = bytes(500)
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidStudyError, match=r"the container declares 20 frames; only \d+ can be decoded") as info:
        vpimage.io.open(path)
    assert info.value.path == str(path)
