"""When each frame was acquired: seconds from the first frame.

Sources, first match wins, for one DICOM instance:

1. per-frame ``FrameAcquisitionDateTime`` (Frame Content functional group, enhanced
   objects);
2. ``FrameTimeVector`` (ms between consecutive frames, its first value 0);
3. ``FrameTime`` (ms, regular frames);
4. ``CineRate``, ``RecommendedDisplayFrameRate`` or ``RecommendedDisplayFrameRateInFloat``
   (frames per second, regular frames);

and, for a series of single-frame instances, each instance's ``AcquisitionDateTime``
(else ``AcquisitionDate`` + ``AcquisitionTime``, else ``ContentDate`` + ``ContentTime``);
several multi-frame runs of one series keep their own times, shifted by their start.

Fallback: times that are missing, unreadable, or not strictly increasing are replaced by
regular frames at the nominal rate (Frame Time or Cine Rate), else at
:data:`FALLBACK_FPS`, with a warning; never an error. One frame has ``time_s == [0]``
and the nominal rate (0 when there is none).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from os import PathLike

import numpy as np
from pydicom.dataset import Dataset
from pydicom.valuerep import DT

from vpimage.io._headers import find, per_frame

__all__ = ["FALLBACK_FPS", "Timing", "instance_timing", "runs_timing", "series_order", "series_timing"]

logger = logging.getLogger(__name__)

#: Frame rate assumed (frames per second) when a multi-frame input says nothing usable
#: about its timing: a common pulsed-fluoroscopy rate.
FALLBACK_FPS = 15.0


@dataclass(frozen=True, eq=False)
class Timing:
    """When the frames were acquired.

    Attributes
    ----------
    time_s : ndarray, float64, shape [frames]
        Seconds from the first frame (``time_s[0] == 0``), strictly increasing.
    fps : float
        Mean frame rate, frames per second (0 for one frame without a nominal rate).
    source : str
        Where the times came from (an attribute name, or the fallback used and why).
    """

    time_s: np.ndarray = field(repr=False)
    fps: float
    source: str


def _positive_float(value) -> float | None:
    try:
        out = float(value[0] if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else value)
    except (TypeError, ValueError, IndexError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def _nominal(ds: Dataset) -> tuple[float, str] | None:
    """``(fps, attribute)`` from Frame Time or a frame rate attribute, if any is usable."""
    frame_time = find(ds, "FrameTime")
    ms = _positive_float(frame_time) if frame_time is not None else None
    if ms is not None:
        return 1000.0 / ms, "FrameTime"
    display = ds.get("FrameDisplaySequence")
    places = [ds] + ([display[0]] if display else [])
    for keyword in ("CineRate", "RecommendedDisplayFrameRate", "RecommendedDisplayFrameRateInFloat"):
        for place in places:
            fps = _positive_float(place.get(keyword))
            if fps is not None:
                return fps, keyword
    return None


def _datetime(value: str) -> datetime | None:
    """A DICOM DT value as a naive datetime (offsets dropped), None when unreadable."""
    try:
        stamp = DT(str(value).strip())
    except (TypeError, ValueError, OverflowError):
        return None
    return stamp.replace(tzinfo=None) if isinstance(stamp, datetime) else None


def _relative(stamps: list[datetime | None]) -> list[float | None]:
    """Seconds from the first stamp (exact to the microsecond), None where unreadable."""
    first = stamps[0]
    return [None if first is None or s is None else (s - first).total_seconds() for s in stamps]


def _stamp_source(ds: Dataset) -> str | None:
    """Which attributes date-time one instance: ``"AcquisitionDateTime"``, else
    ``"AcquisitionDate/Time"``, else ``"ContentDate/Time"``; None when it has none."""
    if ds.get("AcquisitionDateTime"):
        return "AcquisitionDateTime"
    for prefix in ("Acquisition", "Content"):
        if ds.get(f"{prefix}Date") and ds.get(f"{prefix}Time"):
            return f"{prefix}Date/Time"
    return None


def _stamp(ds: Dataset) -> datetime | None:
    """Acquisition (else content) date-time of one instance (:func:`_stamp_source`)."""
    source = _stamp_source(ds)
    if source is None:
        return None
    if source == "AcquisitionDateTime":
        return _datetime(ds.get(source))
    prefix = source.removesuffix("Date/Time")
    return _datetime(f"{str(ds.get(f'{prefix}Date')).strip()}{str(ds.get(f'{prefix}Time')).strip()}")


def _regular(n_frames: int, fps: float, source: str) -> Timing:
    return Timing(np.arange(n_frames, dtype=np.float64) / fps, float(fps), source)


def _checked(times: list[float | None] | None, source: str, nominal, n_frames: int, path) -> Timing:
    """Timing from absolute or relative ``times`` (s), else the documented fallback."""
    if n_frames == 1:
        return Timing(np.zeros(1), nominal[0] if nominal else 0.0, nominal[1] if nominal else "single frame")
    problem = None
    if times is None:
        problem = "no frame timing"
    elif len(times) != n_frames or any(t is None for t in times):
        problem = f"{source} does not give one readable time per frame"
    else:
        time_s = np.asarray(times, dtype=np.float64) - float(times[0])
        if not np.all(np.isfinite(time_s)) or np.any(np.diff(time_s) <= 0):
            problem = f"{source} is not strictly increasing"
        else:
            return Timing(time_s, float((n_frames - 1) / time_s[-1]), source)
    if nominal is not None:
        fps, attribute = nominal
        if times is not None:
            warnings.warn(f"{path}: {problem}; frames taken as regular at {attribute} {fps:g} fps", stacklevel=3)
        return _regular(n_frames, fps, attribute if times is None else f"{attribute} ({problem})")
    warnings.warn(f"{path}: {problem}; frames taken as regular at an assumed {FALLBACK_FPS:g} fps", stacklevel=3)
    return _regular(n_frames, FALLBACK_FPS, f"assumed {FALLBACK_FPS:g} fps ({problem})")


def instance_timing(ds: Dataset, n_frames: int, path: str | PathLike) -> Timing:
    """Timing of the ``n_frames`` frames of one DICOM instance ``ds`` (module docstring)."""
    nominal = _nominal(ds)
    stamps = per_frame(ds, "FrameAcquisitionDateTime")
    if stamps is not None:
        return _checked(_relative([_datetime(v) for v in stamps]), "FrameAcquisitionDateTime", nominal, n_frames, path)
    vector = ds.get("FrameTimeVector")
    if vector:
        try:
            increments_ms = [float(v) for v in (vector if type(vector).__name__ == "MultiValue" else [vector])]
        except (TypeError, ValueError):
            return _checked([None] * n_frames, "FrameTimeVector", nominal, n_frames, path)
        return _checked(list(np.cumsum(increments_ms) / 1000.0), "FrameTimeVector", nominal, n_frames, path)
    return _checked(None, "", nominal, n_frames, path)


def series_timing(datasets: list[Dataset], path: str | PathLike) -> Timing:
    """Timing of a series of single-frame instances, in the order given (module docstring)."""
    nominal = _nominal(datasets[0])
    stamps = _relative([_stamp(ds) for ds in datasets])
    sources = sorted({_stamp_source(ds) for ds in datasets} - {None})
    source = " and ".join(sources) or "acquisition or content date-time"
    return _checked(stamps, source, nominal, len(datasets), path)


def series_order(datasets: list[Dataset]) -> list[int]:
    """Indices of ``datasets`` in acquisition order: by acquisition (else content)
    date-time, then Instance Number; instances without a readable time come last."""

    def key(i: int):
        stamp = _stamp(datasets[i])
        try:
            number = int(datasets[i].get("InstanceNumber") or 0)
        except (TypeError, ValueError):
            number = 0
        return (stamp is None, stamp or datetime.min, number, i)

    return sorted(range(len(datasets)), key=key)


def runs_timing(headers: list[Dataset], timings: list[Timing], path: str | PathLike) -> Timing:
    """Timing of several runs of one series, in the order given (by start time); for
    single-frame instances, :func:`series_timing`.

    Each run keeps its own frame times, shifted by its start (acquisition, else content,
    date-time) from the first run's start. Without readable starts, or when runs would
    overlap, the runs follow each other one frame interval apart, with a warning.
    """
    if all(timing.time_s.size == 1 for timing in timings):
        return series_timing(headers, path)
    starts = _relative([_stamp(ds) for ds in headers])
    pieces, problem = [], None
    for start, timing in zip(starts, timings):
        if start is None:
            problem = "a run has no readable start time"
            break
        pieces.append(timing.time_s + start)
    if problem is None:
        time_s = np.concatenate(pieces)
        if np.all(np.diff(time_s) > 0):
            return Timing(time_s, float((time_s.size - 1) / time_s[-1]), f"runs by start time ({timings[0].source})")
        problem = "runs overlap in time"
    pieces, offset = [], 0.0
    for timing in timings:
        step = 1.0 / timing.fps if timing.fps > 0 else 1.0 / FALLBACK_FPS
        pieces.append(timing.time_s + offset)
        offset = float(pieces[-1][-1]) + step
    warnings.warn(f"{path}: {problem}; runs placed one after the other", stacklevel=2)
    time_s = np.concatenate(pieces)
    return Timing(time_s, float((time_s.size - 1) / time_s[-1]), f"runs back to back ({problem})")
