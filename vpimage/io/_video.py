"""Video files (mp4, avi, ...) through OpenCV.

Opening scans the file once (``grab`` without conversion, memory flat) to count the
frames and read each frame's presentation time from the container
(``CAP_PROP_POS_MSEC``). The file is first opened in Python, so that an unreadable one
fails with the system's reason before OpenCV sees it, and OpenCV is given its absolute
path (FFmpeg would read a relative one such as ``12:30.avi`` as a protocol). Every frame
interval must be at least 1 ms and the median one at most 60 s
(:data:`~vpimage.io._timing.INTERVAL_RANGE_S`, as for DICOM; a long pause is kept): times
that are missing, not increasing or implausible fall back, with a warning naming the file, to
regular frames at the container's declared rate, else (that rate implausible too, which
also warns) at :data:`~vpimage.io._timing.FALLBACK_FPS`; so does an AVI that declares no
rate at all (:mod:`~vpimage.io._container`: FFmpeg would give it 25 fps and times to match).
A video is refused as damaged when decoding stops at a frame and goes on after it, or (an
AVI, whose header counts its frames exactly) when it yields fewer frames than its header
declares, by more than one; and as cut short when the file ends before its container's
structure does (AVI, MP4, Matroska). Fewer frames than another container declares are no
damage: an MP4's count includes the samples an edit list skips (a lossless trim), and a
Matroska file's is estimated from its duration and average rate (wrong for a variable
rate). Frames are 8-bit luminance (ITU-R BT.601,
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
from vpimage.io._container import read_container
from vpimage.io._fov import field_of_view
from vpimage.io._geometry import Geometry
from vpimage.io._study import Study, reading
from vpimage.io._timing import FALLBACK_FPS, INTERVAL_RANGE_S, Timing, plausible_interval

__all__ = ["open_video"]

logger = logging.getLogger(__name__)

_MAX_FRAMES = 100_000

#: Further ``grab`` calls, beyond the frames a container declares and were not decoded,
#: that must all fail at the end of a video (:func:`_scan`). Zeroing 5-60 % of an mp4v
#: file mid-way made 3-27 of them fail before decoding went on (40 frames).
_RESUME_TRIES = 64

#: Most grey levels by which a grey frame's B, G and R may differ. Grey frames written
#: through OpenCV's colour path come back with channels up to 3 levels apart (mp4v) or 2
#: (MJPG), chroma subsampling's error, measured on ramps plus Gaussian noise (sigma 0-40
#: levels, 64x48 to 640x480 px); 8 leaves more than twice that, while a red square
#: differs by 255.
_GREY_TOLERANCE = 8


class _VideoFrames:
    """Sequential access to one video's frames; a backward jump reopens the file."""

    def __init__(self, path: Path, n_frames: int):
        self.path, self.n_frames = path, n_frames  # (path: as named in errors)
        self._capture, self._next = None, 0
        self.colour = False

    def _open(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture = cv2.VideoCapture(str(self.path.absolute()))
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


def _scan(path: Path) -> tuple[list[float], int, float, str]:
    """Presentation times (ms) of every frame, the container's declared frame count, its
    nominal fps and the codec's FourCC. Decoding that stops at a frame and goes on after
    it (a decoder that gives up on a damaged frame ends ``grab``'s run as the file's end
    does, but at the end every further ``grab`` fails too) is refused."""
    capture = cv2.VideoCapture(str(path.absolute()))
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
        # Each failed grab consumes at least one packet: as many tries as the frames declared
        # beyond those decoded (plus a margin, for a count estimated short) reach past damage.
        tries = min(max(declared - len(times_ms), 0), _MAX_FRAMES) + _RESUME_TRIES
        if any(capture.grab() for _ in range(tries)):
            raise InvalidStudyError(path, f"frame {len(times_ms)} cannot be decoded, yet later ones can: the video "
                                          "is damaged")
    finally:
        capture.release()
    if not times_ms:
        raise InvalidStudyError(path, "the video holds no decodable frame")
    return times_ms, declared, fps, fourcc


def _timing(times_ms: list[float], fps: float, path: Path, *, no_rate: str | None = None) -> Timing:
    """Timing from the frames' presentation times (ms) and the container's declared rate
    (fps; 0 when it declares none), as the module docstring says. Every interval must be at
    least 1 ms and the median interval at most 60 s: a long pause (a hold between runs) is
    kept, as between DICOM instances. ``no_rate`` says why the file declares no rate, its
    times then being FFmpeg's invention: the frames are taken as regular at
    :data:`~vpimage.io._timing.FALLBACK_FPS`, with a warning."""
    low, high = INTERVAL_RANGE_S
    declared = fps if not no_rate and np.isfinite(fps) and fps > 0 and plausible_interval(1.0 / fps) else None
    time_s = (np.asarray(times_ms, dtype=np.float64) - times_ms[0]) / 1000.0
    if time_s.size == 1:
        return Timing(time_s, declared or 0.0, "container" if declared else "single frame")
    steps = np.diff(time_s)
    if no_rate:
        problem = no_rate
    elif not (np.all(np.isfinite(time_s)) and np.all(steps > 0)):
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
        if fps != 0 and not no_rate:
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


def open_video(path: Path, skipped_files: tuple[str, ...] = ()) -> Study:
    """Study of a video file (module docstring); ``skipped_files`` as :class:`Study`'s (the
    unreadable files of a folder that holds it, ``"name (reason)"``)."""
    with reading(path, "cannot be read as a video"):
        key = _key(path)  # opens the file first: an unreadable one fails with the system's reason, not OpenCV's
        container = read_container(path)
        if container.cut_short:
            raise InvalidStudyError(path, container.cut_short)
        times_ms, declared, fps, fourcc = _scan(path)
        if container.kind == "AVI" and len(times_ms) < declared - 1:
            raise InvalidStudyError(path, f"the container declares {declared} frames; only {len(times_ms)} can be "
                                          "decoded (damaged)")
        source = _VideoFrames(path, len(times_ms))
        first = source.frame(0)
        timing = _timing(times_ms, fps, path, no_rate=container.no_frame_rate)
    warnings.warn(f"{path}: a video has no calibration: millimetres are unknown (mm columns will be NaN)",
                  stacklevel=3)
    mask, fov_source = field_of_view(Dataset(), first, path)  # no shutter: from the pixels
    geometry = Geometry(None, "none", mask, fov_source, "unknown")
    return Study(path, source=source, n_frames=len(times_ms), rows=first.shape[0], columns=first.shape[1],
                 geometry=geometry, timing=timing, photometric="RGB" if source.colour else "MONOCHROME2",
                 transfer_syntax=f"video ({fourcc})", sop_class="video", white_level=255.0,
                 key=key, skipped_files=skipped_files)
