"""A small hand-made fluoroscopy run with exact truth, for the engine's unit tests.

Bone texture, a steel needle and a growing cement ball are attenuation maps (log units)
that move together with breathing; pixels are Poisson counts of I0 * exp(-attenuation), stored log-encoded like the phantom's.
The truth mask is where the ball's chord (projected thickness) exceeds 0.5 mm.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from vpimage.measures import Corners

MM_PER_PX = 0.375
MU_CEMENT = 0.35  # 1/mm
FLOOR_MM = 0.5
P_WHITE = 0.5  # attenuation shown white


@dataclass
class Toy:
    frames: np.ndarray  # float32 [N, R, C]
    time_s: np.ndarray  # [N]
    masks: np.ndarray  # bool [N, R, C]
    corners: Corners  # frame 0
    shifts: np.ndarray  # [N, 2] (dy, dx) px
    mm_per_px: float = MM_PER_PX


@dataclass
class Batch:
    frames: np.ndarray
    time_s: np.ndarray
    index: np.ndarray


def batches(toy: Toy, size: int):
    for start in range(0, len(toy.frames), size):
        stop = start + size
        yield Batch(toy.frames[start:stop], toy.time_s[start:stop], np.arange(start, min(stop, len(toy.frames))))


def make_toy(*, n=24, size=256, fps=5.0, i0=3000.0, pre=5, seed=0, breathing_px=2.0, final_radius_px=35.0):
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[:size, :size].astype(np.float64)
    bone = 1.5 + 0.4 * ndi.gaussian_filter(rng.normal(size=(size, size)), 4) * 8
    body = (c >= 78) & (c <= 178) & (r >= 88) & (r <= 168)
    bone += 0.4 * ndi.gaussian_filter(body.astype(float), 1.0)
    tip = np.array([128.0, 103.0])  # (row, col)
    needle = np.where((np.abs(r - tip[0]) <= 1.5) & (c >= tip[1]), 3.0, 0.0)
    needle = ndi.gaussian_filter(needle, 0.7)
    corners = Corners((78, 88), (178, 88), (178, 168), (78, 168))
    time_s = np.arange(n) / fps
    frames, masks, shifts = [], [], []
    for t_index, t in enumerate(time_s):
        grow = np.clip((t_index - pre + 1) / (n - pre - 2), 0, 1)
        radius_px = final_radius_px * grow
        d = np.hypot(r - tip[0], c - (tip[1] + radius_px * 0.8))
        chord_mm = 2 * np.sqrt(np.clip(radius_px**2 - d**2, 0, None)) * MM_PER_PX
        shift = np.array([breathing_px * np.sin(2 * np.pi * t / 4.0), 0.5 * breathing_px * np.sin(2 * np.pi * t / 3.0)])
        attenuation = ndi.shift(bone + needle + MU_CEMENT * chord_mm, shift, order=1, mode="nearest")
        mask = ndi.shift((chord_mm > FLOOR_MM).astype(float), shift, order=1) > 0.5
        counts = rng.poisson(i0 * np.exp(-attenuation))
        # The phantom's display: 12-bit, logarithmic, 11 units of attenuation from white to black.
        estimate = np.log(i0) - np.log(np.maximum(counts, 0.5))
        frames.append(np.clip(np.rint((P_WHITE + 11.0 - estimate) / 11.0 * 4095), 0, 4095).astype(np.float32))
        masks.append(mask)
        shifts.append(shift)
    return Toy(np.stack(frames), time_s, np.stack(masks), corners, np.stack(shifts))
