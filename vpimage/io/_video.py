"""Video files (mp4, avi, ...) through OpenCV.

Opening scans the file once (``grab`` without conversion, memory flat) to count the
frames and read each frame's presentation time from the container
(``CAP_PROP_POS_MSEC``); times that are missing or not increasing fall back to the
container's nominal rate with a warning. A video that yields fewer frames than its
container declares (by more than one: a count estimated from the duration may be one
over) is refused as damaged or cut short. Frames are 8-bit: colour frames become
luminance (ITU-R BT.601, OpenCV's ``BGR2GRAY``) with a warning, grey ones are read as
they are. A video has no calibration (``mm_per_px`` None, with a warning), no view, and
its field of view is found from the pixels.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset

from vpimage.errors import InvalidStudyError
from vpimage.io._fov import field_of_view
from vpimage.io._geometry import Geometry
from vpimage.io._study import Study, reading
from vpimage.io._timing import FALLBACK_FPS, Timing

__all__ = ["open_video"]

logger = logging.getLogger(__name__)

_MAX_FRAMES = 100_000


class _VideoFrames:
    """Sequential access to one video's frames; a backward jump reopens the file."""

    def __init__(self, path: Path, n_frames: int):
        self.path, self.n_frames = path, n_frames
        self._capture, self._next = None, 0
        self.colour = False

    def _open(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise InvalidStudyError(self.path, "OpenCV cannot open the video")
        self._next = 0

    def _grey(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 3 and image.shape[2] >= 3:
            b, g, r = image[..., 0], image[..., 1], image[..., 2]
            if not (np.array_equal(b, g) and np.array_equal(g, r)):
                if not self.colour:
                    warnings.warn(f"{self.path}: colour video frames converted to luminance", stacklevel=4)
                self.colour = True
                return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY).astype(np.float32)
            return b.astype(np.float32)
        return image.astype(np.float32)

    def frame(self, index: int) -> np.ndarray:
        if self._capture is None or index < self._next:
            self._open()
        while self._next < index:
            if not self._capture.grab():
                raise InvalidStudyError(self.path, f"the video ends before frame {index}")
            self._next += 1
        ok, image = self._capture.read()
        if not ok or image is None:
            raise InvalidStudyError(self.path, f"frame {index} cannot be decoded")
        self._next += 1
        return self._grey(image)

    def iter_frames(self) -> Iterator[np.ndarray]:
        for index in range(self.n_frames):
            yield self.frame(index)


def _scan(path: Path) -> tuple[list[float], float, str]:
    """Presentation times (ms) of every frame, the nominal fps and the codec's FourCC."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InvalidStudyError(path, "OpenCV cannot open it as a video")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        code = int(capture.get(cv2.CAP_PROP_FOURCC) or 0)
        fourcc = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).strip("\0 ") or "unknown"
        times_ms = []
        while capture.grab():
            times_ms.append(float(capture.get(cv2.CAP_PROP_POS_MSEC)))
            if len(times_ms) > _MAX_FRAMES:
                raise InvalidStudyError(path, f"has more than {_MAX_FRAMES} frames")
    finally:
        capture.release()
    if not times_ms:
        raise InvalidStudyError(path, "the video holds no decodable frame")
    if len(times_ms) < declared - 1:  # (a count estimated from the duration may be one over)
        raise InvalidStudyError(path, f"the container declares {declared} frames; only {len(times_ms)} can be "
                                      "decoded (damaged or cut short)")
    return times_ms, fps, fourcc


def _timing(times_ms: list[float], fps: float, path: Path) -> Timing:
    time_s = (np.asarray(times_ms, dtype=np.float64) - times_ms[0]) / 1000.0
    if time_s.size == 1:
        return Timing(time_s, fps, "container")
    if np.all(np.isfinite(time_s)) and np.all(np.diff(time_s) > 0):
        return Timing(time_s, float((time_s.size - 1) / time_s[-1]), "container timestamps")
    rate = fps if np.isfinite(fps) and fps > 0 else FALLBACK_FPS
    warnings.warn(f"{path}: container timestamps are not increasing; frames taken as regular at {rate:g} fps",
                  stacklevel=3)
    return Timing(np.arange(time_s.size) / rate, rate, f"container frame rate {rate:g} fps (timestamps unusable)")


def open_video(path: Path) -> Study:
    """Study of a video file (module docstring)."""
    with reading(path, "cannot be read as a video"):
        times_ms, fps, fourcc = _scan(path)
        source = _VideoFrames(path, len(times_ms))
        first = source.frame(0)
        timing = _timing(times_ms, fps, path)
    warnings.warn(f"{path}: a video has no calibration: millimetres are unknown (mm columns will be NaN)",
                  stacklevel=3)
    mask, fov_source = field_of_view(Dataset(), first, path)  # no shutter: from the pixels
    geometry = Geometry(None, "none", mask, fov_source, "unknown")
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        digest.update(stream.read(1 << 20))
    digest.update(str(path.stat().st_size).encode())
    return Study(path, source=source, n_frames=len(times_ms), rows=first.shape[0], columns=first.shape[1],
                 geometry=geometry, timing=timing, photometric="RGB" if source.colour else "MONOCHROME2",
                 transfer_syntax=f"video ({fourcc})", sop_class="video", white_level=255.0,
                 key=digest.hexdigest()[:12])
