"""Alert levels of the cement monitor (CONTRACT.md "Alert levels")."""

from __future__ import annotations

from enum import Enum

__all__ = ["AlertLevel"]


class AlertLevel(str, Enum):
    """How urgent a frame is: ``ok`` < ``warn`` < ``stop``, or ``unreliable``.

    ``unreliable`` means the frame could not be measured with confidence; it is never
    reported as ``ok``.
    """

    OK = "ok"
    WARN = "warn"
    STOP = "stop"
    UNRELIABLE = "unreliable"
