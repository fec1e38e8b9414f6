"""Which end of a shaft is its tip: the one deeper in the image, whatever side it enters from.

A frame without a visible border (a flat-panel export; vpimage.io's field source "none")
comes with a field that is all True. Its edge is then the image's: before it counted,
the depths were to a point beyond the top-left corner, and a shaft entering from the
right or the bottom had its hub taken for its tip (the body was then not found).
"""

from __future__ import annotations

import numpy as np
import pytest
from anatomy_cases import simulate_pre_injection

from vpimage.anatomy import MIN_CONFIDENCE, find_anatomy, find_needle

# Lateral: the phantom's needle enters from the image right; the crop keeps the field's inside.
SEED = 11


@pytest.fixture(scope="module")
def borderless():
    """``(image, tip, entry, mm_per_px)``: the phantom's pre-injection image cropped to
    inside its rectangular field (no border left), its needle's true tip and entry, px."""
    sim, image, fov = simulate_pre_injection(SEED, {"field": "rectangle"})
    rows, cols = np.nonzero(fov)
    top, left = rows.min() + 2, cols.min() + 2
    crop = image[top:rows.max() - 1, left:cols.max() - 1]
    tip, entry = (np.asarray(sim.truth["needle"][k]) - [left, top] for k in ("tip_px", "entry_px"))
    return crop, tip, entry, sim.run.mm_per_px


def _turned(image: np.ndarray, points: list[np.ndarray], how: str):
    """``image`` mirrored left-right (``"mirrored"``) and/or transposed, and ``points`` (x, y) px with it."""
    width = image.shape[1]
    if how.startswith("mirrored"):
        image, points = image[:, ::-1], [np.array([width - 1 - p[0], p[1]]) for p in points]
    if how.endswith("transposed"):
        image, points = image.T, [p[::-1] for p in points]
    return np.ascontiguousarray(image), points


@pytest.mark.parametrize("how", ["as_is", "mirrored", "transposed", "mirrored_transposed"])
def test_a_shaft_entering_from_any_side_of_a_borderless_image_has_its_true_tip(borderless, how):
    crop, tip, entry, mm = borderless
    image, (tip, entry) = _turned(crop, [tip, entry], how)
    everywhere = np.ones(image.shape, bool)
    needle = find_needle(image, mm_per_px=mm, fov_mask=everywhere)
    assert np.linalg.norm(np.asarray(needle.tip_px) - tip) * mm <= 1.5
    toward_hub = (entry - tip) / np.linalg.norm(entry - tip)
    assert toward_hub @ needle.direction >= np.cos(np.radians(2.0))


@pytest.mark.parametrize("how", ["as_is", "mirrored"])
def test_the_body_of_a_borderless_image_is_found_whichever_side_the_needle_enters_from(borderless, how):
    crop, tip, _, mm = borderless
    image, (tip,) = _turned(crop, [tip], how)
    found = find_anatomy(image, mm_per_px=mm, fov_mask=None, view="lateral")
    assert found.confidence >= MIN_CONFIDENCE and found.reason == ""
    assert np.linalg.norm(np.asarray(found.needle.tip_px) - tip) * mm <= 1.5
