"""Videos through OpenCV: frames (grey or luminance), container times, no calibration."""

from __future__ import annotations

import errno
import os
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import vpimage.io
from vpimage.errors import InvalidStudyError
from vpimage.io._timing import FALLBACK_FPS
from vpimage.io._video import _GREY_TOLERANCE, _timing


def ramp_frames(n=8, rows=48, columns=64):
    """Frames [n, rows, columns] uint8: a horizontal ramp plus 10 grey levels per frame."""
    base = np.tile(np.linspace(20, 200, columns).astype(np.uint8), (rows, 1))
    return np.stack([base + 5 * i for i in range(n)])


def write_video(path, frames, fps, fourcc, colour=False):
    """Frames [n, rows, columns] uint8 written grey, or tinted (B, G/2, R) with ``colour``;
    frames [n, rows, columns, 3] (BGR) written as they are."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, frames.shape[2:0:-1],
                             isColor=colour or frames.ndim == 4)
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


def test_an_unreadable_video_fails_with_the_systems_reason_before_opencv_sees_it(tmp_path, monkeypatch):
    # Tests run as root, whom chmod 000 does not stop: the system's refusal is simulated.
    path = write_video(tmp_path / "run.avi", ramp_frames(), 10.0, "MJPG")
    path_open, captures = Path.open, []

    def refused(self, *args, **kwargs):
        if self == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return path_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refused)
    monkeypatch.setattr(cv2, "VideoCapture", lambda *args: captures.append(args))
    with pytest.raises(InvalidStudyError, match="cannot be read as a video: .*Permission denied") as info:
        vpimage.io.open(path)
    assert info.value.path == str(path) and captures == []


def with_frame_rate(path, rate, scale):
    """Make an OpenCV-written AVI declare ``rate / scale`` fps (its stream header's dwRate and
    dwScale, its main header's microseconds per frame); returns ``path``."""
    data = bytearray(path.read_bytes())
    strh, avih = data.find(b"strh"), data.find(b"avih")
    assert struct.unpack_from("<II", data, strh + 28) == (1, 25)  # as written: 25 fps
    struct.pack_into("<II", data, strh + 28, scale, rate)
    struct.pack_into("<I", data, avih + 8, round(1e6 * scale / rate))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.filterwarnings("ignore:.*no calibration")
@pytest.mark.parametrize("rate, scale", [(100_000, 1), (1, 1000)])  # 100,000 and 0.001 fps
def test_an_implausible_frame_rate_falls_back_to_the_assumed_rate(tmp_path, rate, scale):
    path = with_frame_rate(write_video(tmp_path / "run.avi", ramp_frames(), 25.0, "MJPG"), rate, scale)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) == pytest.approx(rate / scale)
    with pytest.warns(UserWarning) as caught:
        study = vpimage.io.open(path)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith(f"{path}: container timestamps have a frame interval of {scale / rate:g} s, not plausible")
               and m.endswith(f"the container's frame rate {rate / scale:g} fps is not plausible either; "
                              f"frames taken as regular at assumed {FALLBACK_FPS:g} fps") for m in messages), messages
    np.testing.assert_allclose(study.timing.time_s, np.arange(8) / FALLBACK_FPS)
    assert study.timing.fps == FALLBACK_FPS and study.timing.source.startswith(f"assumed {FALLBACK_FPS:g} fps (")


@pytest.mark.filterwarnings("ignore:.*no calibration")
@pytest.mark.parametrize("rate, scale", [(1000, 1), (1, 60)])  # the ends of the plausible range
def test_a_frame_rate_at_the_ends_of_the_plausible_range_is_kept(tmp_path, rate, scale):
    path = with_frame_rate(write_video(tmp_path / "run.avi", ramp_frames(), 25.0, "MJPG"), rate, scale)
    study = vpimage.io.open(path)
    np.testing.assert_allclose(study.timing.time_s, np.arange(8) * scale / rate, rtol=1e-9)
    assert study.timing.source == "container timestamps"


def test_a_long_pause_between_frames_is_kept_and_an_unused_rate_says_nothing(tmp_path, recwarn):
    # A 70 s hold between two runs of a video that stores changed frames only: the whole
    # timeline had been replaced by regular frames. And a declared rate that the good
    # timestamps make unneeded is not warned about.
    times_ms = [0.0, 100.0, 200.0, 300.0, 70300.0, 70400.0, 70500.0]
    for declared in (10.0, 1e6):
        timing = _timing(times_ms, declared, tmp_path / "run.mp4")
        np.testing.assert_allclose(timing.time_s, np.array(times_ms) / 1000.0)
        assert timing.source == "container timestamps"
    assert not recwarn.list


def test_implausible_timestamps_fall_back_to_a_plausible_declared_rate(tmp_path):
    with pytest.warns(UserWarning, match=r"frame interval of 1e-05 s, not plausible .* at container frame rate 25 fps"):
        timing = _timing([0.0, 0.01, 0.02], 25.0, tmp_path / "run.mp4")  # ms: 100,000 fps
    np.testing.assert_allclose(timing.time_s, np.arange(3) / 25.0)
    assert timing.fps == 25.0 and timing.source.startswith("container frame rate 25 fps (")


@pytest.mark.parametrize("fourcc, suffix", [("mp4v", ".mp4"), ("MJPG", ".avi")])
@pytest.mark.parametrize("red", [False, True])
def test_grey_frames_through_the_colour_path_stay_grey_and_a_red_square_is_colour(tmp_path, fourcc, suffix, red):
    # OpenCV's colour path subsamples chroma: grey frames come back with B, G and R a few
    # levels apart (at most 3 with mp4v, 2 with MJPG), which is not colour.
    rng = np.random.default_rng(0)
    grey = np.clip(ramp_frames() + rng.normal(0, 8, (8, 48, 64)), 0, 255).astype(np.uint8)
    bgr = np.stack([cv2.merge([frame] * 3) for frame in grey])
    if red:
        bgr[:, 10:30, 10:30] = (0, 0, 255)
    path = write_video(tmp_path / f"run{suffix}", bgr, 10.0, fourcc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = vpimage.io.open(path)
        frames = np.stack(list(study.iter_frames()))
    assert sum("colour video frames converted to luminance" in str(w.message) for w in caught) == red
    assert study.photometric == ("RGB" if red else "MONOCHROME2")
    capture = cv2.VideoCapture(str(path))
    decoded = np.stack([capture.read()[1] for _ in range(8)])
    np.testing.assert_array_equal(frames, [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in decoded])
    if not red:  # every channel within the tolerance, and the written grey through the codec's loss
        assert np.abs(frames[..., None] - decoded).max() <= _GREY_TOLERANCE
        assert np.abs(frames - grey).mean() < 4.5  # measured: 3.6 (mp4v), 3.2 (MJPG)
