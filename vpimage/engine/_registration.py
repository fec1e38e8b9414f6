"""Motion of a study's frames against its reference: one translation per frame, measured on bone.

A frame is registered on block means of the bone away from the body (``[grid_rows,
grid_cols]``, blocks of ``factor`` x ``factor`` px, ``segmentation.registration_grid_mm``
wide), where cement does not enter: a whole-pixel cross-correlation of the windowed images,
refined by an enhanced-correlation (ECC) fit of a translation (kernels' ``estimate_shift``).
The reference is the first frame, then the mean of the aligned pre-injection frames (the
engine's :attr:`EngineState.reference`); what the fit works out of the reference alone is
kept while it stays the reference.

Two things a translation does not explain are looked for here:

- collimator blades closed in during the run (:mod:`._collimation`): the bone they cover is
  left out of the bone the frame is registered on, where the detector has them;
- a change of magnification (a zoom mode, the detector or the table moved): a frame whose
  registration score fell below the frames' before is fitted an affine motion, and is
  magnified when that fit explains it and reads the same scale along its rows and its
  columns (:meth:`Registration.magnified`).

The set-up (which blocks, the window) is chosen once per study on the host; the images are
arrays of the engine's kernel backend, on its device.
"""

from __future__ import annotations

import numpy as np

from vpimage.engine._collimation import Collimation

__all__ = ["Registration"]

# The registration's window fade-in and its pre-smoothing, at the frame's own pixels, px.
_TAPER_PX = 16.0
_SMOOTH_PX = 1.5
# A frame is fitted a magnification when its registration score falls this far below the
# score level of the frames before (the median of the last few measured against the
# reference: Engine._score_level). On the phantom a magnification of 1 % lowers the score by
# 0.003-0.006 (2 % by 0.01-0.014); frame to frame it strays by up to 0.0015 (the lowest
# dose), cement entering the bone registered on lowers it by up to 0.046 from one frame to the next.
_SCALE_CHECK_SCORE_DROP = 0.002
# ... and taken as magnified only if the affine fit leaves at most this share of what the
# translation left unexplained (1 - score): on the phantom a magnified frame 0.01-0.5 (0.5 where a
# disc leak's cement lies in the bone), cement alone 0.9-2.3.
_AFFINE_EXPLAINS = 0.7


def _whole_blocks(host, mask: np.ndarray, factor: int) -> np.ndarray:
    """The ``factor`` x ``factor`` px blocks wholly in ``mask`` (host bool ``[rows, cols]``): bool
    ``[rows // factor, cols // factor]``."""
    return host.block_mean(mask.astype(np.float32), factor=factor) > 1.0 - 0.5 / factor**2


class Registration:
    """Where one study's motion is measured, and the translation of its frames against a reference.

    Parameters
    ----------
    kernels, host : module
        The engine's kernel backend, and the numpy kernels (the set-up and the blades are
        worked out on the host).
    weight : ndarray of bool, [rows, cols]
        Host: the pixels motion is measured on (bone inside the field, away from its edge
        and from the body).
    inner_field : ndarray of bool, [rows, cols]
        Host: the field well inside its edge (where collimator blades are looked for).
    factor : int
        Side of the blocks motion is to be measured on, px (>= 1); the frame's own pixels
        (1) are taken when ``weight`` holds no whole block.
    px_per_mm : float
        The pixel size the rules sized in mm are applied at, px per mm.
    reliability : ReliabilityConfig
        ``collimator_min_step``, ``collimator_min_edge_share``, ``min_registration_score``
        and ``max_magnification_change``.
    fill : float
        The attenuation read off the field (the first frame's median inside it).
    to_device : callable
        Host array -> backend array on the engine's device.

    Attributes
    ----------
    factor : int
        Side of the blocks, px.
    frame_shape : tuple of int
        The frame's ``(rows, cols)``.
    weight : ndarray of bool, [rows, cols]
        Device: ``weight`` (the pixel noise is measured on it too).
    mask, host_mask : ndarray of bool, [rows // factor, cols // factor]
        The blocks wholly in ``weight``, on the device and on the host.
    window : ndarray, float32, [rows // factor, cols // factor]
        Device: the coarse step's window over ``mask``.
    level_weight, host_level_weight : ndarray of bool, [rows // factor, cols // factor]
        Every second block of ``mask`` in both directions (as good for a median), where a
        frame's level against the reference is read before registration.
    collimation : Collimation
        The study's collimator blades (host); ``edge`` and ``field`` are its device copies.
    """

    def __init__(self, kernels, host, *, weight, inner_field, factor, px_per_mm, reliability, fill, to_device):
        self.kernels, self._host, self._to_device = kernels, host, to_device
        self._reliability, self.fill = reliability, fill
        grid = _whole_blocks(host, weight, factor)
        if not grid.any():  # a field too small for whole blocks: the frame's own pixels
            factor, grid = 1, weight
        self.factor = factor
        self.frame_shape = weight.shape
        self._bound = np.array(self.frame_shape, dtype=float)
        self.weight, self.mask, self.host_mask = to_device(weight), to_device(grid), grid
        self.window = to_device(host.registration_window(grid, taper_px=_TAPER_PX / factor))
        # Collimator blades are looked for on the same grid, in the blocks wholly in the field.
        field = _whole_blocks(host, inner_field, factor)
        self.collimation = Collimation(
            host,
            field,
            min_step=reliability.collimator_min_step,
            min_edge_share=reliability.collimator_min_edge_share,
            block_mm=factor / px_per_mm,
        )
        self.edge, self.field = to_device(self.collimation.edge), to_device(self.collimation.field)
        sparse = np.zeros_like(grid)
        sparse[::2, ::2] = grid[::2, ::2]
        self.host_level_weight = sparse if sparse.any() else grid
        self.level_weight = to_device(self.host_level_weight)
        self._kept: tuple | None = None  # (reference, its registration_reference)

    @property
    def sizes(self) -> dict[str, float]:
        """The window's fade-in (``taper_px``) and the pre-smoothing (``smooth_px``) on the grid, px."""
        return {"taper_px": _TAPER_PX / self.factor, "smooth_px": _SMOOTH_PX / self.factor}

    def register(self, coarse, examined: np.ndarray, reference, previous_shift: np.ndarray):
        """Host ``(dy, dx)`` px ``[B, 2]`` and scores ``[B]`` of frames given on the grid against
        ``reference`` (the same grid, device) and, for each of the ``examined`` frames (host
        indices) that shows collimator blades, the blocks they cover (detector coordinates; a
        dict).

        The examined frames are taken one after the other: the motion of the frame before
        (``previous_shift``, px, for the first) places the reference where the frame sees it,
        so that blades darken against it and the patient's motion mostly does not. The blocks
        the blades cover are left out of the bone the frame is registered on.

        A refinement that ran off (a frame with no contrast left gives ECC nothing to hold on
        to) measured no motion: it scores 0 (``motion_not_tracked``), and every shift is kept
        within the frame's size (``motion_too_large``), so that moving the frame back stays a
        frame's work.
        """
        k = self.kernels
        shifts, scores = np.zeros((len(coarse), 2)), np.zeros(len(coarse))
        rest = np.setdiff1d(np.arange(len(coarse)), examined)
        if rest.size:
            shifts[rest], scores[rest] = self.estimate(coarse[rest], reference)
        blades = {}
        host_reference = k.to_host(reference) if examined.size else None
        for j in examined.tolist():
            seen = self.seen(host_reference, shifts[j - 1] if j > 0 else previous_shift, self._host)
            # (At the reference's level, as the edge was counted: a frame shown darker whose
            # edge breathing darkened would otherwise be all blade.)
            frame = k.to_host(coarse[j])
            level = self._host.exposure_offset(frame[None], seen, weight=self.host_level_weight)[0]
            found = self.collimation.blades(frame - level, seen)
            if not found.any():
                (shifts[j],), (scores[j],) = self.estimate(coarse[j : j + 1], reference)
                continue
            weight, window = (self._to_device(a) for a in self._without(found))
            (shifts[j],), (scores[j],) = self.estimate(coarse[j : j + 1], reference, weight, window)
            blades[j] = found
        lost = ~(np.isfinite(shifts).all(axis=1) & np.isfinite(scores))
        shifts[lost], scores[lost] = 0.0, 0.0
        np.clip(shifts, -self._bound, self._bound, out=shifts)
        return shifts, scores, blades

    def estimate(self, coarse, reference, weight=None, window=None) -> tuple[np.ndarray, np.ndarray]:
        """Host ``(dy, dx)`` px ``[B, 2]`` and scores ``[B]`` of frames on the grid against
        ``reference``, on ``weight`` (device, and its ``window``; default: :attr:`mask`)."""
        prepared = None
        if weight is None:
            weight, window, prepared = self.mask, self.window, self._prepared(reference)
        shifts, scores = self.kernels.estimate_shift(
            coarse, reference, weight=weight, window=window, prepared=prepared, **self.sizes
        )
        return self.kernels.to_host(shifts) * self.factor, self.kernels.to_host(scores)

    def score_fell(self, scores: np.ndarray, score_level: float) -> np.ndarray:
        """Host bool ``[B]``: the frames whose ``scores`` fell far enough below ``score_level`` (the
        frames' before; NaN: none) to be fitted a magnification, but not so far that the
        translation explains nothing (``motion_not_tracked``, where an affine fit reads noise)."""
        return (scores < score_level - _SCALE_CHECK_SCORE_DROP) & (
            scores >= self._reliability.min_registration_score
        )

    def magnified(self, coarse, reference, shifts: np.ndarray, scores: np.ndarray, checked: np.ndarray, blades: dict):
        """Host bool ``[B]``: the frames given on the grid that are magnified against ``reference``
        (a zoom mode, the detector or the table moved) by more than
        ``reliability.max_magnification_change``, along the rows and the columns alike.

        A translation explains a frame's bone as well as it explained the frames' before
        unless the image changed otherwise: the ``checked`` frames (:meth:`score_fell`) are
        fitted an affine motion (host, slow; kernels' ``estimate_scale``). Cement that enters
        the bone registered on lowers the score as much, but the affine fit explains little of
        it and reads a scale along one axis at most: a frame is magnified when that fit leaves
        at most :data:`_AFFINE_EXPLAINS` of what the translation left unexplained and its
        scales along both axes changed, on the same side. A frame with collimator blades
        (``blades``, as :meth:`register` gives them) is fitted on the bone they leave.
        """
        k = self.kernels
        if not checked.any():
            return np.zeros(len(scores), bool)
        host_reference = k.to_host(reference)
        scales, affine_scores = np.full((len(scores), 2), np.nan), np.zeros(len(scores))

        def fit(frames: np.ndarray, weight: np.ndarray) -> None:
            scales[frames], affine_scores[frames] = self._host.estimate_scale(
                k.to_host(coarse[frames]), host_reference, weight=weight, shifts=shifts[frames] / self.factor,
                smooth_px=self.sizes["smooth_px"],
            )

        # The frames without blades together (one host read), those with blades on their own bone.
        plain = np.flatnonzero(checked & ~np.isin(np.arange(len(scores)), list(blades)))
        if plain.size:
            fit(plain, self.host_mask)
        for j, found in blades.items():
            if checked[j]:
                fit(np.array([j]), self._without(found)[0])
        change, tolerance = scales - 1.0, self._reliability.max_magnification_change
        scaled = (change > tolerance).all(axis=1) | ((change < -tolerance) & (scales > 0)).all(axis=1)
        explained = 1.0 - affine_scores <= _AFFINE_EXPLAINS * (1.0 - scores)
        return checked & scaled & explained

    def seen(self, reference, shift: np.ndarray, kernels):
        """``reference`` (the grid's, on ``kernels``' device) as a frame that moved by ``shift``
        (px) sees it, to the block, so that only what is new darkens against it; off the field
        it reads as the field's middle (no blade darkens against its black there)."""
        on_device = kernels is self.kernels
        move = np.round(shift / self.factor)[None]
        move = self._to_device(move) if on_device else move
        inside = self.field if on_device else self.collimation.field
        return kernels.shift_images(kernels.mask_field(reference, inside, fill=self.fill)[None], move, order=0)[0]

    def pixels_of(self, blocks: np.ndarray) -> np.ndarray:
        """Host ``blocks`` (bool) of the grid -> the frame's pixels ``[rows, cols]`` they cover, a
        block more around them (the last pixels of a penumbra, the frame's rows and columns past
        the grid)."""
        pixels = np.zeros(self.frame_shape, bool)
        fine = blocks.repeat(self.factor, axis=0).repeat(self.factor, axis=1)
        pixels[: fine.shape[0], : fine.shape[1]] = fine
        return self._host.binary_dilation(pixels, iterations=self.factor)

    def _without(self, blades: np.ndarray):
        """Host: :attr:`host_mask` without ``blades`` (and their smoothing's reach), and its window."""
        return self.collimation.registration_weight(self.host_mask, blades, _TAPER_PX / self.factor)

    def _prepared(self, reference):
        """What the registration on the study's bone works out of ``reference`` alone (the kernels'
        ``registration_reference``), kept while it stays the reference (until the baseline)."""
        if self._kept is None or self._kept[0] is not reference:
            prepared = self.kernels.registration_reference(reference, weight=self.mask, window=self.window, **self.sizes)
            self._kept = (reference, prepared)
        return self._kept[1]
