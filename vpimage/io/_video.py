"""Video files (mp4, avi, ...) through OpenCV.

Opening scans the file once (``grab`` without conversion, memory flat) to count the
frames and read each frame's presentation time from the container
(``CAP_PROP_POS_MSEC``). The file is first opened in Python, so that an unreadable one
fails with the system's reason before OpenCV sees it. Every frame interval must be at
least 1 ms and the median one at most 60 s (:data:`~vpimage.io._timing.INTERVAL_RANGE_S`,
as for DICOM; a long pause is kept): times that are missing, not increasing or implausible
fall back, with a warning naming the file, to
regular frames at the container's declared rate, else (that rate implausible too, which
also warns) at :data:`~vpimage.io._timing.FALLBACK_FPS`. A video that yields fewer frames
than its container declares (by more than one: a count estimated from the duration may be
one over) is refused as damaged or cut short. Frames are 8-bit luminance (ITU-R BT.601,
OpenCV's ``BGR2GRAY``); a frame whose channels differ by more than
:data:`_GREY_TOLERANCE` is colour, which warns once and makes the study's photometric
interpretation "RGB" when the first frame is. A video has no calibration (``mm_per_px``
None, with a warning), no view, and its field of view is found from the pixels.
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
from vpimage.io._timing import FALLBACK_FPS, INTERVAL_RANGE_S, Timing, plausible_interval

__all__ = ["open_video"]

logger = logging.getLogger(__name__)

_MAX_FRAMES = 100_000

#: Most grey levels by which a grey frame's B, G and R may differ. Grey frames written
#: through OpenCV's colour path come back with channels up to 3 levels apart (mp4v) or 2
#: (MJPG), chroma subsampling's error, measured on ramps plus Gaussian noise (sigma 0-40
#: levels, 64x48 to 640x480 px); 8 leaves more than twice that, while a red square
#: differs by 255.
_GREY_TOLERANCE = 8


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
        """Luminance, float32 [rows, cols], of a decoded frame: grey [rows, cols] or BGR [rows, cols, 3+]."""
        if image.ndim == 3 and image.shape[2] >= 3:
            if not self.colour:  # once one frame is colour, the others need no check
                b, g, r = cv2.split(image)[:3]
                if max(cv2.absdiff(b, g).max(), cv2.absdiff(g, r).max(), cv2.absdiff(b, r).max()) > _GREY_TOLERANCE:
                    warnings.warn(f"{self.path}: colour video frames converted to luminance", stacklevel=4)
                    self.colour = True
            return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY).astype(np.float32)
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
    """Timing from the frames' presentation times (ms) and the container's declared rate
    (fps; 0 when it declares none), as the module docstring says. Every interval must be at
    least 1 ms and the median interval at most 60 s: a long pause (a hold between runs) is
    kept, as between DICOM instances."""
    low, high = INTERVAL_RANGE_S
    declared = fps if np.isfinite(fps) and fps > 0 and plausible_interval(1.0 / fps) else None
    time_s = (np.asarray(times_ms, dtype=np.float64) - times_ms[0]) / 1000.0
    if time_s.size == 1:
        return Timing(time_s, declared or 0.0, "container" if declared else "single frame")
    steps = np.diff(time_s)
    if not (np.all(np.isfinite(time_s)) and np.all(steps > 0)):
        problem = "container timestamps are not increasing"
    else:
        shortest, typical = float(steps.min()), float(np.median(steps))
        if plausible_interval(shortest) and plausible_interval(typical):
            return Timing(time_s, float((time_s.size - 1) / time_s[-1]), "container timestamps")
        what, bad = ("a frame interval", shortest) if not plausible_interval(shortest) else ("a median interval", typical)
        problem = f"container timestamps have {what} of {bad:g} s, not plausible (must be in [{low:g}, {high:g}] s)"
    if declared:
        rate, source = declared, "container frame rate"
    else:
        rate, source = FALLBACK_FPS, "assumed"
        if fps != 0:
            problem += f"; the container's frame rate {fps:g} fps is not plausible either"
    warnings.warn(f"{path}: {problem}; frames taken as regular at {source} {rate:g} fps", stacklevel=3)
    return Timing(np.arange(time_s.size) / rate, rate, f"{source} {rate:g} fps ({problem})")


def _key(path: Path) -> str:
    """Study key: a hash of the file's first MiB and its size in bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        digest.update(stream.read(1 << 20))
    digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()[:12]


def open_video(path: Path) -> Study:
    """Study of a video file (module docstring)."""
    with reading(path, "cannot be read as a video"):
        key = _key(path)  # opens the file first: an unreadable one fails with the system's reason, not OpenCV's
        times_ms, fps, fourcc = _scan(path)
        source = _VideoFrames(path, len(times_ms))
        first = source.frame(0)
        timing = _timing(times_ms, fps, path)
    warnings.warn(f"{path}: a video has no calibration: millimetres are unknown (mm columns will be NaN)",
                  stacklevel=3)
    mask, fov_source = field_of_view(Dataset(), first, path)  # no shutter: from the pixels
    geometry = Geometry(None, "none", mask, fov_source, "unknown")
    return Study(path, source=source, n_frames=len(times_ms), rows=first.shape[0], columns=first.shape[1],
                 geometry=geometry, timing=timing, photometric="RGB" if source.colour else "MONOCHROME2",
                 transfer_syntax=f"video ({fourcc})", sop_class="video", white_level=255.0,
                 key=key)
