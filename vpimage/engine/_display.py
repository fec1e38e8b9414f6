"""The contrast a frame's display shows against the reference.

Fluoroscopy stores frames log-encoded: a change of the display's gain or window (by the
operator, or the system's own image processing) scales every difference of attenuation in a
stored frame by the same factor, bone's as much as cement's. Uncorrected, a frame 10 % brighter
read dense bone as cement. Each frame's gain is measured against the reference on the bone
motion is measured on (kernels' ``contrast_gain``), over the gain a frame of the reference's own
display reads on it, and a frame whose gain is past the tolerances is divided by it (README,
"Changes of display gain").

The gains are read on the registration grid (``[B, grid_rows, grid_cols]``), as arrays of the
engine's kernel backend on its device; what comes back to the host is one gain per frame.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DisplayGain"]

# A contrast gain past the tolerance is measured again without the pixels its fit leaves this many
# robust standard deviations more attenuating (cement; see kernels' contrast_gain). Fewer (3, once
# or twice) also left out the skewed noise of a low-dose frame's dense bone, and moved the gain of
# blade frames of no_leak 3030 (benchmarks/anatomy.py, low dose, blades) from 0.948 to 0.935.
_GAIN_EXCESS_SIGMAS = 5.0


class DisplayGain:
    """The gain of each frame's contrast against the reference, and the gain it is divided by.

    Parameters
    ----------
    kernels : module
        The engine's kernel backend.
    bone : ndarray of bool, [grid_rows, grid_cols]
        The bone motion is measured on (the engine's ``Registration.mask``), on the device.
    tolerance : float
        ``segmentation.display_gain_tolerance``: a frame's gain further than this from 1 is taken out.
    kept_tolerance : float
        ``segmentation.display_gain_kept_tolerance``: as far on the same side as the frame
        before, it is taken out from this on (a display changed and kept).
    to_device : callable
        Host array -> backend array on the engine's device.
    """

    def __init__(self, kernels, bone, *, tolerance: float, kept_tolerance: float, to_device):
        self.kernels, self.bone, self.to_device = kernels, bone, to_device
        self.tolerance, self.kept_tolerance = tolerance, kept_tolerance
        self._unchanged: tuple | None = None  # (reference, the gain frames of its display read on it)

    def gains(self, registered, reference, bone_left: dict, previous: float) -> tuple[np.ndarray, np.ndarray]:
        """Host gains ``[B]`` of the contrast each frame of ``registered`` (``[B, grid_rows,
        grid_cols]``, moved onto the reference) shows against ``reference``, on the bone (for
        ``bone_left``'s frames, those with collimator blades, the bone they leave, device), over
        the gain a frame of the reference's own display reads on it (see :meth:`rebase`): the
        gain each frame is divided by, and the gain measured (NaN where it cannot be).

        The frame is divided by its gain past ``tolerance`` of 1, or past ``kept_tolerance`` on
        the same side as the frame before it (``previous``, its measured gain; NaN: none): a
        display changed and kept by 4.5-6 % read 1.04-1.05, and the frames within the single
        frame's tolerance read dense bone as cement (no_leak 7 stopped from its 43rd frame on).
        Elsewhere the frame is not divided (1), and 0 is the gain of a frame that shows no
        contrast of the reference's (flat or inverted).

        A gain past the kept tolerance is measured again without the pixels its fit leaves
        far more attenuating: a leak's cement, on the little bone blades leave, lifted the
        lower half of the contrast alone and read as a gain of 0.93-0.95 (anterior_leak 3502
        with a collimation change), by which its frames were divided, and the front was read
        far behind the posterior wall."""
        k, bone = self.kernels, self.bone
        unchanged = self._unchanged[1] if self._unchanged and self._unchanged[0] is reference else 1.0
        gain = k.to_host(k.contrast_gain(registered, reference, weight=bone)).astype(np.float64)
        for j, left in bone_left.items():
            gain[j] = k.to_host(k.contrast_gain(registered[j : j + 1], reference, weight=left))[0]
        past = np.flatnonzero(np.abs(gain / unchanged - 1.0) > self.kept_tolerance)
        collimated = np.isin(past, list(bone_left))
        again = {"reference": reference, "excess_sigmas": _GAIN_EXCESS_SIGMAS}
        if not collimated.all():  # (together: one host read per batch)
            plain = past[~collimated]
            images = registered[self.to_device(plain)]
            gain[plain] = k.to_host(k.contrast_gain(images, weight=bone, **again))
        for j in past[collimated]:
            gain[j] = k.to_host(k.contrast_gain(registered[j : j + 1], weight=bone_left[j], **again))[0]
        gain /= unchanged
        away = gain - 1.0  # (NaN compares false: not divided)
        before = np.concatenate([[previous - 1.0], away[:-1]])
        kept = np.minimum(np.abs(away), np.abs(before)) > self.kept_tolerance
        divided = (np.abs(away) > self.tolerance) | (kept & (np.sign(away) == np.sign(before)))
        return np.where(divided, gain, 1.0).clip(min=0.0), gain

    def rebase(self, frames: list, reference) -> None:
        """``reference`` is now the mean of ``frames`` (registration grid, each read at its
        contrast): the gain a frame of their display reads on it is their median gain against
        it (1 where it cannot be measured).

        A single frame's noise is in it whole, the mean's partly averaged out; at the lowest
        dose the noise of log-encoded frames is skewed, and a frame read a gain of 0.97-0.99
        against the baseline of its own display from the freeze on."""
        k = self.kernels
        gains = [k.to_host(k.contrast_gain(frame[None], reference, weight=self.bone))[0] for frame in frames]
        gain = float(np.median(gains))
        self._unchanged = (reference, gain if math.isfinite(gain) and gain > 0 else 1.0)
