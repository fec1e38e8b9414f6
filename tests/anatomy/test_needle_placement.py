"""Needles placed where the phantom's draw does not put them: the body is still found right.

Each case moves the phantom's needle (its tip and the pedicle it comes through are the
phantom's truth) and compares the corners found with the truth's.
"""

from __future__ import annotations

import numpy as np
import pytest
from anatomy_cases import simulate_pre_injection, truth_corners

import vpimage.synth._phantom as phantom
from vpimage.anatomy import MIN_CONFIDENCE, corner_errors_px, find_anatomy
from vpimage.synth._needle import Needle, place_needle

SEEDS = (41, 42, 43, 44)


def _through_pedicle(spine, tip: np.ndarray, side: int, length_mm: float, radius_mm: float) -> Needle:
    """A shaft from ``tip`` back through the centre of pedicle ``side`` (0 or 1)."""
    direction = np.asarray(spine.pedicle_centres[side], dtype=np.float64) - tip
    return Needle(tip=tip, direction=direction / np.linalg.norm(direction), length_mm=length_mm, radius_mm=radius_mm)


def _found_error_mm(seed: int, view: str) -> tuple[float, float | None]:
    """``(confidence, largest corner error mm or None)`` of the phantom's pre-injection image."""
    sim, image, fov = simulate_pre_injection(seed, {}, view=view)
    mm = sim.run.mm_per_px
    found = find_anatomy(image, mm_per_px=mm, fov_mask=fov, view=view)
    if found.corners is None:
        return found.confidence, None
    return found.confidence, float(np.max(corner_errors_px(found.corners, truth_corners(sim))) * mm)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("gap_mm", [2.0, 3.0])
@pytest.mark.parametrize("endplate", ["superior", "inferior"])
def test_a_tip_near_an_endplate_finds_that_endplate_not_the_next_bodys(monkeypatch, seed, gap_mm, endplate):
    # As in a collapsed body: the tip 2-3 mm from an endplate. The endplates were looked for
    # from 5 mm of the tip on, and the next body's was taken: on 15 of these 16 cases at
    # confidence 0.70-0.89, the corners 10.5-12.8 mm off (a disc leak was then missed end to end).
    def place(spine, rng):
        drawn = place_needle(spine, rng)
        body, tip = spine.body, drawn.tip.copy()
        if endplate == "inferior":
            tip[1] = float(body.v_bottom(tip[0], tip[2])) - gap_mm
        else:
            tip[1] = float(body.v_top(tip[0], tip[2])) + gap_mm
        side = 0 if drawn.direction[2] < 0 else 1
        return _through_pedicle(spine, tip, side, drawn.length_mm, drawn.radius_mm)

    monkeypatch.setattr(phantom, "place_needle", place)
    confidence, error_mm = _found_error_mm(seed, "lateral")
    if gap_mm >= 3.0:
        assert confidence >= MIN_CONFIDENCE and error_mm is not None
    assert error_mm is None or error_mm <= 1.0  # at 2 mm: right, or (one seed) not found; never far off


@pytest.mark.parametrize("tip_below_mm, medial_share", [(8.0, 0.5), (10.0, 0.5), (4.0, 0.2)])
def test_an_ap_shaft_imaged_steeper_than_45_degrees_keeps_the_outline_upright(monkeypatch, tip_below_mm, medial_share):
    # Caudal angulation larger than the medial one images the shaft at 59-69 degrees from the
    # rows (36 degrees for the last case): the outline was taken turned 90 degrees (62 mm off,
    # confidence 0.64-0.81) or not found at all.
    def place(spine, rng):
        body, pedicle = spine.body, np.asarray(spine.pedicle_centres[0])
        tip = np.array([body.u_anterior + 0.3 * body.depth, body.vc + tip_below_mm, medial_share * pedicle[2]])
        return _through_pedicle(spine, tip, 0, 130.0, 1.3)

    monkeypatch.setattr(phantom, "place_needle", place)
    confidence, error_mm = _found_error_mm(41, "ap")
    assert confidence >= MIN_CONFIDENCE and error_mm is not None and error_mm <= 1.0
