"""The fluoroscopy run that the phantom renders and the DICOM writer stores."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

__all__ = ["FieldOfView", "FieldShape", "FluoroRun"]


class FieldShape(str, Enum):
    """Shape of the exposed field on the detector."""

    CIRCLE = "circle"  # image-intensifier field: black outside a circle
    RECTANGLE = "rectangle"  # collimator blades


@dataclass(frozen=True)
class FieldOfView:
    """The exposed part of the image, in pixels (rows and columns, 0-based).

    A circle is given by ``centre_rc`` and ``radius_px``; a rectangle by
    ``left``, ``right``, ``top``, ``bottom`` (inclusive pixel indices), as DICOM
    shutter attributes give them (there 1-based).
    """

    shape: FieldShape
    centre_rc: tuple[float, float] | None = None
    radius_px: float | None = None
    left: int | None = None
    right: int | None = None
    top: int | None = None
    bottom: int | None = None

    def mask(self, rows: int, columns: int) -> np.ndarray:
        """Boolean mask ``[rows, cols]``, True where the field is exposed."""
        r, c = np.mgrid[0:rows, 0:columns]
        if FieldShape(self.shape) is FieldShape.CIRCLE:
            rc, cc = self.centre_rc
            return (r - rc) ** 2 + (c - cc) ** 2 <= self.radius_px**2
        return (r >= self.top) & (r <= self.bottom) & (c >= self.left) & (c <= self.right)


@dataclass(frozen=True)
class FluoroRun:
    """One fluoroscopy run as stored: pixels, timing, geometry.

    Attributes
    ----------
    frames : ndarray, uint16, shape [frames, rows, cols]
        Stored pixel values (already inverted when ``photometric`` is MONOCHROME1),
        all below ``2 ** bits_stored``.
    time_s : ndarray, float64, shape [frames]
        Acquisition time of each frame in seconds from the first (``time_s[0] == 0``).
    fps : float
        Nominal frame rate (Cine Rate), frames per second.
    bits_stored : int
        10 to 12.
    photometric : str
        ``"MONOCHROME1"`` (low values white) or ``"MONOCHROME2"`` (low values black).
    imager_pixel_spacing_mm : float
        Pixel pitch on the detector (square pixels), mm.
    source_to_detector_mm, source_to_patient_mm : float
        Distances from the focal spot to the detector and to the isocentre, mm.
    view : str
        ``"lateral"`` or ``"ap"``.
    positioner_primary_deg, positioner_secondary_deg : float
        DICOM Positioner Primary Angle (LAO +, RAO -) and Secondary Angle (CRA +, CAU -).
    field : FieldOfView
        The exposed field (circular intensifier field or rectangular collimation).
    """

    frames: np.ndarray
    time_s: np.ndarray
    fps: float
    bits_stored: int
    photometric: str
    imager_pixel_spacing_mm: float
    source_to_detector_mm: float
    source_to_patient_mm: float
    view: str
    positioner_primary_deg: float
    positioner_secondary_deg: float
    field: FieldOfView

    @property
    def magnification(self) -> float:
        """Geometric magnification of the isocentre onto the detector."""
        return self.source_to_detector_mm / self.source_to_patient_mm

    @property
    def mm_per_px(self) -> float:
        """Pixel size at the isocentre, mm."""
        return self.imager_pixel_spacing_mm / self.magnification

    @property
    def jittered(self) -> bool:
        """True when frame intervals are not all equal (a Frame Time Vector is needed)."""
        dt = np.diff(self.time_s)
        return dt.size > 0 and bool(np.ptp(dt) > 1e-6)
