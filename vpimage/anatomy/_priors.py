"""Generic shape priors: where a body's sides may lie around a transpedicular needle tip.

Distances are mm at the isocentre, in the body-aligned frame of :mod:`._frame` (``s``
across the body toward the needle's hub, ``t`` along the spine, toward the feet). They
cover thoracic and lumbar bodies: 20-50 mm deep, 16-35 mm high, 25-65 mm wide; in the
lateral view a transpedicular tip lies in the anterior half of the body and the shaft
leaves it through the posterior wall; in the AP view the tip lies near the body's middle.
The tip may lie as near an endplate as 2 mm (a collapsed body).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRIORS", "ViewPrior"]


@dataclass(frozen=True)
class ViewPrior:
    """Search ranges and plausible sizes for one view, mm.

    Attributes
    ----------
    front_mm, back_mm, top_mm, bottom_mm : (float, float)
        Where each side may lie from the tip, across it.
    mid_height_mm : float
        Half the band around the tip over which the front and back are first placed.
    across_mm, height_mm : (float, float)
        Plausible distance front to back, and top to bottom.
    """

    front_mm: tuple[float, float]
    back_mm: tuple[float, float]
    top_mm: tuple[float, float]
    bottom_mm: tuple[float, float]
    mid_height_mm: float
    across_mm: tuple[float, float]
    height_mm: tuple[float, float]


PRIORS = {
    "lateral": ViewPrior(front_mm=(-25.0, -2.0), back_mm=(8.0, 50.0), top_mm=(-24.0, -2.0), bottom_mm=(2.0, 24.0),
                         mid_height_mm=6.0, across_mm=(20.0, 55.0), height_mm=(16.0, 38.0)),
    "ap": ViewPrior(front_mm=(-40.0, -8.0), back_mm=(8.0, 40.0), top_mm=(-24.0, -2.0), bottom_mm=(2.0, 24.0),
                    mid_height_mm=6.0, across_mm=(25.0, 70.0), height_mm=(16.0, 38.0)),
}
