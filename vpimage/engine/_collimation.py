"""Collimator blades that close in during a run (or anything else entering the beam from the field's edge).

An operator narrows the beam mid-run to spare dose. A blade leaves the pixels it covers
far darker than the reference frame showed them (a few per cent of the quanta: several
units of attenuation), and unless it is seen for what it is, those pixels read as cement
and, where they cover the bone that motion is measured on, the motion is lost or
mismeasured. Cement can be as dark, but it never reaches in from the field's edge; the
patient's motion darkens bone that moves in at the edge by about one unit, and the needle
where it crosses the edge: a few blocks. (Dense bone it carries in from where the reference
did not show it, the next vertebra's endplate, darkens by up to 3 and is taken for a blade:
as much as a blade's sliver closed in by a block or two, whose partly covered blocks darken
by 2-3 over most of it. Far from the body that costs edge pixels only.)

Both steps work on the registration grid (block means, ``[grid_rows, grid_cols]``), on the
host, and only for frames whose field edge has darkened (:meth:`Collimation.edge_hits`, on
the engine's device, answers that for a whole batch):

- before registration, in detector coordinates (where blades stay put while the patient
  moves), against the reference as the motion of the frame before places it: the
  darkened blocks along the field's edge (:meth:`Collimation.blades`), left out of the
  bone the frame is registered on (:meth:`Collimation.registration_weight`). Both steps of
  the registration read the frame through the weight where the frame lies (the coarse
  step windows each image in place, OpenCV's ECC warps its mask with the frame), so
  the blades are left out where the detector has them, whatever the motion;
- after registration, in reference coordinates (the patient's motion undone, so only what
  is new is darkened): the darkened blocks along the frame's field edge, with the
  penumbra around them (:meth:`Collimation.covered`): the pixels not measured.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Collimation"]

_EDGE_BLOCKS = 3  # width of the field's edge band, blocks
_OPENING_BLOCKS = 2  # lines up to twice as wide are opened away before blades are joined to the edge, blocks
_SLIVER_BLOCKS = 8  # a blade closed in by less than this is a sliver along the field's edge, blocks
_SMOOTHING_REACH_BLOCKS = 3  # blades kept off the bone registered on by this much more (its smoothing), blocks
# A blade's penumbra beyond ``min_step``: a focal spot of 0.6-1 mm and blades a fifth of the
# way to the detector blur its edge over 2-4 mm, of which a ramp from a fifth of the quanta up
# is left, mm at the isocentre.
PENUMBRA_MM = 2.0
_KEPT_WEIGHTS = 16  # registration weights (and windows) kept for reuse


class Collimation:
    """Finds collimator blades closed in on the field of one study.

    Parameters
    ----------
    kernels : module
        Host (numpy) kernels.
    field : ndarray of bool, [grid_rows, grid_cols]
        The blocks well inside the study's field, detector coordinates.
    min_step : float
        Attenuation rise over the reference that a blade makes, attenuation units.
    min_edge_share : float
        Share of the field's edge band that must be darkened for a frame to be examined.
    block_mm : float
        Side of a block at the isocentre, mm.
    """

    def __init__(self, kernels, field: np.ndarray, *, min_step: float, min_edge_share: float, block_mm: float):
        self.kernels = kernels
        self.field = field
        self.penumbra_blocks = max(int(np.ceil(PENUMBRA_MM / block_mm)), 1)
        self.edge = field & ~kernels.binary_erosion(field, iterations=_EDGE_BLOCKS)
        self.min_step = float(min_step)
        self.min_hits = max(int(np.ceil(min_edge_share * self.edge.sum())), 1)
        self._weights: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def edge_hits(self, coarse, seen, edge):
        """Darkened blocks of each frame's field edge, an integer array ``[B]`` on the frames'
        device (a frame with :attr:`min_hits` or more is examined).

        ``coarse`` ``[B, grid_rows, grid_cols]``: the frames on the registration grid;
        ``seen``: the reference as the frames see it (moved by the patient's last motion);
        ``edge``: :attr:`edge` on their device. (The whole grid is compared and the edge
        counted: selecting the edge's blocks first would wait on a GPU for their number.)
        """
        return ((coarse > seen + self.min_step) & edge).sum((1, 2))

    def blades(self, coarse: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """Blocks darkened from the field's edge in one frame ``coarse`` (detector
        coordinates) against ``seen``, the reference as the frame sees it (moved by the
        patient's last motion), penumbra included: bool ``[grid_rows, grid_cols]``, from
        host float32 ``[grid_rows, grid_cols]`` inputs."""
        return self._with_penumbra(coarse - seen, self.field, self.edge)

    def covered(self, change: np.ndarray, shift_blocks: np.ndarray) -> np.ndarray | None:
        """Blocks a blade covers in reference coordinates, penumbra included, or None.

        ``change`` is the registered frame minus the reference (host float32,
        ``[grid_rows, grid_cols]``), ``shift_blocks`` the frame's ``(dy, dx)`` in blocks:
        the field's edge moves with the frame.
        """
        moved = self.kernels.shift_images(np.stack([self.field, self.edge]), -np.stack([shift_blocks] * 2), order=0)
        blades = self._with_penumbra(change, moved[0], moved[1])
        return blades if blades.any() else None

    def registration_weight(self, mask: np.ndarray, blades: np.ndarray, taper_px: float):
        """``mask`` (the bone blocks motion is measured on) without ``blades`` and
        :data:`_SMOOTHING_REACH_BLOCKS` around them, and its registration window.

        Both steps of the registration read the frame through the weight where the frame
        lies (the coarse step windows each image in place, ECC warps its mask with the
        frame): the blades are left out where the detector has them, whatever the motion.
        The last few weights are kept (blades stay put).
        """
        key = blades.tobytes()
        if key not in self._weights:
            weight = mask & ~self.kernels.binary_dilation(blades, iterations=_SMOOTHING_REACH_BLOCKS)
            if not weight.any():
                weight = mask
            if len(self._weights) >= _KEPT_WEIGHTS:
                self._weights.pop(next(iter(self._weights)))
            self._weights[key] = (weight, self.kernels.registration_window(weight, taper_px=taper_px))
        return self._weights[key]

    def bone_left(self, mask: np.ndarray, blades: np.ndarray, shift_blocks: np.ndarray) -> np.ndarray:
        """``mask`` (bone blocks, reference coordinates) without the ``blades`` (detector
        coordinates) of a frame that moved by ``shift_blocks`` ``(dy, dx)``, where its
        registered image has them, and :data:`_SMOOTHING_REACH_BLOCKS` around them."""
        seen = self.kernels.shift_images(blades[None], -np.round(shift_blocks)[None], order=0)[0]
        left = mask & ~self.kernels.binary_dilation(seen, iterations=_SMOOTHING_REACH_BLOCKS)
        return left if left.any() else mask

    def _with_penumbra(self, change: np.ndarray, field: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """Blocks of ``field`` darkened by ``min_step`` or more that reach in from its ``edge``, and
        :data:`PENUMBRA_MM` around them.

        A blade either reaches in along :attr:`min_hits` of the edge's blocks or more, once
        thin lines are opened away (the motion darkens a line along the needle where it
        crosses the edge, and would join it to a blade), or, closed in only a little, is a
        sliver lying mostly within :data:`_SLIVER_BLOCKS` of the field's edge (broken where
        the edge curves away or crosses the needle, or running on from a wider blade).
        """
        k = self.kernels
        dark = (change > self.min_step) & field
        opened = k.binary_dilation(k.binary_erosion(dark, iterations=_OPENING_BLOCKS), iterations=_OPENING_BLOCKS) & dark
        core = self._components(opened, edge, lambda along, areas: along >= self.min_hits)
        rim = field & ~k.binary_erosion(field, iterations=_SLIVER_BLOCKS)
        core |= self._components(dark & ~core, rim, lambda along, areas: 2 * along > areas)
        return k.binary_dilation(core, iterations=self.penumbra_blocks) & field if core.any() else core

    def _components(self, mask: np.ndarray, edge: np.ndarray, keep) -> np.ndarray:
        """The 8-connected components of ``mask`` for which ``keep(blocks in edge, areas)`` holds."""
        k = self.kernels
        parts = k.components(mask)
        return k.component_mask(parts, keep(k.component_hits(parts, edge), parts.areas))
