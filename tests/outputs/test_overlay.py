"""overlay.mp4 and timeline.png: readable, right size and count, drawing where it should."""

import math

import cv2
import numpy as np
import pytest

from vpimage.alerts import AlertLevel, AlertThresholds
from vpimage.errors import OutputError
from vpimage.measures import Corners
from vpimage.outputs import write_overlay, write_timeline_png
from vpimage.outputs._overlay import LEVEL_COLOURS

BODY = Corners((20, 30), (70, 30), (70, 80), (20, 80))


def _read_video(path):
    capture = cv2.VideoCapture(str(path.absolute()))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def test_overlay_frames_banner_and_contour(tmp_path, results):
    frames = [np.full((96, 128), 1000 + 10 * k, np.uint16) for k in range(len(results))]
    masks = [np.zeros((96, 128), bool) for _ in results]
    for mask in masks[1:]:
        mask[45:65, 30:50] = True
    path = tmp_path / "overlay.mp4"
    write_overlay(path, frames, results, masks, [BODY] * len(results), fps=10.0)
    video, fps = _read_video(path)
    assert len(video) == len(results) and fps == 10.0
    assert video[0].shape == (96, 128, 3)
    # The banner takes the level's colour (lossy codec: compare loosely, away from the text).
    for frame, result in zip(video, results):
        patch = frame[2:5, 118:126].reshape(-1, 3).mean(axis=0)
        assert np.abs(patch - LEVEL_COLOURS[AlertLevel(result.alert)]).max() < 40
    # The cement contour (cyan: blue and green high, red low) runs along the mask's edge.
    edge = video[1][50:60, 30].astype(int)
    assert (edge[:, 0] > 150).all() and (edge[:, 1] > 150).all() and (edge[:, 2] < 120).all()
    inside = video[1][55, 40].astype(int)
    assert abs(inside[0] - inside[2]) < 30  # grey inside: no contour drawn there


def test_overlay_of_an_odd_sized_study_keeps_every_pixel(tmp_path, results):
    # MPEG-4 codes 2 x 2 blocks: a 95 x 127 px study is padded with a black row and column, not cropped.
    frames = [np.zeros((95, 127), np.uint16) for _ in results]
    for frame in frames:
        frame[:, -3:] = frame[-3:, :] = 1000  # a white band along the last rows and columns
    path = tmp_path / "overlay.mp4"
    write_overlay(path, frames, results, [None] * len(results), [None] * len(results), fps=10.0, display_range=(0, 1000))
    video, _ = _read_video(path)
    assert len(video) == len(results) and video[0].shape == (96, 128, 3)
    grey = video[-1].astype(int).mean(axis=2)
    assert grey[30:60, 124:126].min() > 200 and grey[92:94, 30:60].min() > 200  # the study's last pixels are there
    assert grey[30:60, 127].max() < 60 and grey[95, 30:60].max() < 60  # the padding is black


def test_a_dim_first_frame_does_not_wash_out_the_later_ones(tmp_path, results):
    # Each frame a ramp of 0-1000 across its columns, the first at a quarter of that (the beam
    # ramping up). The later frames are shown through their own 1st-99.5th percentiles: a
    # column of value v at 255 (v - p1) / (p99.5 - p1). From the first frame alone, every
    # column above a quarter of the ramp was white.
    ramp = np.tile(np.linspace(0, 1000, 128), (96, 1))
    frames = [ramp * (0.25 if k == 0 else 1.0) for k in range(len(results))]
    path = tmp_path / "overlay.mp4"
    write_overlay(path, frames, results, [None] * len(results), [None] * len(results), fps=10.0)
    low, high = np.percentile(ramp, (1, 99.5))
    expected = np.clip(255 * (ramp[0] - low) / (high - low), 0, 255)
    for frame in _read_video(path)[0][1:]:
        shown = frame[40:90, :, 1].mean(axis=0)  # (below the banner)
        assert np.abs(shown[4:-4] - expected[4:-4]).max() < 15


@pytest.mark.parametrize("fps, plays_at", [(1000 / 15, 66.67), (99.1234, 99.12), (65.535, 65.535), (29.97, 29.97)])
def test_an_overlay_at_a_rate_mpeg4_cannot_time_exactly_plays_at_the_rate_rounded(tmp_path, results, fps, plays_at):
    # MPEG-4's time base holds at most 65535 ticks a second: OpenCV's writer did not open at
    # 66.667 fps (Frame Time 15 ms) nor 99.1234 fps, which cost the study its every output.
    path = tmp_path / "overlay.mp4"
    frames = [np.full((96, 128), 100 * k, np.uint16) for k in range(len(results))]
    write_overlay(path, frames, results, [None] * len(results), [None] * len(results), fps=fps)
    video, read_fps = _read_video(path)
    assert len(video) == len(results) and read_fps == pytest.approx(plays_at, rel=1e-9)


def test_an_overlay_whose_relative_path_holds_a_colon_is_written_there(tmp_path, results, monkeypatch):
    # FFmpeg read "res:1/overlay.mp4" as a URL of protocol "res": the writer did not open.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "res:1").mkdir()
    frames = [np.full((96, 128), 100 * k, np.uint16) for k in range(len(results))]
    write_overlay("res:1/overlay.mp4", frames, results, [None] * len(results), [None] * len(results), fps=10.0)
    video, fps = _read_video(tmp_path / "res:1" / "overlay.mp4")
    assert len(video) == len(results) and fps == 10.0


def test_an_overlay_opencv_cannot_encode_is_an_output_error_leaving_nothing(tmp_path, results, monkeypatch):
    # As on an OpenCV build without the mp4v encoder: the writer does not open.
    class NoEncoder:
        def __init__(self, *args):
            pass

        def isOpened(self):  # noqa: N802 (OpenCV's name)
            return False

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoWriter", NoEncoder)
    path = tmp_path / "overlay.mp4"
    frames = [np.zeros((96, 128), np.uint16) for _ in results]
    with pytest.raises(OutputError) as error:
        write_overlay(path, frames, results, [None] * len(results), [None] * len(results), fps=10.0)
    assert error.value.path == str(path) and "mp4v" in error.value.reason
    assert list(tmp_path.iterdir()) == []


def test_an_overlay_cut_short_by_the_disk_is_an_output_error_leaving_the_old_one(tmp_path, results, monkeypatch):
    # OpenCV's writer says nothing when the disk fills: the cut-off video (no index, 0
    # frames to a reader) replaced the old overlay. Here the writer loses every frame after
    # the second, as a full disk makes it.
    real = cv2.VideoWriter

    class FillingDisk:
        def __init__(self, *args):
            self.writer, self.count = real(*args), 0

        def isOpened(self):  # noqa: N802 (OpenCV's name)
            return self.writer.isOpened()

        def write(self, image):
            self.count += 1
            if self.count <= 2:
                self.writer.write(image)

        def release(self):
            self.writer.release()

    path = tmp_path / "overlay.mp4"
    path.write_bytes(b"the old overlay")
    monkeypatch.setattr(cv2, "VideoWriter", FillingDisk)
    frames = [np.zeros((96, 128), np.uint16) for _ in results]
    with pytest.raises(OutputError, match=f"the video holds 2 of its {len(results)} frames") as error:
        write_overlay(path, frames, results, [None] * len(results), [None] * len(results), fps=10.0)
    assert error.value.path == str(path)
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.mp4"] and path.read_bytes() == b"the old overlay"


def test_timeline_png(tmp_path, results):
    path = tmp_path / "timeline.png"
    write_timeline_png(path, results, AlertThresholds(), size=(600, 300))
    image = cv2.imread(str(path))
    assert image.shape == (300, 600, 3)
    colours = {tuple(int(c) for c in px) for px in image.reshape(-1, 3)}
    for level in (AlertLevel.OK, AlertLevel.WARN, AlertLevel.STOP):
        assert LEVEL_COLOURS[level] in colours


def test_timeline_uncalibrated_uses_px(tmp_path, results):
    from dataclasses import replace

    uncalibrated = [replace(r, front_to_wall_mm=math.nan) for r in results]
    path = tmp_path / "timeline.png"
    write_timeline_png(path, uncalibrated, AlertThresholds(), size=(400, 200))
    assert cv2.imread(str(path)).shape == (200, 400, 3)
