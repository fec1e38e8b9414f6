"""A body the field's edge cuts is not found; one the field shows, however tightly, is.

When the exposed field ends inside the body, the side it hides cannot be seen and an
edge of the bone's texture is the strongest fall left. Before the check, 7 of the 12 cuts
below gave corners up to 12-23 mm off at confidence 0.78-1.0 (the others scored low on
their own), and a run so cut stopped on a false breach 8 s early.
"""

from __future__ import annotations

import numpy as np
import pytest
from anatomy_cases import simulate_pre_injection, truth_corners

from vpimage.anatomy import MIN_CONFIDENCE, corner_errors_px, find_anatomy
from vpimage.anatomy._confidence import field_cut_factor
from vpimage.anatomy._frame import BodyFrame
from vpimage.anatomy._sides import Side, field_shows_beyond, fit_side

SEEDS = (2001, 2003, 2004, 2010)


@pytest.fixture(scope="module")
def collimated():
    return {seed: simulate_pre_injection(seed, {"field": "rectangle"}) for seed in SEEDS}


def _field_to(fov: np.ndarray, *, right: float | None = None, left: float | None = None) -> np.ndarray:
    """``fov`` with the columns right of ``right`` (left of ``left``) px closed off."""
    cols = np.arange(fov.shape[1])
    closed = np.zeros(fov.shape[1], bool)
    if right is not None:
        closed |= cols > right
    if left is not None:
        closed |= cols < left
    return fov & ~closed[None, :]


def _walls_x(sim) -> tuple[float, float]:
    """The true anterior and posterior walls' columns, px (the phantom's spine is upright here)."""
    corners = truth_corners(sim).as_array()
    return float(corners[[0, 3], 0].mean()), float(corners[[1, 2], 0].mean())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("share", [0.10, 0.15])
def test_a_field_ending_inside_the_posterior_wall_gives_no_body(collimated, seed, share):
    sim, image, fov = collimated[seed]
    anterior, posterior = _walls_x(sim)
    cut = _field_to(fov, right=posterior - share * (posterior - anterior))
    found = find_anatomy(image, mm_per_px=sim.run.mm_per_px, fov_mask=cut)
    assert found.corners is None and found.confidence < MIN_CONFIDENCE and found.needle is not None
    assert found.reason in ("field_cuts_body", "low_confidence")


@pytest.mark.parametrize("seed", SEEDS)
def test_a_field_ending_inside_the_anterior_wall_gives_no_body(collimated, seed):
    sim, image, fov = collimated[seed]
    anterior, posterior = _walls_x(sim)
    cut = _field_to(fov, left=anterior + 0.10 * (posterior - anterior))
    found = find_anatomy(image, mm_per_px=sim.run.mm_per_px, fov_mask=cut)
    assert found.corners is None and found.confidence < MIN_CONFIDENCE


def test_the_reason_names_the_field_where_the_sides_alone_looked_sure(collimated):
    # Seed 2003, cut 10 %: every side is backed by a clear edge on its whole length
    # (confidence 1.0 without the check), but the posterior one steps down far less than a wall.
    sim, image, fov = collimated[2003]
    anterior, posterior = _walls_x(sim)
    cut = _field_to(fov, right=posterior - 0.1 * (posterior - anterior))
    found = find_anatomy(image, mm_per_px=sim.run.mm_per_px, fov_mask=cut)
    assert found.reason == "field_cuts_body" and min(found.side_support.values()) == 1.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("behind_mm, before_mm", [(6.0, None), (10.0, None), (None, 6.0), (None, 10.0), (6.0, 6.0)])
def test_a_field_that_shows_the_walls_however_tight_still_finds_the_body(collimated, seed, behind_mm, before_mm):
    sim, image, fov = collimated[seed]
    mm = sim.run.mm_per_px
    anterior, posterior = _walls_x(sim)
    tight = _field_to(fov, right=None if behind_mm is None else posterior + behind_mm / mm,
                      left=None if before_mm is None else anterior - before_mm / mm)
    found = find_anatomy(image, mm_per_px=mm, fov_mask=tight)
    assert found.corners is not None and found.confidence >= 0.9 and found.reason == ""
    assert np.max(corner_errors_px(found.corners, truth_corners(sim))) * mm <= 2.0


# The two checks on a hand-made image: frame at the origin, s along image x, t along y, 1 mm/px.
FRAME = BodyFrame(np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), 1.0)


def _back_side(image: np.ndarray) -> Side:
    derivatives = (np.gradient(image, axis=1), np.gradient(image, axis=0))
    weight = np.ones(image.shape, np.float32)
    return fit_side(FRAME, derivatives, weight, "back", 40.0, (10.0, 50.0), 0.01, image)


def test_a_side_steps_down_by_the_contrast_between_its_bands():
    # A wall: 3 inside, 1 outside; an edge within the bone: 3 to 2.6. Flat either side of the
    # edge, the bands 1-3 mm away read exactly the two levels.
    cols = np.arange(80)
    for outside, step in ((1.0, 2.0), (2.6, 0.4)):
        image = np.broadcast_to(np.where(cols < 40, 3.0, outside), (60, 80)).astype(np.float32)
        side = _back_side(image)
        assert side.offset == pytest.approx(39.5, abs=0.5) and side.support == 1.0
        assert side.step == pytest.approx(step, abs=1e-5)


def test_field_shows_beyond_sees_where_the_field_ends():
    side = Side("back", 30.0, 0.0, 0.0, 1.0, 2.0)
    field = np.zeros((60, 80), np.float32)
    field[:, :51] = 1.0  # columns 0-50 exposed
    assert field_shows_beyond(FRAME, field, side, 50.0, (10.0, 50.0))
    assert not field_shows_beyond(FRAME, field, side, 52.0, (10.0, 50.0))
    assert field_shows_beyond(FRAME, field, side, 25.0, (10.0, 50.0))  # the reach is behind the side: nothing to see
    field[5, 40] = 0.0  # a hole outside the stretch looked along
    assert field_shows_beyond(FRAME, field, side, 50.0, (10.0, 50.0))
    field[20, 40] = 0.0
    assert not field_shows_beyond(FRAME, field, side, 50.0, (10.0, 50.0))


@pytest.mark.parametrize("step, factor", [(1.0, 1.0), (0.96, 1.0), (0.84, 0.5), (0.72, 0.0), (0.0, 0.0)])
def test_field_cut_factor_ramps_the_open_side_on_its_share_of_the_others_median_step(step, factor):
    # The others' median step is 1.6: full trust from 0.6 of it (0.96), none at 0.45 (0.72).
    sides = [Side(name, 0.0, 0.0, 0.0, 1.0, s) for name, s in
             (("front", 1.5), ("back", step), ("top", 1.6), ("bottom", 1.7))]
    assert field_cut_factor(sides, (False, True, False, False)) == pytest.approx(factor, abs=1e-9)
    assert field_cut_factor(sides, (False, False, False, False)) == 1.0  # a side the field shows whole counts as it is
