"""What the anatomy finder returns: the needle and the treated body, with a confidence."""

from __future__ import annotations

from dataclasses import dataclass

from vpimage.measures import Corners

__all__ = ["Anatomy", "NeedleTrack"]


@dataclass(frozen=True)
class NeedleTrack:
    """The trocar's shaft as the image shows it.

    Attributes
    ----------
    tip_px : tuple of float
        ``(x, y)`` px of the shaft's inner end (the tip, deepest in the patient).
    direction : tuple of float
        Unit vector ``(dx, dy)`` from the tip toward the hub, along the shaft.
    length_mm : float
        Visible shaft length inside the field, mm at the isocentre.
    width_mm : float
        Shaft width across its axis, mm at the isocentre.
    """

    tip_px: tuple[float, float]
    direction: tuple[float, float]
    length_mm: float
    width_mm: float


@dataclass(frozen=True)
class Anatomy:
    """The treated vertebral body and the needle found in a pre-injection image.

    Attributes
    ----------
    corners : Corners or None
        The body's four corners (CONTRACT.md; in the AP view the outline of the body's
        frontal projection, ``anterior_*`` on the image left), px; None when not found.
    confidence : float
        0 (nothing found) to 1 (every side of the body seen as a clear straight edge, the
        shape plausible, the needle inside it).
    view : str
        ``"lateral"`` or ``"ap"``.
    needle : NeedleTrack or None
        The shaft, None when no needle is seen.
    pedicles_px : tuple of (x, y)
        AP view: centres of the pedicles seen inside the body outline, px (empty when none
        is seen, and always in the lateral view).
    reason : str
        Why ``corners`` is None or the confidence is low (``"needle_not_found"``,
        ``"body_not_found"``, ``"low_confidence"``, ``"field_cuts_body"`` when a side
        the field's edge may hide does not step down as a wall, ``"no_calibration"``);
        ``""`` when the body was found with confidence.
    side_support : dict of str to float
        Share of each side (``anterior``, ``posterior``, ``superior``, ``inferior``) backed
        by a clear edge on the fitted line, 0 to 1.
    """

    corners: Corners | None
    confidence: float
    view: str
    needle: NeedleTrack | None = None
    pedicles_px: tuple[tuple[float, float], ...] = ()
    reason: str = ""
    side_support: dict | None = None

    def to_dict(self) -> dict:
        """JSON-ready form (corners in the WALL.json form)."""
        return {
            "corners": self.corners.to_dict() if self.corners is not None else None,
            "confidence": round(float(self.confidence), 4),
            "view": self.view,
            "needle": None
            if self.needle is None
            else {"tip_px": list(self.needle.tip_px), "direction": list(self.needle.direction),
                  "length_mm": self.needle.length_mm, "width_mm": self.needle.width_mm},
            "pedicles_px": [list(p) for p in self.pedicles_px],
            "reason": self.reason,
            "side_support": self.side_support,
        }
