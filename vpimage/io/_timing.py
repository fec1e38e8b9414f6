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

Plausibility: a frame interval (Frame Time, a Frame Time Vector increment, or the
inverse of a frame rate) must lie in :data:`INTERVAL_RANGE_S` (1 ms to 60 s); a nominal
attribute outside it, or not a positive number, is ignored with a warning naming the file,
and measured per-frame times with an interval outside it (below 1 ms for a series of
single-frame instances, which may be minutes apart) count as unusable.

Fallback: times that are missing, unreadable, not strictly increasing or implausible are
replaced by regular frames at the nominal rate (Frame Time or Cine Rate), else at
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

from vpimage.io._headers import find, per_frame, shown

__all__ = ["FALLBACK_FPS", "INTERVAL_RANGE_S", "Timing", "instance_timing", "plausible_interval", "runs_timing",
           "series_order", "series_timing"]

logger = logging.getLogger(__name__)

#: Frame rate assumed (frames per second) when a multi-frame input says nothing usable
#: about its timing: a common pulsed-fluoroscopy rate.
FALLBACK_FPS = 15.0

#: Plausible time between two frames, seconds (inclusive). X-ray fluoroscopy and cine run
#: at about 0.5-60 frames/s (high-speed cardiac cine at most ~60, low-dose pulsed
#: fluoroscopy down to ~0.5); 1 ms (1000 frames/s) and 60 s (one frame a minute) leave a wide
#: margin on both sides, while the absurd values a broken header gives (1e-320 ms, 1e300 ms,
#: 2147483647 frames/s, 1e-38 frames/s) fall outside and, unchecked, give an infinite or
#: vanishing rate, all-zero times, or a numpy overflow.
INTERVAL_RANGE_S = (0.001, 60.0)
_ROUNDING = 1e-9  # relative slack at the ends of INTERVAL_RANGE_S, for times summed or subtracted


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


def plausible_interval(seconds: float) -> bool:
    """Whether a frame interval (s) lies in :data:`INTERVAL_RANGE_S` (with rounding's slack)."""
    return INTERVAL_RANGE_S[0] * (1 - _ROUNDING) <= seconds <= INTERVAL_RANGE_S[1] * (1 + _ROUNDING)


def _nominal(ds: Dataset, path) -> tuple[float, str] | None:
    """``(fps, attribute)`` from Frame Time or a frame rate attribute, if any is usable;
    one that is present but not usable (not a positive number, or an interval outside
    :data:`INTERVAL_RANGE_S`) is skipped with a warning."""
    frame_time = find(ds, "FrameTime")
    if frame_time is not None:
        ms = _positive_float(frame_time)
        if ms is not None and plausible_interval(ms / 1000.0):
            return 1000.0 / ms, "FrameTime"
        _ignored(path, "FrameTime", frame_time, "ms")
    display = ds.get("FrameDisplaySequence")
    places = [ds] + ([display[0]] if display else [])
    for keyword in ("CineRate", "RecommendedDisplayFrameRate", "RecommendedDisplayFrameRateInFloat"):
        for place in places:
            value = place.get(keyword)
            if value is None or value == "":
                continue
            fps = _positive_float(value)
            if fps is not None and plausible_interval(1.0 / fps):
                return fps, keyword
            _ignored(path, keyword, value, "frames/s")
    return None


def _ignored(path, keyword: str, value, unit: str) -> None:
    low, high = INTERVAL_RANGE_S
    plausible = f"{low * 1000:g}-{high * 1000:g} ms" if unit == "ms" else f"{1 / high:g}-{1 / low:g} frames/s"
    warnings.warn(f"{path}: {keyword} {shown(value)} ignored: not a plausible {unit} value "
                  f"(a number in {plausible})", stacklevel=4)


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


def _checked(times: list[float | None] | None, source: str, nominal, n_frames: int, path,
             bounded_above: bool = True) -> Timing:
    """Timing from absolute or relative ``times`` (s), else the documented fallback.

    Intervals must lie in :data:`INTERVAL_RANGE_S`; with ``bounded_above`` False (separate
    instances of a series, which may be minutes apart) only its lower end applies."""
    if n_frames == 1:
        return Timing(np.zeros(1), nominal[0] if nominal else 0.0, nominal[1] if nominal else "single frame")
    problem = None
    if times is None:
        problem = "no frame timing"
    elif len(times) != n_frames or any(t is None for t in times):
        problem = f"{source} does not give one readable time per frame"
    else:
        with np.errstate(all="ignore"):  # inf - inf and the like: caught just below
            time_s = np.asarray(times, dtype=np.float64) - float(times[0])
            steps = np.diff(time_s)
        low, high = INTERVAL_RANGE_S
        if not np.all(np.isfinite(time_s)) or np.any(steps <= 0):
            problem = f"{source} is not strictly increasing"
        elif steps.min() < low * (1 - _ROUNDING) or (bounded_above and steps.max() > high * (1 + _ROUNDING)):
            bad = steps.min() if steps.min() < low * (1 - _ROUNDING) else steps.max()
            problem = (f"{source} has a frame interval of {bad:g} s, not plausible "
                       f"(must be in [{low:g}, {high:g}] s)" if bounded_above else
                       f"{source} has a frame interval of {bad:g} s, not plausible (must be at least {low:g} s)")
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
    nominal = _nominal(ds, path)
    stamps = per_frame(ds, "FrameAcquisitionDateTime")
    if stamps is not None:
        return _checked(_relative([_datetime(v) for v in stamps]), "FrameAcquisitionDateTime", nominal, n_frames, path)
    vector = ds.get("FrameTimeVector")
    if vector:
        try:
            increments_ms = [float(v) for v in (vector if type(vector).__name__ == "MultiValue" else [vector])]
        except (TypeError, ValueError):
            return _checked([None] * n_frames, "FrameTimeVector", nominal, n_frames, path)
        with np.errstate(all="ignore"):  # an overflow to inf is caught by _checked
            times = list(np.cumsum(increments_ms) / 1000.0)
        return _checked(times, "FrameTimeVector", nominal, n_frames, path)
    return _checked(None, "", nominal, n_frames, path)


def series_timing(datasets: list[Dataset], path: str | PathLike) -> Timing:
    """Timing of a series of single-frame instances, in the order given (module docstring)."""
    nominal = _nominal(datasets[0], path)
    stamps = _relative([_stamp(ds) for ds in datasets])
    sources = sorted({_stamp_source(ds) for ds in datasets} - {None})
    source = " and ".join(sources) or "acquisition or content date-time"
    return _checked(stamps, source, nominal, len(datasets), path, bounded_above=False)


def series_order(datasets: list[Dataset]) -> list[int]:
    """Indices of ``datasets`` in acquisition order: by acquisition (else content) date-time,
    then Instance Number, while every instance has a readable time; else, the times being
    unusable, by Instance Number where every instance has one (an instance without a time is
    not sent to the end); else the timed instances first."""
    stamps = [_stamp(ds) for ds in datasets]
    numbers = [_instance_number(ds) for ds in datasets]
    if any(stamp is None for stamp in stamps) and all(number is not None for number in numbers):
        return sorted(range(len(datasets)), key=lambda i: (numbers[i], i))
    return sorted(range(len(datasets)), key=lambda i: (stamps[i] is None, stamps[i] or datetime.min, numbers[i] or 0, i))


def _instance_number(ds: Dataset) -> int | None:
    """(0020,0013) Instance Number; None when missing or not a whole number."""
    value = ds.get("InstanceNumber")
    try:
        return None if value is None or str(value).strip() == "" else int(value)
    except (TypeError, ValueError):
        return None


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
