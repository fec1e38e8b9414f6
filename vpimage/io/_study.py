"""The Study: lazy frames of one injection with their geometry and timing.

Frames as the analysis sees them: float32 ``[rows, cols]``, after the Modality LUT /
rescale, oriented like MONOCHROME2 (higher = brighter = less attenuation; MONOCHROME1
inverted, see :mod:`vpimage.io._pixels`), colour reduced to luminance. Frames are
decoded one at a time, when asked for: memory while iterating holds one frame (one batch
with :meth:`Study.iter_batches`), whatever the number of frames.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from vpimage.errors import ArgumentError, InvalidStudyError, VpimageError
from vpimage.io._geometry import Geometry
from vpimage.io._timing import Timing

__all__ = ["FrameBatch", "FrameSource", "Study", "dicom_key", "is_stop", "reading"]

logger = logging.getLogger(__name__)
# A name next to a path separator in a message (a folder or file of a path it quotes).
_PATH_PART = re.compile(r"(?<=[/\\])[^/\\\s:;,'\"()]+|[^/\\\s:;,'\"()]+(?=[/\\])")


def is_stop(error: BaseException) -> bool:
    """True for the exceptions that stop the program (interrupt, exit, generator close),
    which readers must let through. Everything else raised while reading bad bytes is a
    failure to report, including pyo3's ``PanicException`` (pylibjpeg-rle's Rust decoder
    panics on some corrupt streams), which derives from BaseException."""
    return isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit))


def dicom_key(headers: list, path: Path) -> str:
    """12 hex digits that name DICOM instances in logs and outputs without any patient data
    (a file name may hold the patient's name): hashed from the ``headers``' SOP Instance
    UIDs, from ``path`` resolved where one lacks its UID (:attr:`Study.key`; one instance's
    for a log line about it)."""
    uids = [str(ds.get("SOPInstanceUID", "")) for ds in headers]
    text = "\n".join(uids) if all(uids) else str(Path(path).resolve())
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextlib.contextmanager
def reading(path: str | Path, what: str = "cannot be read"):
    """Turn any error but a :class:`VpimageError` raised inside into an
    :class:`InvalidStudyError` naming ``path`` (readers meet every kind of broken file)."""
    try:
        yield
    except VpimageError:
        raise
    except MemoryError:
        raise InvalidStudyError(path, f"{what}: it needs more memory than there is") from None
    except BaseException as error:  # noqa: BLE001 - pydicom, decoders and numpy raise anything on bad bytes
        if is_stop(error):
            raise
        text = " ".join(str(error).split())[:300] or type(error).__name__
        raise InvalidStudyError(path, f"{what}: {text}") from error


@dataclass(frozen=True, eq=False)
class FrameBatch:
    """Consecutive frames of a study.

    Attributes
    ----------
    frames : ndarray, float32, shape [B, rows, cols]
        Analysis values (module docstring).
    time_s : ndarray, float64, shape [B]
        Seconds from the study's first frame.
    index : ndarray, int64, shape [B]
        0-based frame numbers in the study.
    """

    frames: np.ndarray = field(repr=False)
    time_s: np.ndarray
    index: np.ndarray


class FrameSource(Protocol):
    """Where a study's frames come from (a DICOM instance, a series, a video)."""

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based), float32 [rows, cols]."""

    def iter_frames(self) -> Iterator[np.ndarray]:
        """All frames in order, float32 [rows, cols], one decoded at a time."""


class Study:
    """One injection's frames, geometry and timing (see the module docstring).

    Built by :func:`vpimage.io.open`; not meant to be constructed by hand.

    Attributes
    ----------
    path : Path
        The file, folder, DICOMDIR or video opened.
    n_frames, rows, columns : int
        Frame count and frame size (px).
    geometry : Geometry
        mm per px at the isocentre and its source, field-of-view mask, view.
    timing : Timing
        Seconds of each frame from the first, mean fps, their source.
    photometric : str
        Photometric Interpretation as stored (``"MONOCHROME1"``, ``"MONOCHROME2"``,
        ``"RGB"``, ...); frames are always MONOCHROME2-oriented.
    transfer_syntax, sop_class : str
        Names (``"JPEG-LS Lossless Image Compression"``, ``"X-Ray Angiographic Image
        Storage"``; ``"video"`` and the container for videos). A SOP Class UID pydicom does
        not know is the UID itself, a text that is no UID only its length.
    white_level : float
        Top of the frames' value range, the white of a log-encoded display, > 0: the
        largest stored value (``2**BitsStored - 1``, or ``2**(BitsStored - 1) - 1`` when
        signed) through any Modality rescale or LUT; 255 for a video.
    key : str
        12 hex digits that name the study in logs and summary.json without any patient
        data: hashed from its instances' SOP Instance UIDs (from the resolved path when
        one lacks them), or from a video's first MiB and size.
    skipped_files : tuple of str
        Files of the folder or DICOMDIR opened that were left out, each ``"name (reason)"``:
        unreadable, or referenced by the DICOMDIR and missing (their frames are not in the
        study). Empty for a file or video opened alone.

    ``identity``, given by the DICOM readers, is the words of the patient's name, id and
    birth date (3 characters or more), kept only for :meth:`shown_name`.
    """

    def __init__(self, path, *, source: FrameSource, n_frames: int, rows: int, columns: int,
                 geometry: Geometry, timing: Timing, photometric: str, transfer_syntax: str,
                 sop_class: str, white_level: float, key: str, skipped_files: tuple[str, ...] = (),
                 identity: frozenset[str] = frozenset()):
        self.path = Path(path)
        self._identity = frozenset(word.lower() for word in identity if len(word) >= 3)  # (never shown)
        self._source = source
        self.n_frames, self.rows, self.columns = int(n_frames), int(rows), int(columns)
        self.geometry, self.timing = geometry, timing
        self.photometric, self.transfer_syntax, self.sop_class = photometric, transfer_syntax, sop_class
        self.white_level = float(white_level)
        self.key = key
        self.skipped_files = tuple(skipped_files)

    def shown_name(self, name: str) -> str:
        """``name`` (of a file or folder) as outputs may show it: ``study_<key>`` with its
        suffix where it holds a word of the patient's name, the patient id or birth date
        (a folder exported as ``DOE_JOHN``), else ``name`` itself."""
        if any(word in name.lower() for word in self._identity):
            suffix = Path(name).suffix  # (".dcm"; dropped where it holds identity too, "DOE.JOHN")
            return f"study_{self.key}{'' if any(word in suffix.lower() for word in self._identity) else suffix}"
        return name

    def shown_text(self, text: str) -> str:
        """``text`` (a warning that names the study's files) with each name in it that holds a
        word of the patient's name, the patient id or birth date shown as :meth:`shown_name`
        shows it: the parts of the study's path, the files it lists as skipped, and every
        name in ``text`` next to a path separator (``/`` or ``\\``)."""
        if not self._identity:
            return text
        names = {*self.path.parts, *self.path.resolve().parts, *(entry.split(" (")[0] for entry in self.skipped_files)}
        names.update(_PATH_PART.findall(text))
        for name in sorted(names, key=len, reverse=True):  # (a longer name first: a name within it after)
            shown = self.shown_name(name)
            if shown != name:
                text = text.replace(name, shown)
        return text

    def __repr__(self) -> str:
        return (f"Study(key={self.key!r}, n_frames={self.n_frames}, rows={self.rows}, columns={self.columns}, "
                f"transfer_syntax={self.transfer_syntax!r})")

    def _checked(self, frame: np.ndarray, index: int) -> np.ndarray:
        if frame.shape != (self.rows, self.columns):
            raise InvalidStudyError(self.path, f"frame {index} has shape {frame.shape}; "
                                    f"the study's frames are {self.rows} x {self.columns}")
        return np.asarray(frame, dtype=np.float32)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based; negative counts from the end), float32 [rows, cols].

        Only that frame is decoded. Raises IndexError outside ``[-n_frames, n_frames)``,
        TypeError for an index that is not a whole number (1.5 is not frame 1).
        """
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"a frame index must be a whole number; got {index!r}")
        index = int(index)
        if not -self.n_frames <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside the study's {self.n_frames} frames")
        index %= self.n_frames
        with reading(self.path, f"frame {index} cannot be decoded"):
            return self._checked(self._source.frame(index), index)

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Frames in time order, float32 [rows, cols], decoded lazily one at a time."""
        frames = self._source.iter_frames()
        for index in range(self.n_frames):
            with reading(self.path, f"frame {index} cannot be decoded"):
                frame = next(frames, None)
                if frame is None:
                    raise InvalidStudyError(self.path, f"only {index} of {self.n_frames} frames could be read")
                frame = self._checked(frame, index)
            yield frame

    def iter_batches(self, batch_size: int) -> Iterator[FrameBatch]:
        """Consecutive :class:`FrameBatch` es of ``batch_size`` frames (the last may be
        shorter), in time order; memory holds one batch. A ``batch_size`` that is not a
        whole number >= 1 is refused at once (:class:`~vpimage.errors.ArgumentError`)."""
        if not (isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool) and batch_size >= 1):
            raise ArgumentError(f"batch_size must be a whole number >= 1; got {batch_size!r}")
        return self._batches(int(batch_size))

    def _batches(self, batch_size: int) -> Iterator[FrameBatch]:
        frames = self.iter_frames()
        for start in range(0, self.n_frames, batch_size):
            index = np.arange(start, min(start + batch_size, self.n_frames), dtype=np.int64)
            batch = np.empty((index.size, self.rows, self.columns), dtype=np.float32)  # filled in place
            for row, frame in zip(range(index.size), frames):
                batch[row] = frame
            yield FrameBatch(batch, self.timing.time_s[index].astype(np.float64), index)
