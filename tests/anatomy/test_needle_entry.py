"""Which side of the body a needle enters through, on hand-drawn bodies and needles."""

from __future__ import annotations

import math

import pytest
from anatomy_cases import simulate_pre_injection, truth_corners

from vpimage.anatomy import NeedleTrack, find_needle, needle_entry_side
from vpimage.measures import Corners

# A 40 x 30 px body, anterior on the left: the posterior wall is the line x = 50.
BODY = Corners((10, 20), (50, 20), (50, 50), (10, 50))
MIRRORED = Corners((50, 20), (10, 20), (10, 50), (50, 50))  # the same body, anterior and posterior swapped


def needle(tip, degrees: float) -> NeedleTrack:
    """A needle at ``tip`` whose shaft runs toward the hub at ``degrees`` (0: +x, 90: +y)."""
    return NeedleTrack(tip, (math.cos(math.radians(degrees)), math.sin(math.radians(degrees))), 60.0, 2.0)


@pytest.mark.parametrize(
    ("tip", "degrees", "side"),
    [
        ((20, 35), 0, "posterior"),  # straight back
        ((20, 35), 180, "anterior"),
        ((30, 30), -90, "superior"),
        ((30, 40), 90, "inferior"),
        # Up and back at 30 deg from (40, 30): x = 50 after 11.5 px of shaft, y = 20 after 20 px.
        ((40, 30), -30, "posterior"),
        ((40, 25), -60, "superior"),  # y = 20 after 5.8 px of shaft, x = 50 after 20 px
    ],
)
def test_the_side_the_shaft_leaves_through_from_the_tip(tip, degrees, side):
    assert needle_entry_side(BODY, needle(tip, degrees)) == side


def test_swapped_corners_make_the_posterior_entry_anterior():
    assert needle_entry_side(MIRRORED, needle((20, 35), 0)) == "anterior"


@pytest.mark.parametrize("tip", [(60, 35), (5, 35), (30, 10), (30, 50)])  # outside; on the inferior endplate
def test_a_tip_outside_the_body_enters_no_side(tip):
    assert needle_entry_side(BODY, needle(tip, 0)) is None


def test_the_phantoms_transpedicular_needle_enters_through_the_posterior_wall():
    sim, image, fov = simulate_pre_injection(2200, {"tilt_deg": 20.0})
    found = find_needle(image, mm_per_px=sim.run.mm_per_px, fov_mask=fov)
    corners = truth_corners(sim)
    assert needle_entry_side(corners, found) == "posterior"
    a_s, p_s, p_i, a_i = corners.as_array()
    swapped = Corners(p_s, a_s, a_i, p_i)
    assert needle_entry_side(swapped, found) == "anterior"
