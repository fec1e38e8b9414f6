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


@pytest.mark.filterwarnings("ignore:.*no calibration", "ignore:.*container timestamps are not increasing")
@pytest.mark.parametrize("suffix, fourcc", [(".ts", "mp4v"), (".m2ts", "mp4v"), (".mts", "mp4v"), (".webm", "VP80"),
                                            (".ogv", "VP80"), (".flv", "FLV1"), (".3gp", "mp4v"), (".asf", "WMV2"),
                                            (".vob", "MPEG")])
def test_videos_of_the_other_common_suffixes_open(tmp_path, suffix, fourcc):
    # Each written by OpenCV's FFmpeg in the container its suffix names (an MPEG-2 program
    # stream, .vob, as .mpg, without timestamps that increase: timed at its declared rate).
    frames = ramp_frames(n=12)
    study = vpimage.io.open(write_video(tmp_path / f"run{suffix}", frames, 10.0, fourcc))
    assert (study.n_frames, study.rows, study.columns) == frames.shape and study.sop_class == "video"
    assert np.abs(np.stack(list(study.iter_frames())) - frames).mean() < 2.0
    np.testing.assert_allclose(study.timing.time_s, np.arange(12) / 10.0, atol=1e-6)


def test_a_file_neither_dicom_nor_of_a_video_suffix_says_both(tmp_path):
    path = write_video(tmp_path / "run.mp4", ramp_frames(), 10.0, "mp4v").rename(tmp_path / "run.xyz")
    with pytest.raises(InvalidStudyError) as info:
        vpimage.io.open(path)
    assert info.value.reason.startswith("is not a DICOM file: no 'DICM' prefix after the 128-byte preamble (DICOM Part "
                                        "10), nor a video: its suffix '.xyz' is not one read as video (.mp4, .avi, ")


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


def zeroed(path, start, length):
    """``path`` with ``length`` bytes from byte ``start`` set to 0; returns ``path``."""
    data = bytearray(path.read_bytes())
    data[start : start + length] = bytes(length)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("fourcc, suffix", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_a_video_whose_frames_are_lost_midway_is_refused(tmp_path, fourcc, suffix):
    # 500 bytes zeroed half-way: the decoder gives up at frame 6 (9) and goes on after it
    # with OpenCV 5.0; the rest must not be taken for a shorter run.
    rng = np.random.default_rng(0)
    path = write_video(tmp_path / f"run{suffix}", (rng.random((20, 64, 64)) * 255).astype(np.uint8), 10.0, fourcc)
    zeroed(path, path.stat().st_size // 2, 500)
    with pytest.raises(InvalidStudyError, match=r"frame \d+ cannot be decoded, yet later ones can: the video is damaged"
                       ) as info:
        vpimage.io.open(path)
    assert info.value.path == str(path)


def test_an_avi_that_loses_frames_without_a_decoding_error_is_refused(tmp_path):
    # 30 % zeroed from 30 %: FFmpeg skips the chunks it cannot find, without an error (27 of
    # 40 frames with OpenCV 5.0); an AVI's header counts its frames exactly.
    rng = np.random.default_rng(0)
    path = write_video(tmp_path / "run.avi", (rng.random((40, 64, 64)) * 255).astype(np.uint8), 10.0, "MJPG")
    zeroed(path, path.stat().st_size * 3 // 10, path.stat().st_size * 3 // 10)
    with pytest.raises(InvalidStudyError, match=r"the container declares 40 frames; only \d+ can be decoded"):
        vpimage.io.open(path)


@pytest.mark.parametrize("fourcc, suffix", [("MJPG", ".avi"), ("FFV1", ".mkv")])
def test_a_video_whose_end_is_cut_off_is_refused(tmp_path, fourcc, suffix):
    # Its frames up to the cut decode without an error; its container's structure says
    # how long the file is. (OpenCV's MP4 keeps its index at the end: cut, it cannot be opened.)
    path = write_video(tmp_path / f"run{suffix}", ramp_frames(20), 10.0, fourcc)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    with pytest.raises(InvalidStudyError, match=f"the file is cut short: .* the file at byte {path.stat().st_size}$"):
        vpimage.io.open(path)


def mp4_box(data, kind, start=0):
    """Offset of the first box of type ``kind`` (bytes) at or after ``start`` among the boxes
    that follow one another from ``start`` or lie inside them (a path through moov/trak/...)."""
    end = len(data)
    while start + 8 <= end:
        size, found = struct.unpack_from(">I4s", data, start)
        if found == kind:
            return start
        if found in (b"moov", b"trak", b"edts", b"mdia"):  # (containers: look inside)
            inner = mp4_box(data[: start + size], kind, start + 8)
            if inner is not None:
                return inner
        start += size
    return None


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_an_mp4_trimmed_losslessly_shows_the_frames_its_edit_list_keeps(tmp_path):
    # As `ffmpeg -ss 0.5 -i run.mp4 -c copy` keeps it: every sample from the keyframe before
    # the cut, and an edit list that starts at frame 5 (0.5 s: 5120 ticks of the track's
    # 10240 a second) and lasts 1.5 s (1500 of the movie's 1000 a second). The container
    # declares 20 frames, 15 are shown: it had been refused as cut short.
    frames = np.stack([np.full((48, 64), 10 + 12 * k, np.uint8) for k in range(20)])
    path = write_video(tmp_path / "run.mp4", frames, 10.0, "mp4v")
    data = bytearray(path.read_bytes())
    mdhd, elst = mp4_box(data, b"mdhd"), mp4_box(data, b"elst")
    assert struct.unpack_from(">I", data, mdhd + 20)[0] == 10240  # (as OpenCV writes it)
    struct.pack_into(">IIIii", data, elst + 8, 0, 1, 1500, 5120, 1 << 16)  # (version 0, 1 entry, rate 1.0)
    path.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 20
    study = vpimage.io.open(path)
    assert study.n_frames == 15 and study.timing.source == "container timestamps"
    np.testing.assert_allclose(study.timing.time_s, np.arange(15) / 10.0, atol=1e-6)
    shown = np.stack(list(study.iter_frames()))
    np.testing.assert_allclose(shown.mean(axis=(1, 2)), frames[5:].mean(axis=(1, 2)), atol=2.0)  # (mp4v's loss)


def ebml_children(data, start, end):
    """(element id, offset of its data, its data's size) of each EBML element in data[start:end]."""
    while start < end:
        element_width = 9 - data[start].bit_length()
        element = int.from_bytes(data[start : start + element_width], "big")
        size_width = 9 - data[start + element_width].bit_length()
        size = int.from_bytes(data[start + element_width : start + element_width + size_width], "big")
        body = start + element_width + size_width
        yield element, body, size - (1 << (7 * size_width))
        start = body + size - (1 << (7 * size_width))


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_a_variable_rate_matroska_file_is_read_with_its_own_times(tmp_path):
    # Matroska stores no frame count: OpenCV estimates one from the duration and the
    # average rate, here more than the 20 frames (10 every 100 ms, then 10 every 300 ms):
    # it had been refused as cut short.
    times_ms = [100 * k for k in range(10)] + [1200 + 300 * k for k in range(10)]
    path = write_video(tmp_path / "run.mkv", ramp_frames(20), 10.0, "FFV1")
    data = bytearray(path.read_bytes())
    (_, body, size), = [child for child in ebml_children(data, 0, len(data)) if child[0] == 0x18538067]  # Segment
    blocks = 0
    for element, start, length in ebml_children(data, body, body + size):
        children = list(ebml_children(data, start, start + length)) if element in (0x1549A966, 0x1F43B675) else []
        if element == 0x1549A966:  # Info: its Duration, ms (TimecodeScale 1 ms), a float
            (_, at, width), = [child for child in children if child[0] == 0x4489]
            data[at : at + width] = struct.pack(">d" if width == 8 else ">f", times_ms[-1] + 300)
        elif element == 0x1F43B675:  # Cluster: its Timecode, then blocks timed relative to it
            (_, at, width), = [child for child in children if child[0] == 0xE7]
            cluster_ms = int.from_bytes(data[at : at + width], "big")
            for _, at, _ in [child for child in children if child[0] == 0xA3]:  # SimpleBlock: track, int16 time, ...
                struct.pack_into(">h", data, at + 1, times_ms[blocks] - cluster_ms)
                blocks += 1
    assert blocks == 20
    path.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) > 21
    study = vpimage.io.open(path)
    assert study.n_frames == 20 and study.timing.source == "container timestamps"
    np.testing.assert_allclose(study.timing.time_s, np.array(times_ms) / 1000.0, atol=1e-6)
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), ramp_frames(20).astype(np.float32))


@pytest.mark.filterwarnings("ignore:.*no calibration")
def test_a_video_whose_relative_path_holds_a_colon_opens(tmp_path, monkeypatch):
    # FFmpeg read "2024-01-05T12:30:00.avi" as a URL of protocol "2024-01-05T12".
    monkeypatch.chdir(tmp_path)
    write_video(tmp_path / "2024-01-05T12:30:00.avi", ramp_frames(), 10.0, "FFV1")
    study = vpimage.io.open(Path("2024-01-05T12:30:00.avi"))
    np.testing.assert_array_equal(np.stack(list(study.iter_frames())), ramp_frames().astype(np.float32))
    np.testing.assert_allclose(study.timing.time_s, np.arange(8) / 10.0, atol=1e-6)


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


@pytest.mark.filterwarnings("ignore:.*no calibration")
@pytest.mark.parametrize("scale, rate", [(1, 0), (0, 10)])
@pytest.mark.parametrize("frame_period_us", [0, 100_000])
def test_an_avi_that_declares_no_frame_rate_falls_back_to_the_assumed_rate(tmp_path, scale, rate, frame_period_us):
    # A stream header rate or scale of 0: FFmpeg takes the main header's frame period, and
    # without one invents 25 fps, which had been taken for the container's timestamps.
    path = write_video(tmp_path / "run.avi", ramp_frames(), 25.0, "MJPG")
    data = bytearray(path.read_bytes())
    struct.pack_into("<II", data, data.find(b"strh") + 28, scale, rate)
    struct.pack_into("<I", data, data.find(b"avih") + 8, frame_period_us)
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = vpimage.io.open(path)
    messages = [str(w.message) for w in caught if "no calibration" not in str(w.message)]
    if frame_period_us:  # declared there: 10 fps
        assert messages == [] and study.timing.source == "container timestamps"
        np.testing.assert_allclose(study.timing.time_s, np.arange(8) / 10.0, atol=1e-6)
    else:
        assert messages == [f"{path}: the AVI declares no frame rate: its video stream header's dwRate/dwScale is "
                            f"{rate}/{scale}, its main header's dwMicroSecPerFrame 0; frames taken as regular at "
                            f"assumed {FALLBACK_FPS:g} fps"]
        np.testing.assert_allclose(study.timing.time_s, np.arange(8) / FALLBACK_FPS)
        assert study.timing.fps == FALLBACK_FPS and study.timing.source.startswith(f"assumed {FALLBACK_FPS:g} fps (")


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
