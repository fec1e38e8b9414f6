"""Pictures of an analysis: ``overlay.mp4`` (frames with cement contour, wall and alert
banner) and ``timeline.png`` (distance to the wall and alert level over time).

Drawn with OpenCV alone (no plotting library needed). OpenCV is given absolute paths:
FFmpeg would read a relative one such as ``res:1/overlay.mp4`` as a protocol.
"""

from __future__ import annotations

import math
from itertools import chain, islice
from os import PathLike
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from vpimage._atomic import atomic_path, write_bytes_atomic
from vpimage.alerts import AlertLevel, AlertThresholds
from vpimage.engine import FrameResult
from vpimage.errors import OutputError
from vpimage.measures import Corners

__all__ = ["LEVEL_COLOURS", "write_overlay", "write_timeline_png"]

# Colour of each alert level, BGR.
LEVEL_COLOURS = {
    AlertLevel.OK: (76, 175, 80),
    AlertLevel.WARN: (0, 165, 255),
    AlertLevel.STOP: (0, 0, 220),
    AlertLevel.UNRELIABLE: (150, 150, 150),
}
_CEMENT = (255, 255, 0)  # cyan
_BODY = (0, 220, 220)  # yellow
_WALL = (255, 0, 255)  # magenta
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MPEG4_TIME_BASE_MAX = 65535  # the largest denominator of an MPEG-4 part 2 time base (16 bits)
_RANGE_FRAMES = 10  # the first frames whose display ranges set the overlay's (:func:`_display_range`)


def _display_range(frames: Sequence[np.ndarray]) -> tuple[float, float]:
    """Pixel values (the frames' units) shown black and white: the medians, over ``frames``,
    of each frame's 1st and 99.5th percentiles. A first frame taken while the beam ramps up
    (dim), or a few flashing, does not set the contrast of all the others."""
    low, high = np.median([np.percentile(frame, (1, 99.5)) for frame in frames], axis=0)
    return float(low), float(high)


def _to_grey(frame: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = (np.asarray(frame, dtype=np.float32) - low) * (255.0 / max(high - low, 1e-12))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _draw_frame(image: np.ndarray, result: FrameResult, mask, corners: Corners | None) -> None:
    """Draw contour, body, wall and banner on ``image`` (BGR uint8 [rows, cols, 3]) in place."""
    rows, cols = image.shape[:2]
    thick = max(1, round(min(rows, cols) / 300))
    if corners is not None:
        pts = np.round(corners.as_array()).astype(np.int32)
        cv2.polylines(image, [pts.reshape(-1, 1, 2)], True, _BODY, thick, cv2.LINE_AA)
        cv2.line(image, tuple(map(int, pts[1])), tuple(map(int, pts[2])), _WALL, 2 * thick, cv2.LINE_AA)
    if mask is not None and np.any(mask):
        contours, _ = cv2.findContours(np.asarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, _CEMENT, thick, cv2.LINE_AA)
    level = AlertLevel(result.alert)
    scale = max(rows / 900, 0.35)
    banner = max(int(28 * scale * 1.4), 12)
    cv2.rectangle(image, (0, 0), (cols - 1, banner), LEVEL_COLOURS[level], -1)
    distance = "" if not math.isfinite(result.front_to_wall_mm) else f"  wall {result.front_to_wall_mm:.1f} mm"
    text = f"{result.frame}  {result.time_s:.2f} s{distance}  {level.value.upper()} {result.reason}"
    cv2.putText(image, text, (4, banner - max(banner // 4, 2)), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def write_overlay(
    path: str | PathLike,
    frames: Iterable[np.ndarray],
    results: Sequence[FrameResult],
    masks: Iterable[np.ndarray | None],
    corners: Iterable[Corners | None],
    *,
    fps: float,
    display_range: tuple[float, float] | None = None,
) -> None:
    """Write ``overlay.mp4``: each frame with its cement contour, the vertebral body, the
    posterior wall and a banner in the colour of the alert level.

    Parameters
    ----------
    path : str or PathLike
        Destination (MPEG-4 video, ``mp4v``); written atomically.
    frames : iterable of ndarray, shape [rows, cols]
        The frames as the analysis saw them (any real dtype, bright = white).
    results : sequence of FrameResult
        One per frame, same order.
    masks : iterable of (ndarray, bool, shape [rows, cols]) or None
        Cement of each frame (None: no contour).
    corners : iterable of Corners or None
        The body in each frame (None: not drawn).
    fps : float
        Frame rate of the video, frames per second; rounded to the finest of 3, 2, 1 or 0
        decimals that MPEG-4's time base can carry (:func:`_writable_rate`: 2 decimals above
        65.535 fps, so 99.1234 plays at 99.12). The banner's times are each frame's own.
    display_range : (low, high), optional
        Pixel values shown black and white; default the medians of each frame's 1st and
        99.5th percentiles over the first 10 frames (:func:`_display_range`: a dim
        first frame does not wash out the later ones). These frames are held meanwhile.

    Raises
    ------
    OutputError
        OpenCV cannot write the video here (naming ``path``).
    """
    with atomic_path(path) as temp:
        writer, written = None, 0
        frames = iter(frames)
        first = [np.asarray(frame) for frame in islice(frames, _RANGE_FRAMES)]
        if display_range is None and first:
            display_range = _display_range(first)
        try:
            for frame, result, mask, body in zip(chain(first, frames), results, masks, corners):
                frame = np.asarray(frame)
                if writer is None:
                    # MPEG-4 codes whole 2 x 2 chroma blocks: an odd size would lose its last row or
                    # column, so a black one is added instead (the image keeps its pixel coordinates).
                    pad_rows, pad_cols = frame.shape[0] % 2, frame.shape[1] % 2
                    size = (frame.shape[1] + pad_cols, frame.shape[0] + pad_rows)
                    writer = cv2.VideoWriter(str(temp.absolute()), cv2.VideoWriter_fourcc(*"mp4v"),
                                             _writable_rate(fps), size)
                    if not writer.isOpened():
                        raise OutputError(path, "OpenCV cannot write an mp4v video here")
                image = cv2.cvtColor(_to_grey(frame, *display_range), cv2.COLOR_GRAY2BGR)
                _draw_frame(image, result, mask, body)
                writer.write(cv2.copyMakeBorder(image, 0, pad_rows, 0, pad_cols, cv2.BORDER_CONSTANT, value=0))
                written += 1
        finally:
            if writer is not None:
                writer.release()
        _check_written(temp, written, path)


def _writable_rate(fps: float) -> float:
    """``fps`` (frames per second) rounded to the finest of 3, 2, 1 or 0 decimals whose
    fraction MPEG-4 can store: OpenCV writes the rate as a decimal fraction (to within
    0.001), and FFmpeg's encoder refuses a time base whose denominator, that fraction's
    numerator, exceeds 65535 (99.1234 fps -> 99123/1000 -> 99.12)."""
    fps = float(fps)
    for decimals in (3, 2, 1):
        if round(fps * 10**decimals) <= _MPEG4_TIME_BASE_MAX:
            return round(fps, decimals)
    return float(round(fps))


def _check_written(temp: Path, frames: int, path) -> None:
    """OpenCV's writer reports no write error (a full disk leaves a video cut short, without
    its index): the file is opened again and must hold all ``frames``."""
    capture = cv2.VideoCapture(str(temp.absolute()))
    try:
        found = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()
    if found != frames:
        raise OutputError(path, f"cannot be written: the video holds {found} of its {frames} frames (disk full?)")


def _ticks(low: float, high: float, count: int = 6) -> np.ndarray:
    """Round tick values covering [low, high]."""
    raw = (high - low) / max(count - 1, 1)
    step = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    return np.arange(math.ceil(low / step) * step, high + step * 1e-9, step)


def write_timeline_png(
    path: str | PathLike,
    results: Sequence[FrameResult],
    thresholds: AlertThresholds,
    *,
    size: tuple[int, int] = (1200, 500),
) -> None:
    """Write ``timeline.png``: front_to_wall over time with the warn and stop lines, and a
    strip below in the colour of each frame's alert level.

    Plots mm when any frame has front_to_wall_mm, else px (then without threshold lines).

    Parameters
    ----------
    path : str or PathLike
        Destination PNG; written atomically.
    results : sequence of FrameResult
        In frame order.
    thresholds : AlertThresholds
        Where to draw the warn and stop lines, mm.
    size : (width, height)
        Of the picture, px.
    """
    width, height = size
    left, right, top, bottom = 80, 20, 40, 90
    image = np.full((height, width, 3), 255, np.uint8)
    times = np.array([r.time_s for r in results], dtype=float)
    mm = np.array([r.front_to_wall_mm for r in results], dtype=float)
    use_mm = bool(np.isfinite(mm).any())
    values = mm if use_mm else np.array([r.front_to_wall_px for r in results], dtype=float)
    unit = "mm" if use_mm else "px"
    finite = values[np.isfinite(values)]
    lines = (thresholds.warn_mm, thresholds.stop_mm) if use_mm else ()
    y_low = min([0.0, *finite.tolist()]) - 1
    y_high = max([*lines, *finite.tolist(), 1.0]) + 1
    # Up to the end of the last frame, so that each frame's strip has its own width.
    interval = float(np.median(np.diff(times))) if times.size > 1 else 1.0
    t_high = float(times[-1]) + interval if times.size else 1.0

    def x_of(t):
        return int(round(left + (width - left - right) * t / t_high))

    def y_of(v):
        return int(round(top + (height - top - bottom) * (y_high - v) / (y_high - y_low)))

    grey = (200, 200, 200)
    for v in _ticks(y_low, y_high):
        cv2.line(image, (left, y_of(v)), (width - right, y_of(v)), grey, 1)
        cv2.putText(image, f"{v:g}", (8, y_of(v) + 5), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for t in _ticks(0.0, t_high):
        cv2.putText(image, f"{t:g}", (x_of(t) - 10, height - bottom + 50), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.line(image, (left, y_of(0)), (width - right, y_of(0)), (0, 0, 0), 2)  # the wall
    for level, value in zip((AlertLevel.WARN, AlertLevel.STOP), lines):
        cv2.line(image, (left, y_of(value)), (width - right, y_of(value)), LEVEL_COLOURS[level], 1, cv2.LINE_AA)
    points = [(x_of(t), y_of(v)) for t, v in zip(times, values) if math.isfinite(v)]
    for a, b in zip(points, points[1:]):
        cv2.line(image, a, b, (120, 60, 0), 2, cv2.LINE_AA)
    strip_top, strip_bottom = height - bottom + 10, height - bottom + 30
    edges = [*times, t_high]
    for k, result in enumerate(results):
        x0, x1 = x_of(edges[k]), max(x_of(edges[k + 1]), x_of(edges[k]) + 1)
        cv2.rectangle(image, (x0, strip_top), (x1, strip_bottom), LEVEL_COLOURS[AlertLevel(result.alert)], -1)
    cv2.putText(image, f"front to posterior wall ({unit})", (left, 25), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "time (s)", (width // 2, height - 12), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(path, "OpenCV cannot encode the PNG")
    write_bytes_atomic(path, encoded.tobytes())
