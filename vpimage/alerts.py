"""Alert levels of the cement monitor and their hold-time state machine (CONTRACT.md "Alert levels").

A frame's own level comes from :func:`frame_level`; :class:`AlertStateMachine` turns the
sequence of frame levels into the reported level, with the contract's hold rule;
:func:`events` lists the changes of the reported level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Iterator, Mapping

from vpimage.errors import ArgumentError
from vpimage.measures import LEAK_CLASSES

__all__ = ["BODY_SIZE_IMPLAUSIBLE", "FRONT_HIDDEN", "LEAK_UNCERTAIN", "MAGNIFICATION_UNKNOWN", "NEEDLE_ENTERS_ANTERIOR", "OBLIQUE_VIEW", "PIXELS_TOO_COARSE", "WHITE_LEVEL_UNREACHED", "AlertLevel", "AlertStateMachine", "AlertThresholds", "events", "frame_level"]

# Doubts: why a frame that does not stop could be worse than it measures. The reason of such
# a frame when it is unreliable; after a warn's own reasons when it meets warn.
#: The front may run on unseen (in the needle's shadow) to within the stop distance.
FRONT_HIDDEN = "front_hidden"
#: Cement beyond the body's outline, too small to call a leak.
LEAK_UNCERTAIN = "leak_uncertain"
#: An oblique view: the distance to the wall line is not the lateral view's.
OBLIQUE_VIEW = "oblique_view"
#: Millimetres at the detector plane (no magnification in the header): distances read too
#: large by the unknown magnification, so a front nearer the wall than it reads.
MAGNIFICATION_UNKNOWN = "magnification_unknown"
#: The needle enters the body through the side the drawn corners call anterior: anterior and
#: posterior are probably swapped, and the wall measured against is then the anterior one.
NEEDLE_ENTERS_ANTERIOR = "needle_enters_anterior"
#: The corners span a depth or height no vertebral body has at the study's pixel size: they
#: were drawn for another image or scale, or the pixel size is wrong, and so are the distances.
BODY_SIZE_IMPLAUSIBLE = "body_size_implausible"
#: The stop distance spans few pixels (``reliability.min_stop_px``): the front is placed to a
#: pixel, so it may lie up to a pixel nearer the wall than it reads, a good part of ``stop_mm``.
PIXELS_TOO_COARSE = "pixels_too_coarse"
#: The first frame's exposed values span a small part of the white level (the top of the
#: stored range the header declares): if the data use less of that range than it says, the
#: log-encoded display's contrast, cement's included, reads as many times too small.
WHITE_LEVEL_UNREACHED = "white_level_unreached"


class AlertLevel(str, Enum):
    """How urgent a frame is: ``ok`` < ``warn`` < ``stop``, or ``unreliable``.

    ``unreliable`` means the frame could not be measured with confidence; it is never
    reported as ``ok``.
    """

    OK = "ok"
    WARN = "warn"
    STOP = "stop"
    UNRELIABLE = "unreliable"

    @property
    def rank(self) -> int:
        """Precedence in reports: ok < unreliable < warn < stop.

        A held ``warn`` or ``stop`` outranks ``unreliable``, and ``unreliable`` outranks
        ``ok``; ``max(levels, key=lambda level: level.rank)`` is the study's worst level.
        """
        return _RANK[self]


_RANK = {AlertLevel.OK: 0, AlertLevel.UNRELIABLE: 1, AlertLevel.WARN: 2, AlertLevel.STOP: 3}

# Levels a leak class may raise.
_LEAK_LEVELS = (AlertLevel.OK, AlertLevel.WARN, AlertLevel.STOP)

# Tolerance on times (s): frame times are sums of float intervals.
_TIME_EPS_S = 1e-9


def _default_leak_levels() -> Mapping[str, AlertLevel]:
    return {name: AlertLevel.STOP for name in LEAK_CLASSES}


class _LeakLevels(Mapping):
    """Read-only leak class -> level mapping that can be hashed and pickled (unlike a
    mappingproxy), so that thresholds travel to worker processes."""

    __slots__ = ("_items",)

    def __init__(self, levels: Mapping[str, AlertLevel]):
        self._items = tuple((name, levels[name]) for name in LEAK_CLASSES)

    def __getitem__(self, name: str) -> AlertLevel:
        for key, level in self._items:
            if key == name:
                return level
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __getstate__(self):
        return self._items

    def __setstate__(self, items):
        self._items = items

    def __repr__(self) -> str:
        return repr(dict(self._items))


@dataclass(frozen=True)
class AlertThresholds:
    """Thresholds of the alert levels (CONTRACT.md defaults).

    Attributes
    ----------
    warn_mm : float
        ``warn`` when the front is this close to the posterior wall or closer, mm.
    stop_mm : float
        ``stop`` when the front is this close or closer, mm (<= ``warn_mm``); a breach
        (front behind the wall) always stops.
    hidden_stop_mm : float
        ``stop`` also when the front seen is this close or closer and cement could run on
        unseen from it (in the needle's shadow) to within ``stop_mm`` of the wall, mm.
        At 3.5 mm, about the posterior tenth of a body, the front seen is already past
        the posterior quarter where clinicians stop; at ``stop_mm`` or less the front seen
        alone decides, as CONTRACT.md lists the levels.
    warn_depth_fraction : float
        ``warn`` when the most posterior cement is this deep or deeper (0 anterior wall,
        1 posterior wall).
    hold_s : float
        A level is left only after it has not been met for this long, s.
    leak_levels : mapping of str to AlertLevel
        The level each leak class raises (``ok``, ``warn`` or ``stop``); classes not
        given keep the default ``stop``.

    Raises
    ------
    ValueError
        A value out of range or an unknown leak class or level.
    """

    warn_mm: float = 5.0
    stop_mm: float = 2.0
    hidden_stop_mm: float = 3.5
    warn_depth_fraction: float = 0.75
    hold_s: float = 0.5
    leak_levels: Mapping[str, AlertLevel] = field(default_factory=_default_leak_levels)

    def __post_init__(self):
        for name in ("warn_mm", "stop_mm", "hidden_stop_mm", "warn_depth_fraction", "hold_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ArgumentError(f"`{name}` must be a finite number; got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.stop_mm < 0:
            raise ArgumentError(f"`stop_mm` must be >= 0; got {self.stop_mm!r}")
        if self.warn_mm < self.stop_mm:
            raise ArgumentError(f"`warn_mm` ({self.warn_mm}) must be >= `stop_mm` ({self.stop_mm})")
        if self.hidden_stop_mm < 0:
            raise ArgumentError(f"`hidden_stop_mm` must be >= 0; got {self.hidden_stop_mm!r}")
        if not 0 < self.warn_depth_fraction <= 1:
            raise ArgumentError(f"`warn_depth_fraction` must be in (0, 1]; got {self.warn_depth_fraction!r}")
        if self.hold_s < 0:
            raise ArgumentError(f"`hold_s` must be >= 0; got {self.hold_s!r}")
        levels = dict(_default_leak_levels())
        for name, level in dict(self.leak_levels).items():
            if name not in LEAK_CLASSES:
                raise ArgumentError(f"unknown leak class {name!r} in `leak_levels`; known: {', '.join(LEAK_CLASSES)}")
            try:
                level = AlertLevel(level)
            except ValueError:
                level = None
            if level not in _LEAK_LEVELS:
                raise ArgumentError(f"leak class {name!r} must raise one of ok, warn, stop; got {self.leak_levels[name]!r}")
            levels[name] = level
        object.__setattr__(self, "leak_levels", _LeakLevels(levels))


def frame_level(
    *,
    front_to_wall_mm: float,
    depth_fraction: float,
    leak_classes: Iterable[str],
    reliable: bool,
    unreliable_reason: str,
    thresholds: AlertThresholds,
    hidden_front_to_wall_mm: float = math.nan,
    stray_cement_mm2: float = 0.0,
    caveat: str = "",
) -> tuple[AlertLevel, str]:
    """The level one frame meets on its own, and why.

    Parameters
    ----------
    front_to_wall_mm : float
        Signed distance of the cement front to the posterior wall, mm; NaN when unknown.
    depth_fraction : float
        Depth of the most posterior cement (0 anterior wall, 1 posterior wall); NaN when
        unknown.
    leak_classes : iterable of str
        Leak classes found in the frame.
    reliable : bool
        False when the frame could not be measured with confidence.
    unreliable_reason : str
        Why not (used when ``reliable`` is False).
    thresholds : AlertThresholds
    hidden_front_to_wall_mm : float, optional
        Signed distance to the posterior wall of cement that could lie unseen beyond the
        front (in the needle's shadow), mm; NaN when none could.
    stray_cement_mm2 : float, optional
        Cement beyond the body's outline that no leak class counts (too little), mm2. A
        leak's first pixels are such: a frame with some that meets no higher level than a
        leak there could raise is ``unreliable`` (reason :data:`LEAK_UNCERTAIN`).
    caveat : str, optional
        Why the measures may understate the danger although they were taken (e.g.
        :data:`OBLIQUE_VIEW`): a frame that meets ``stop`` still stops, one that meets
        ``warn`` warns with the caveat after its reasons, any other is ``unreliable`` with
        this reason, never ``ok``.

    Returns
    -------
    (AlertLevel, str)
        ``unreliable`` with ``unreliable_reason`` for an unreliable frame; else the
        highest of ``stop``, ``warn``, ``ok`` whose condition holds, with every condition
        of that level joined by ``"; "`` (empty for ``ok``). Unseen cement that could be
        within ``stop_mm`` of the wall stops a frame whose front seen is within
        ``hidden_stop_mm``; a frame farther that does not meet ``stop`` otherwise cannot tell
        ``stop`` from less: it is ``warn`` when it meets that (the least it is, with the
        doubt, :data:`FRONT_HIDDEN`, after its reasons), else ``unreliable``. Stray cement
        and a ``caveat`` are doubts of the same kind. A level is never lowered by a doubt, so
        the hold rule sees every ``warn`` a frame meets.
    """
    if not reliable:
        return AlertLevel.UNRELIABLE, unreliable_reason or "unreliable"
    met: dict[AlertLevel, list[str]] = {AlertLevel.STOP: [], AlertLevel.WARN: []}
    d = front_to_wall_mm
    if d < 0:
        met[AlertLevel.STOP].append(f"breach: front {-d:.1f} mm behind the posterior wall")
    elif d <= thresholds.stop_mm:
        met[AlertLevel.STOP].append(f"front {d:.1f} mm from the wall (stop <= {thresholds.stop_mm:g} mm)")
    elif d <= thresholds.warn_mm:
        met[AlertLevel.WARN].append(f"front {d:.1f} mm from the wall (warn <= {thresholds.warn_mm:g} mm)")
    if depth_fraction >= thresholds.warn_depth_fraction:
        met[AlertLevel.WARN].append(
            f"depth fraction {depth_fraction:.2f} (warn >= {thresholds.warn_depth_fraction:g})"
        )
    hidden = hidden_front_to_wall_mm
    where = f"{hidden:.1f} mm from" if hidden >= 0 else f"{-hidden:.1f} mm behind"
    hidden_near = hidden <= thresholds.stop_mm and not met[AlertLevel.STOP]
    if hidden_near and d <= thresholds.hidden_stop_mm:
        met[AlertLevel.STOP].append(
            f"front {d:.1f} mm from the wall, unseen cement beyond it could lie {where} the wall "
            f"(stop <= {thresholds.hidden_stop_mm:g} mm with the front hidden)"
        )
    for name in sorted(set(leak_classes), key=LEAK_CLASSES.index):
        level = thresholds.leak_levels[name]
        if level in met:
            met[level].append(f"leak: {name}")
    if met[AlertLevel.STOP]:
        return AlertLevel.STOP, "; ".join(met[AlertLevel.STOP])
    # Doubts, why the frame could be worse than it measures: a warn it meets stands (it is the
    # least the frame is) with them after its reasons; a frame that meets none is unreliable.
    higher = {AlertLevel.STOP} if met[AlertLevel.WARN] else {AlertLevel.WARN, AlertLevel.STOP}
    doubts = []
    if hidden_near:
        doubts.append(f"{FRONT_HIDDEN}: unseen cement could lie {where} the wall (stop <= {thresholds.stop_mm:g} mm)")
    if stray_cement_mm2 > 0 and higher & set(thresholds.leak_levels.values()):  # a leak there could raise it
        doubts.append(
            f"{LEAK_UNCERTAIN}: {stray_cement_mm2:.2f} mm2 of cement beyond the body's outline, too little to call a leak"
        )
    if caveat:
        doubts.append(caveat)
    if met[AlertLevel.WARN]:
        return AlertLevel.WARN, "; ".join(met[AlertLevel.WARN] + doubts)
    if doubts:
        return AlertLevel.UNRELIABLE, "; ".join(doubts)
    return AlertLevel.OK, ""


class AlertStateMachine:
    """The reported alert level, frame after frame, with the hold rule.

    CONTRACT.md: a level is entered on the first frame that meets it and left only after
    it has not been met for ``hold_s``. A frame meeting ``stop`` also meets ``warn``, so
    when a held ``stop`` expires a ``warn`` met within the hold time remains.

    ``unreliable`` follows the same rule (an unreliable frame "meets" it), and the reported
    level is the highest held one in the order ok < unreliable < warn < stop: a held
    ``warn`` or ``stop`` outranks an unreliable frame (an image that turns poor does not
    silence an alarm), an unreliable frame is never reported ``ok``, and the frames within
    ``hold_s`` after the last unreliable one are not ``ok`` either (no flapping between
    ``ok`` and ``unreliable``).

    Parameters
    ----------
    thresholds : AlertThresholds
        Only ``hold_s`` is used here.
    """

    def __init__(self, thresholds: AlertThresholds):
        self.hold_s = thresholds.hold_s
        self._last_met: dict[AlertLevel, tuple[float, str]] = {}
        self._time_s = -math.inf

    @property
    def last_time_s(self) -> float:
        """Time of the last frame fed, s; -inf before the first."""
        return self._time_s

    def update(self, time_s: float, level: AlertLevel | str, reason: str) -> tuple[AlertLevel, str]:
        """Feed one frame's own level (from :func:`frame_level`); return the reported level.

        Parameters
        ----------
        time_s : float
            Time of the frame, s; finite and non-decreasing.
        level : AlertLevel or str
            The level the frame meets.
        reason : str
            Why.

        Returns
        -------
        (AlertLevel, str)
            The reported level and its reason. A level kept by the hold rule on a frame
            that does not meet it has ``"held: "`` before the reason of the last frame
            that met it.
        """
        level = AlertLevel(level)
        if not (math.isfinite(time_s) and time_s >= self._time_s):  # (NaN would hold nothing)
            raise ArgumentError(f"frame times must be finite and not decrease: {time_s!r} after {self._time_s!r}")
        self._time_s = time_s
        if level is AlertLevel.UNRELIABLE:
            met_now = (level,)
        else:
            met_now = tuple(met for met in (AlertLevel.WARN, AlertLevel.STOP) if met.rank <= level.rank)
        for met in met_now:
            self._last_met[met] = (time_s, reason)
        for held in (AlertLevel.STOP, AlertLevel.WARN, AlertLevel.UNRELIABLE):
            since_s, held_reason = self._last_met.get(held, (-math.inf, ""))
            if held in met_now:  # (not by time: a frame at the same time as the one that met it holds it)
                return held, held_reason
            if time_s - since_s < self.hold_s - _TIME_EPS_S:
                return held, f"held: {held_reason}"
        return AlertLevel.OK, ""


def events(results: Iterable) -> list[dict]:
    """The changes of the reported alert level, in time order.

    Parameters
    ----------
    results : iterable of FrameResult
        Or any objects with ``frame``, ``time_s``, ``alert`` and ``reason``, in time order.

    Returns
    -------
    list of dict
        ``{"frame", "time_s", "level", "reason"}`` for each frame whose level differs from
        the previous frame's; the level before the first frame counts as ``ok``.
    """
    changes = []
    previous = AlertLevel.OK
    for result in results:
        level = AlertLevel(result.alert)
        if level is not previous:
            changes.append(
                {"frame": int(result.frame), "time_s": float(result.time_s), "level": level.value, "reason": result.reason}
            )
            previous = level
    return changes
