"""Frame by frame: the beam's line integral through the moving scene, then the detector.

Per frame, every pixel centre is mapped back into view coordinates (mm, through the
frame's rigid motion and the spine's tilt) and the line integral of attenuation is summed
from the trunk's soft tissue (analytic chord), the bony spine and the cement (bilinear
samples of their projections) and the steel trocar (exact chord).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vpimage.synth._anatomy import MU_PER_MM, Grid, Spine, soft_tissue_path_mm
from vpimage.synth._imaging import DOSE_QUANTA, Display, ViewTransform, blade_transmission, expose
from vpimage.synth._needle import Needle
from vpimage.synth._run import FieldOfView, FieldShape
from vpimage.synth._truth import VISIBILITY_FLOOR_MM

__all__ = ["MU_CEMENT_EXCESS_PER_MM", "Projection", "Rendered", "render"]

#: Attenuation the cement adds over the marrow or tissue it displaces, per mm.
MU_CEMENT_EXCESS_PER_MM = MU_PER_MM["cement"] - MU_PER_MM["soft"]


@dataclass(frozen=True)
class Projection:
    """Maps on a projection grid: ``image [..., nx, ny]``, sample ``[0, 0]`` at ``origin_mm``.

    ``x`` is ``u`` (lateral) or ``w`` (AP), ``y`` is ``v``; samples ``spacing_mm`` apart.
    """

    image: np.ndarray
    origin_mm: tuple[float, float]
    spacing_mm: float

    @classmethod
    def of_grid(cls, image: np.ndarray, grid: Grid, view: str) -> Projection:
        """The projection of ``grid`` along the view's beam."""
        x0 = grid.origin_mm[0] if view == "lateral" else grid.origin_mm[2]
        return cls(image, (x0, grid.origin_mm[1]), grid.spacing_mm)

    def sample(self, x: np.ndarray, y: np.ndarray, index=()) -> np.ndarray:
        """Bilinear samples of ``image[index]`` at view points ``x, y`` (mm); 0 outside."""
        coords = np.stack([(x - self.origin_mm[0]) / self.spacing_mm, (y - self.origin_mm[1]) / self.spacing_mm])
        return ndimage.map_coordinates(self.image[index], coords, order=1, mode="constant", cval=0.0)


@dataclass(frozen=True)
class Rendered:
    """The rendered frames and what the truth needs of them.

    Attributes
    ----------
    frames : ndarray, uint16, shape [frames, rows, cols]
    thickness_mm : ndarray, float32, shape [frames, rows, cols]
        Projected cement thickness, mm.
    needle_masks : ndarray, bool, shape [frames, rows, cols]
    leak_masks : ndarray, bool, shape [frames, rows, cols]
        Where cement of the leak compartment (outside the body, in 3-D) shows above the
        visibility floor, wherever it projects.
    display : Display
    """

    frames: np.ndarray
    thickness_mm: np.ndarray
    needle_masks: np.ndarray
    leak_masks: np.ndarray
    display: Display


def render(
    spine: Spine,
    needle: Needle,
    bone: Projection,
    cement: Projection,
    leak: Projection,
    *,
    transform: ViewTransform,
    offsets_mm: np.ndarray,
    tube_output: np.ndarray,
    field: FieldOfView,
    options,
    noise_rng: np.random.Generator,
    narrowed: tuple[int, FieldOfView] | None = None,
    withdrawn: tuple[int, Needle] | None = None,
) -> Rendered:
    """Image the scene once per frame.

    Parameters
    ----------
    spine, needle : Spine, Needle
    bone : Projection
        Excess line integral of the bony spine (dimensionless), ``[nx, ny]``.
    cement, leak : Projection
        Cumulative projected cement thickness, all and outside the body, mm, ``[frames, nx, ny]``.
    transform : ViewTransform
    offsets_mm : ndarray, shape [frames, 2]
        Rigid motion of the patient per frame, image mm.
    tube_output : ndarray, shape [frames]
        Quanta per frame relative to the first frame's (the display keeps the first's mapping).
    field : FieldOfView
    options : SynthOptions
    noise_rng : numpy.random.Generator
        Poisson noise (unused with ``options.dose == "noiseless"``).
    narrowed : (int, FieldOfView), optional
        From this frame on, collimator blades also cover everything outside this opening.
    withdrawn : (int, Needle), optional
        From this frame on, the needle is this one (pulled back along its shaft).
    """
    o = options
    n, size, view = o.frames, o.size_px, o.view
    transmission = blade_transmission(field, size, size)
    if narrowed is not None:
        narrowed_from, opening = narrowed
        closed_in = np.minimum(transmission, blade_transmission(opening, size, size))
    circle = FieldShape(field.shape) is FieldShape.CIRCLE
    exposed = field.mask(size, size) if circle else np.ones((size, size), bool)
    n0 = DOSE_QUANTA[o.dose]
    noise = None if o.dose == "noiseless" else noise_rng
    frames = np.empty((n, size, size), np.uint16)
    thickness = np.empty((n, size, size), np.float32)
    needle_masks = np.empty((n, size, size), bool)
    leak_masks = np.zeros((n, size, size), bool)
    display = None
    for f in range(n):
        x, y = transform.pixel_grid_mm(offsets_mm[f])
        steel = (withdrawn[1] if withdrawn is not None and f >= withdrawn[0] else needle).path_mm(x, y, view)
        thickness[f] = cement.sample(x, y, f)
        if leak.image[f].any():
            leak_masks[f] = leak.sample(x, y, f) > VISIBILITY_FLOOR_MM
        p = (
            MU_PER_MM["soft"] * soft_tissue_path_mm(spine, x, view)
            + bone.sample(x, y)
            + (MU_PER_MM["steel"] - MU_PER_MM["soft"]) * steel
            + MU_CEMENT_EXCESS_PER_MM * thickness[f]
        )
        if display is None:
            display = Display.fitted(p[exposed], n0, o.bits_stored, o.photometric)
        through = closed_in if narrowed is not None and f >= narrowed_from else transmission
        frames[f] = display.stored(expose(p, n0 * tube_output[f], through, o.blur_px, noise), exposed)
        needle_masks[f] = steel > 0
    return Rendered(frames, thickness, needle_masks, leak_masks, display)
