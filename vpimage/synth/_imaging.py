"""X-ray imaging of the phantom: geometry, motion, exposure, detector and display.

The chain per pixel: line integral ``P`` of attenuation (Beer-Lambert) -> expected quanta
``N0 * exp(-P)`` (times the collimator's transmission) -> detector blur (Gaussian) ->
Poisson noise -> logarithmic display mapping into ``bits_stored`` bits.

Display mapping (MONOCHROME2, high values bright)::

    P_est  = ln(N0) - ln(max(counts, 0.5))
    stored = round((P_hi - P_est) / (P_hi - P_lo) * (2**bits - 1)), clipped to [0, 2**bits - 1]

MONOCHROME1 stores ``2**bits - 1 - stored``. Outside a circular intensifier field the
image is black.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vpimage.synth._run import FieldOfView, FieldShape

__all__ = [
    "DOSE_QUANTA",
    "Display",
    "ViewTransform",
    "blade_transmission",
    "detector_geometry",
    "expose",
    "frame_times",
    "make_field",
    "motion_mm",
    "tube_output",
]

#: Expected quanta per pixel before the patient, per dose setting ("noiseless": normal
#: dose without Poisson noise). Through ~300 mm of tissue and a vertebral body this leaves
#: about a thousand / a few hundred / a few tens of quanta per pixel.
DOSE_QUANTA = {"high": 4.0e6, "normal": 1.2e6, "low": 1.0e5, "noiseless": 1.2e6}
_BLADE_TRANSMISSION = 0.03  # collimator blades (with scatter): very dark, not black
_WINDOW = 7.0  # width of the displayed range of line integrals


def detector_geometry(size_px: int, rng: np.random.Generator) -> dict:
    """Source/detector distances and pixel sizes: a 112-128 mm field at the isocentre.

    Returns a dict with ``mm_per_px`` (isocentre), ``imager_pixel_spacing_mm``,
    ``source_to_detector_mm`` and ``source_to_patient_mm``.
    """
    fov = rng.uniform(112.0, 128.0)
    sdd = rng.uniform(1000.0, 1200.0)
    spd = rng.uniform(700.0, 800.0)
    mm_per_px = fov / size_px
    return {
        "mm_per_px": mm_per_px,
        "imager_pixel_spacing_mm": mm_per_px * sdd / spd,
        "source_to_detector_mm": sdd,
        "source_to_patient_mm": spd,
    }


def frame_times(n: int, fps: float, jitter: bool, rng: np.random.Generator) -> np.ndarray:
    """Acquisition times, s (``[n]``, first 0); with ``jitter`` each later frame moves by up to 20 %."""
    t = np.arange(n) / fps
    if jitter and n > 1:
        t[1:] += rng.uniform(-0.2, 0.2, n - 1) / fps
    return t


def motion_mm(
    times: np.ndarray,
    *,
    breathing: bool,
    sudden_shift: bool,
    shift_frames: tuple[int, int],
    tilt_rad: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int | None]:
    """Rigid in-plane displacement of the whole patient per frame, image mm ``[n, 2]`` (x, y).

    Breathing: 1-2 mm, period 3-5 s, mostly cranio-caudal; zero at the first frame. A
    sudden shift jumps 3-6 mm at a random frame in ``shift_frames`` (first, last) and stays.
    Returns the displacements and the shift's frame (None without one).
    """
    amplitude, period = rng.uniform(1.0, 2.0), rng.uniform(3.0, 5.0)
    phase, angle = rng.uniform(0.0, 2 * np.pi), rng.uniform(-0.35, 0.35)
    jump_angle, jump = rng.uniform(0.0, 2 * np.pi), rng.uniform(3.0, 6.0)
    shift_at = int(rng.integers(shift_frames[0], shift_frames[1] + 1)) if shift_frames[1] >= shift_frames[0] else None
    offsets = np.zeros((times.size, 2))
    if breathing:
        along = np.sin(2 * np.pi * times / period + phase) - np.sin(phase)
        direction = np.array([np.sin(angle + tilt_rad), np.cos(angle + tilt_rad)])
        offsets += amplitude * along[:, None] * direction
    if sudden_shift and shift_at is not None:
        offsets[shift_at:] += jump * np.array([np.cos(jump_angle), np.sin(jump_angle)])
        return offsets, shift_at
    return offsets, None


def tube_output(
    n: int, *, changes: bool, step_frames: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, int | None]:
    """Tube output per frame relative to the first frame's, ``[n]`` (all 1 without ``changes``).

    As automatic exposure control makes it: 3 % from pulse to pulse (log-normal) and one
    step of 10-30 %, up or down, at a random frame in ``step_frames`` (first, last) that
    stays. Returns the factors and the step's frame (None without changes).
    """
    pulses = np.exp(rng.normal(0.0, 0.03, n))
    step = rng.uniform(1.1, 1.3) ** rng.choice([-1.0, 1.0])
    step_at = int(rng.integers(step_frames[0], step_frames[1] + 1)) if step_frames[1] >= step_frames[0] else None
    if not changes:
        return np.ones(n), None
    output = pulses / pulses[0]
    if step_at is not None:
        output[step_at:] *= step
    return output, step_at


@dataclass(frozen=True)
class ViewTransform:
    """Rigid map from view coordinates (mm at the isocentre) to image pixels.

    ``pixel = (R(tilt) (a - focus) + centre + offset) / mm_per_px`` with pixel ``[x, y]``
    = ``[column, row]`` and the origin at the top-left pixel centre.
    """

    mm_per_px: float
    rows: int
    cols: int
    tilt_rad: float
    focus_mm: tuple[float, float]

    def _rotation(self) -> np.ndarray:
        c, s = np.cos(self.tilt_rad), np.sin(self.tilt_rad)
        return np.array([[c, -s], [s, c]])

    def _centre_mm(self) -> np.ndarray:
        return np.array([(self.cols - 1) / 2, (self.rows - 1) / 2]) * self.mm_per_px

    def to_pixels(self, points_mm: np.ndarray, offset_mm: np.ndarray) -> np.ndarray:
        """View points ``[..., 2]`` (x, y mm) -> pixel ``[..., 2]`` (x=col, y=row)."""
        a = np.asarray(points_mm, dtype=float) - self.focus_mm
        p = a @ self._rotation().T + self._centre_mm() + offset_mm
        return p / self.mm_per_px

    def pixel_grid_mm(self, offset_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """View coordinates (x, y mm) of every pixel centre, each ``[rows, cols]``."""
        rows, cols = np.mgrid[0 : self.rows, 0 : self.cols].astype(float)
        px = cols * self.mm_per_px - self._centre_mm()[0] - offset_mm[0]
        py = rows * self.mm_per_px - self._centre_mm()[1] - offset_mm[1]
        c, s = np.cos(self.tilt_rad), np.sin(self.tilt_rad)
        # Inverse rotation R(-tilt).
        return c * px + s * py + self.focus_mm[0], -s * px + c * py + self.focus_mm[1]


def make_field(shape: str, rows: int, cols: int, rng: np.random.Generator) -> FieldOfView:
    """An intensifier circle (radius 47-49 % of the image) or collimator blades (4-12 % margins)."""
    if FieldShape(shape) is FieldShape.CIRCLE:
        radius = rng.uniform(0.47, 0.49) * min(rows, cols)
        return FieldOfView(FieldShape.CIRCLE, centre_rc=((rows - 1) / 2, (cols - 1) / 2), radius_px=radius)
    m = rng.uniform(0.04, 0.12, 4)
    return FieldOfView(
        FieldShape.RECTANGLE,
        left=int(m[0] * cols),
        right=int(cols - 1 - m[1] * cols),
        top=int(m[2] * rows),
        bottom=int(rows - 1 - m[3] * rows),
    )


def blade_transmission(field: FieldOfView, rows: int, cols: int) -> np.ndarray:
    """Fraction of the quanta reaching each pixel through the collimator, ``[rows, cols]``."""
    if FieldShape(field.shape) is FieldShape.CIRCLE:
        return np.ones((rows, cols))
    return np.where(field.mask(rows, cols), 1.0, _BLADE_TRANSMISSION)


def narrowed_field(
    field: FieldOfView, keep: tuple[float, float, float, float], rows: int, cols: int, rng: np.random.Generator
) -> FieldOfView:
    """Collimator blades closed in on ``field`` (as an operator narrows the beam mid-run).

    Each blade moves in from the field's edge by a random 30-100 % of the room left
    before ``keep`` (``top, bottom, left, right`` px: what must stay in view); a side
    without room stays. Returns the new opening as a rectangle (within the image).
    """
    if FieldShape(field.shape) is FieldShape.CIRCLE:
        (rc, cc), radius = field.centre_rc, field.radius_px
        edges = (rc - radius, rc + radius, cc - radius, cc + radius)
    else:
        edges = (field.top, field.bottom, field.left, field.right)
    top, bottom, left, right = (
        edge + rng.uniform(0.3, 1.0) * max((inner - edge) * sign, 0.0) * sign
        for edge, inner, sign in zip(edges, keep, (1, -1, 1, -1))
    )
    return FieldOfView(
        FieldShape.RECTANGLE,
        left=max(int(np.ceil(left)), 0),
        right=min(int(right), cols - 1),
        top=max(int(np.ceil(top)), 0),
        bottom=min(int(bottom), rows - 1),
    )


def expose(
    line_integral: np.ndarray,
    n0: float,
    transmission: np.ndarray,
    blur_px: float,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Detected quanta per pixel, float ``[rows, cols]`` (no Poisson noise when ``rng`` is None)."""
    expected = n0 * transmission * np.exp(-line_integral)
    if blur_px > 0:
        expected = ndimage.gaussian_filter(expected, blur_px, mode="nearest")
    return rng.poisson(expected).astype(float) if rng is not None else expected


@dataclass(frozen=True)
class Display:
    """Logarithmic display mapping of quanta into stored values (see the module notes).

    Attributes
    ----------
    n0 : float
        Quanta per pixel before the patient.
    p_lo, p_hi : float
        Line integrals shown white and black (MONOCHROME2).
    bits_stored : int
    photometric : str
    """

    n0: float
    p_lo: float
    p_hi: float
    bits_stored: int
    photometric: str

    @classmethod
    def fitted(cls, line_integral: np.ndarray, n0: float, bits_stored: int, photometric: str) -> Display:
        """A window starting just below the least attenuated exposed pixels."""
        p_lo = float(np.percentile(line_integral, 0.5)) - 0.3
        return cls(n0, p_lo, p_lo + _WINDOW, bits_stored, photometric)

    @property
    def max_value(self) -> int:
        return 2**self.bits_stored - 1

    def stored(self, counts: np.ndarray, exposed: np.ndarray) -> np.ndarray:
        """Stored values, uint16 ``[rows, cols]``; ``exposed`` False pixels are black."""
        p_est = np.log(self.n0) - np.log(np.maximum(counts, 0.5))
        level = np.rint((self.p_hi - p_est) / (self.p_hi - self.p_lo) * self.max_value)
        level = np.where(exposed, np.clip(level, 0, self.max_value), 0).astype(np.uint16)
        if self.photometric == "MONOCHROME1":
            level = (self.max_value - level).astype(np.uint16)
        return level

    def as_dict(self) -> dict:
        return {"n0": self.n0, "p_lo": self.p_lo, "p_hi": self.p_hi, "max_value": self.max_value}
