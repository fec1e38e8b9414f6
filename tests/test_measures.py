"""Measures against hand-computed truths on drawn bodies and masks."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpimage.errors import ArgumentError
from vpimage.measures import (
    LEAK_CLASSES,
    Corners,
    FrontSpeedEstimator,
    LeakRules,
    band_mask,
    body_mask,
    cement_outside_body_px,
    classify_leaks,
    depth_fraction,
    front_to_wall_px,
    hidden_front_to_wall_px,
    _width_and_elongation,
    plausible_body,
    signed_distance_to_wall_px,
    time_to_wall_s,
)

SHAPE = (120, 160)
# Rectangle body: anterior wall x = 40, posterior wall x = 100, endplates y = 30 and y = 80.
RECT = Corners((40, 30), (100, 30), (100, 80), (40, 80))


def _rotation(deg, centre):
    """Affine [2, 3] rotating by `deg` about `centre` (x, y)."""
    a = math.radians(deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.asarray(centre, dtype=float)
    return np.hstack([rot, (centre - rot @ centre)[:, None]])


def _transformed(corners, matrix):
    """The corners under the affine ``matrix`` [2, 3]: (x', y') = M @ (x, y, 1)."""
    pts = corners.as_array() @ matrix[:, :2].T + matrix[:, 2]
    return Corners(*map(tuple, pts))


def test_corners_dict_round_trip_and_order():
    d = RECT.to_dict()
    assert list(d) == ["anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior"]
    assert Corners.from_dict(d) == RECT
    assert d["posterior_inferior"] == [100.0, 80.0]


@pytest.mark.parametrize(
    "d, message",
    [
        ({"anterior_superior": [0, 0]}, "missing"),
        ({**RECT.to_dict(), "pedicle": [1, 2]}, "unknown"),
        ({**RECT.to_dict(), "anterior_superior": [1, "x"]}, "anterior_superior"),
        ({**RECT.to_dict(), "anterior_superior": [float("nan"), 1]}, "finite"),
        ({**RECT.to_dict(), "anterior_superior": [10**400, 1]}, "anterior_superior` must be finite"),  # (JSON allows it)
        # Not read digit by digit, as 0 or 1, or by its keys: each was once a corner.
        ({**RECT.to_dict(), "anterior_superior": "31"}, "must be a pair"),
        ({**RECT.to_dict(), "anterior_superior": [True, 52]}, "must be a pair"),
        ({**RECT.to_dict(), "anterior_superior": {"31": 1, "52": 2}}, "must be a pair"),
        # posterior corners swapped: a bow tie, not a convex quadrilateral
        ({**RECT.to_dict(), "posterior_superior": [100, 80], "posterior_inferior": [100, 30]}, "convex"),
    ],
)
def test_corners_bad_input_raises(d, message):
    with pytest.raises(ValueError, match=message):
        Corners.from_dict(d)


def test_corners_translated():
    moved = RECT.translated(3, -2)
    assert moved.anterior_superior == (43.0, 28.0)
    assert moved.posterior_inferior == (103.0, 78.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            RECT.translated(bad, 0.0)
    turned = _transformed(RECT, _rotation(90, (0, 0)))  # the tests' helper: (x, y) -> (-y, x)
    np.testing.assert_allclose(turned.posterior_inferior, (-80, 100), atol=1e-12)


def test_body_and_band_masks_on_rectangle():
    body = body_mask(RECT, SHAPE)
    assert body.shape == SHAPE and body.dtype == bool
    assert body.sum() == (100 - 40 + 1) * (80 - 30 + 1)  # edges included
    assert body[30, 40] and body[80, 100] and not body[29, 70] and not body[50, 101]
    band = band_mask(RECT, SHAPE)
    assert band.sum() == (80 - 30 + 1) * SHAPE[1]  # unbounded along x
    assert band[50, 150] and not band[81, 70]


def test_signed_distance_sign_and_values():
    dist = signed_distance_to_wall_px(RECT, SHAPE)
    assert dist.dtype == np.float32 and dist.shape == SHAPE
    assert dist[50, 100] == 0 and dist[50, 90] == 10 and dist[50, 104] == -4


def test_front_to_wall_and_depth_on_rectangle():
    mask = np.zeros(SHAPE, bool)
    mask[45:60, 50:96] = True  # front at x = 95: 5 px from the wall at x = 100
    assert front_to_wall_px(mask, RECT) == pytest.approx(5.0, abs=1e-9)
    assert depth_fraction(mask, RECT) == pytest.approx((95 - 40) / 60, abs=1e-9)


def test_empty_or_outside_band_is_nan():
    mask = np.zeros(SHAPE, bool)
    assert math.isnan(front_to_wall_px(mask, RECT)) and math.isnan(depth_fraction(mask, RECT))
    mask[5:20, 90:110] = True  # above the superior endplate only
    assert math.isnan(front_to_wall_px(mask, RECT)) and math.isnan(depth_fraction(mask, RECT))


def test_breach_is_negative_and_depth_above_one():
    mask = np.zeros(SHAPE, bool)
    mask[50:55, 60:104] = True  # 3 px behind the wall
    assert front_to_wall_px(mask, RECT) == pytest.approx(-3.0, abs=1e-9)
    assert depth_fraction(mask, RECT) == pytest.approx(63 / 60, abs=1e-9)


def test_cement_outside_band_does_not_set_front():
    mask = np.zeros(SHAPE, bool)
    mask[50:55, 60:91] = True  # front 10 px from the wall
    mask[85:95, 95:110] = True  # below the inferior endplate, behind the wall line
    assert front_to_wall_px(mask, RECT) == pytest.approx(10.0, abs=1e-9)


def _shadow_case():
    """Cement in the body with its front at x = 70 (30 px from the wall at x = 100), and a
    needle's shadow (blind rows 52-54) from inside the cement back through the wall."""
    mask = np.zeros(SHAPE, bool)
    mask[45:60, 50:71] = True
    blind = np.zeros(SHAPE, bool)
    blind[52:55, 60:130] = True
    return mask, blind


@pytest.mark.parametrize("reach, expected", [(0.0, 30.0), (5.0, 25.0), (12.5, 18.0), (40.0, -10.0)])
def test_hidden_front_runs_the_reach_into_the_shadow(reach, expected):
    mask, blind = _shadow_case()
    assert front_to_wall_px(mask, RECT) == 30.0
    # Along the shadow the nearest unseen pixel within the reach is x = 70 + floor(reach).
    assert hidden_front_to_wall_px(mask, blind, RECT, reach_px=reach) == pytest.approx(expected, abs=1e-9)


def test_hidden_front_needs_blind_pixels_joined_to_the_cement():
    mask, blind = _shadow_case()
    blind[:, 75] = False  # a seen column cuts the shadow: cement cannot run on past it unseen
    assert hidden_front_to_wall_px(mask, blind, RECT, reach_px=20.0) == pytest.approx(26.0, abs=1e-9)
    apart = np.zeros(SHAPE, bool)
    apart[52:55, 80:130] = True  # a shadow that does not touch the cement
    assert math.isnan(hidden_front_to_wall_px(mask, apart, RECT, reach_px=50.0))
    assert math.isnan(hidden_front_to_wall_px(mask, np.zeros(SHAPE, bool), RECT, reach_px=50.0))
    assert math.isnan(hidden_front_to_wall_px(np.zeros(SHAPE, bool), blind, RECT, reach_px=50.0))


def test_hidden_front_counts_only_the_band():
    mask = np.zeros(SHAPE, bool)
    mask[30:40, 50:71] = True  # front 30 px from the wall
    blind = np.zeros(SHAPE, bool)
    blind[20:31, 70:90] = True  # runs on above the superior endplate (y = 30): only its row 30 counts
    blind[20:30, 90:99] = True
    assert hidden_front_to_wall_px(mask, blind, RECT, reach_px=25.0) == pytest.approx(100 - 89, abs=1e-9)


def test_hidden_front_bad_input_raises():
    mask, blind = _shadow_case()
    with pytest.raises(ValueError, match="blind"):
        hidden_front_to_wall_px(mask, blind[:-1], RECT, reach_px=3.0)
    with pytest.raises(ValueError, match="reach_px"):
        hidden_front_to_wall_px(mask, blind, RECT, reach_px=-1.0)


@pytest.mark.parametrize("deg", [-25, 10, 25])
def test_tilted_body_distance_and_depth(deg):
    # The rectangle turned about its centre; the truth follows from the rotation: a cement
    # point turned with the body keeps its distance to the wall.
    matrix = _rotation(deg, (70, 55))
    body = _transformed(RECT, matrix)
    front = np.array([88.0, 55.0])  # 12 px from the wall, depth (88-40)/60 in the upright body
    x, y = matrix[:, :2] @ front + matrix[:, 2]
    # Mark only the pixel nearest the turned point and compute its own exact truth.
    col, row = int(round(x)), int(round(y))
    mask = np.zeros(SHAPE, bool)
    mask[row, col] = True
    back = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))
    ux, uy, _ = back @ [col, row, 1]  # the pixel centre in the upright frame
    assert front_to_wall_px(mask, body) == pytest.approx(100 - ux, abs=1e-9)
    assert depth_fraction(mask, body) == pytest.approx((ux - 40) / 60, abs=1e-9)
    assert signed_distance_to_wall_px(body, SHAPE)[row, col] == pytest.approx(100 - ux, abs=1e-4)


def test_depth_fraction_trapezoid_uses_local_width():
    # Wedge body: anterior wall x = 40 (height 30..70), posterior wall x = 100 (20..80); walls parallel.
    wedge = Corners((40, 30), (100, 20), (100, 80), (40, 70))
    mask = np.zeros(SHAPE, bool)
    mask[50, 70] = True
    assert depth_fraction(mask, wedge) == pytest.approx(0.5, abs=1e-9)
    # Posterior wall leaning: x = 100 at y = 20 to x = 110 at y = 80; at y = 50 it is at x = 105.
    lean = Corners((40, 20), (100, 20), (110, 80), (40, 80))
    mask[:] = False
    mask[50, 95] = True
    n = np.array([60.0, -10.0]) / math.hypot(60, 10)  # unit normal of the leaning wall
    b = abs(n @ (np.array([95.0, 50.0]) - [100.0, 20.0]))
    assert front_to_wall_px(mask, lean) == pytest.approx(b, abs=1e-9)
    assert depth_fraction(mask, lean) == pytest.approx(55 / (55 + b), abs=1e-9)


def _leak_body():
    mask = body_mask(RECT, SHAPE) & False
    mask[40:70, 50:90] = True  # cement inside the body, touching nothing
    return mask


def test_classify_leaks_no_leak():
    assert classify_leaks(_leak_body(), RECT, mm_per_px=0.3) == {}
    assert cement_outside_body_px(_leak_body(), RECT, mm_per_px=0.3) == 0


def test_cement_outside_body_counts_pixels_beyond_the_margin():
    mask = _leak_body()
    mask[50, 100:104] = True  # on the posterior wall (x = 100), then 1, 2 and 3 px behind it
    mask[10, 10] = True  # far off the body
    # Margin 0.1 mm = 0.33 px at 0.3 mm/px: the pixels 1, 2, 3 px behind and the far one.
    assert cement_outside_body_px(mask, RECT, mm_per_px=0.3) == 4
    # Margin 0.45 mm = 1.5 px: those 2 and 3 px behind, and the far one.
    assert cement_outside_body_px(mask, RECT, mm_per_px=0.3, rules=LeakRules(margin_mm=0.45)) == 3
    # Each blob under the least area (0.25 mm2 = 2.8 px) but the 3 px behind the wall:
    # classify_leaks calls that one a leak, the far pixel is left out.
    assert classify_leaks(mask, RECT, mm_per_px=0.3) == {"posterior": 3.0}


@pytest.mark.parametrize(
    "rows, cols, expected",
    [
        (slice(18, 29), slice(55, 75), "disc_superior"),  # blob above the superior endplate
        (slice(82, 92), slice(60, 80), "disc_inferior"),
        (slice(45, 60), slice(103, 112), "posterior"),
        (slice(45, 60), slice(28, 38), "anterior"),
    ],
)
def test_classify_leaks_blob_sides(rows, cols, expected):
    mask = _leak_body()
    mask[rows, cols] = True
    area = mask[rows, cols].sum()
    assert classify_leaks(mask, RECT, mm_per_px=0.3) == {expected: float(area)}


def test_classify_leaks_blob_connected_to_body_counts_only_outside():
    mask = _leak_body()
    mask[25:45, 60:70] = True  # crosses the superior endplate (y = 30)
    margin_px = LeakRules().margin_mm / 0.3  # pixels within the margin are not leak
    outside_rows = [r for r in range(25, 30) if 30 - r > margin_px]
    assert classify_leaks(mask, RECT, mm_per_px=0.3) == {"disc_superior": float(len(outside_rows) * 10)}


def test_automatic_corners_widen_the_leak_margin():
    # A 20 px strip one pixel (0.15 mm) above the superior endplate (y = 30): a disc leak
    # beyond the 0.1 mm margin of annotated corners, within the 0.2 mm of automatic ones.
    mask = _leak_body()
    mask[29, 60:80] = True
    rules = LeakRules()
    assert rules.for_automatic_corners().margin_mm == pytest.approx(rules.margin_mm + rules.automatic_corner_margin_mm)
    assert classify_leaks(mask, RECT, mm_per_px=0.15, rules=rules) == {"disc_superior": 20.0}
    assert classify_leaks(mask, RECT, mm_per_px=0.15, rules=rules.for_automatic_corners()) == {}


def test_a_numpy_pixel_size_is_a_pixel_size():
    # np.float32(0.15) was refused as "must be a finite number > 0; got 0.15".
    mask = _leak_body()
    mask[29, 60:80] = True
    assert classify_leaks(mask, RECT, mm_per_px=np.float32(0.15), rules=LeakRules()) == {"disc_superior": 20.0}


def _half_ring(centre_x, towards):
    """A curved channel about 3 px wide (radius 18.5..21.5 px) about (centre_x, 55)."""
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    radius = np.hypot(xx - centre_x, yy - 55)
    return (np.abs(radius - 20) <= 1.5) & (towards * (xx - centre_x) >= 0)


def test_classify_leaks_thin_curved_channel_is_venous():
    # In front of the anterior wall (x = 40), bending away from it.
    mask = _leak_body()
    channel = _half_ring(35, -1)
    mask |= channel
    leaks = classify_leaks(mask, RECT, mm_per_px=0.3)  # 0.9 mm wide: a vein
    assert leaks == {"venous": float(channel.sum())}
    # At 2 mm/px the same channel measures 6 mm (3 px): too wide for a vein (default 3 mm),
    # so it takes the class of its side.
    wide = classify_leaks(mask, RECT, mm_per_px=2.0, rules=LeakRules(margin_mm=0, min_area_mm2=0))
    assert wide == {"anterior": float(channel.sum())}


def _turned(degrees: float, *, half_width: float, half_height: float):
    """A body turned by ``degrees`` about (110, 110) px, and a rectangle turned with it:
    centred 15 px in front of its anterior wall, ``2 * half_width`` px across (away from
    the wall), ``2 * half_height`` px along it."""
    a = math.radians(degrees)
    centre = np.array([110.0, 110.0])
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    upright = np.array([[60, 70], [160, 70], [160, 150], [60, 150]], float)  # anterior wall x = 60
    body = Corners(*map(tuple, (upright - centre) @ turn.T + centre))
    yy, xx = np.mgrid[0:220, 0:220].astype(float)
    u = (xx - centre[0]) * math.cos(a) + (yy - centre[1]) * math.sin(a) + centre[0]  # upright coordinates
    v = -(xx - centre[0]) * math.sin(a) + (yy - centre[1]) * math.cos(a) + centre[1]
    return body, (np.abs(u - 45) < half_width) & (np.abs(v - 110) < half_height)


@pytest.mark.parametrize("degrees", [0, 5, 10, 20, 30, 45])
def test_a_compact_leak_is_not_venous_however_the_body_is_turned(degrees):
    # A 20 x 20 px square, 4 mm at 0.2 mm/px: by hand 4 mm wide (> 3) and length / width
    # = 400 / 20**2 = 1 (< 2), an anterior leak. The skeleton's median distance to the
    # background read 1.8-2.1 mm and 3.3-4.7 between 5 and 30 degrees: venous.
    body, square = _turned(degrees, half_width=10, half_height=10)
    assert classify_leaks(square, body, mm_per_px=0.2) == {"anterior": float(square.sum())}
    width, elongation = _width_and_elongation(square[square.any(1)][:, square.any(0)])
    assert 18.5 <= width <= 20.5 and elongation < 1.2


@pytest.mark.parametrize("degrees", [0, 5, 10, 20, 30, 45])
def test_a_thin_channel_is_venous_however_the_body_is_turned(degrees):
    # A 3 x 30 px bar (0.6 mm wide at 0.2 mm/px, length / width about 10).
    body, bar = _turned(degrees, half_width=1.5, half_height=15)
    assert classify_leaks(bar, body, mm_per_px=0.2) == {"venous": float(bar.sum())}
    width, _ = _width_and_elongation(bar[bar.any(1)][:, bar.any(0)])
    assert 2.5 <= width <= 3.6


def test_classify_leaks_thin_channel_behind_the_wall_at_the_body_level_is_posterior():
    # Behind the posterior wall (x = 100) between the endplate lines (y 30..80): the canal,
    # whatever the shape.
    mask = _leak_body()
    channel = _half_ring(125, 1)
    mask |= channel
    assert classify_leaks(mask, RECT, mm_per_px=0.3) == {"posterior": float(channel.sum())}


def test_classify_leaks_elongation_threshold():
    # A 30 x 3 px bar in front of the anterior wall: the skeleton's median distance to the
    # background is 2 px, so the width is 3 px and length/width = 90 / 9 = 10.
    mask = _leak_body()
    mask[35:65, 30:33] = True
    assert list(classify_leaks(mask, RECT, mm_per_px=0.3, rules=LeakRules(venous_min_elongation=9.9))) == ["venous"]
    assert list(classify_leaks(mask, RECT, mm_per_px=0.3, rules=LeakRules(venous_min_elongation=10.1))) == ["anterior"]


def test_classify_leaks_thin_sheet_in_the_disc_space_is_a_disc_leak():
    # The same bar lying along the superior endplate, between the wall lines: disc cement
    # spreads as a thin sheet, so its shape does not make it venous.
    mask = _leak_body()
    mask[20:23, 55:85] = True
    rules = LeakRules(venous_min_elongation=9)
    assert classify_leaks(mask, RECT, mm_per_px=0.3, rules=rules) == {"disc_superior": 90.0}
    # Mostly in front of the anterior wall line, the bar above the body is venous again.
    mask = _leak_body()
    mask[20:23, 15:45] = True
    assert classify_leaks(mask, RECT, mm_per_px=0.3, rules=rules) == {"venous": 90.0}


def test_classify_leaks_small_component_dropped_and_order():
    mask = _leak_body()
    mask[10, 10] = True  # 1 px = 0.09 mm^2 < 1 mm^2
    mask[45:60, 103:112] = True
    mask[82:92, 60:80] = True
    leaks = classify_leaks(mask, RECT, mm_per_px=0.3)
    assert list(leaks) == [c for c in LEAK_CLASSES if c in leaks] == ["posterior", "disc_inferior"]


@pytest.mark.parametrize("mm_per_px", [0, -1, float("nan"), None])
def test_classify_leaks_bad_scale(mm_per_px):
    with pytest.raises(ValueError, match="mm_per_px"):
        classify_leaks(_leak_body(), RECT, mm_per_px=mm_per_px)


def test_leak_rules_validated():
    with pytest.raises(ValueError, match="margin_mm"):
        LeakRules(margin_mm=-1)
    with pytest.raises(ValueError, match="venous_min_elongation"):
        LeakRules(venous_min_elongation=0)


def test_mask_must_be_2d_bool():
    with pytest.raises(ValueError, match="mask"):
        front_to_wall_px(np.zeros(SHAPE, np.uint8), RECT)


def test_a_body_s_depth_and_height_are_between_the_midpoints_of_its_sides():
    assert RECT.depth_and_height_px() == (60.0, 50.0)
    tilted = Corners((0, 0), (30, 40), (-10, 70), (-40, 30))  # 50 deep, 50 high, rotated
    assert tilted.depth_and_height_px() == pytest.approx((50.0, 50.0))


@pytest.mark.parametrize(
    "depth_px, height_px, plausible",
    # A vertebral body is 10-80 mm deep and 3-60 mm high (here at 1 mm/px).
    [(10, 20, True), (9.9, 20, False), (80, 20, True), (80.1, 20, False),
     (40, 3, True), (40, 2.9, False), (40, 60, True), (40, 60.1, False)],
)
def test_a_plausible_body_is_10_to_80_mm_deep_and_3_to_60_mm_high(depth_px, height_px, plausible):
    body = Corners((40, 30), (40 + depth_px, 30), (40 + depth_px, 30 + height_px), (40, 30 + height_px))
    assert plausible_body(body, 1.0) is plausible


def test_a_body_s_size_is_read_in_mm():
    assert plausible_body(RECT, 0.2) and not plausible_body(RECT, 0.1)  # 12 and 6 mm deep


@pytest.mark.parametrize(
    "measure",
    [
        lambda corners: body_mask(corners, SHAPE),
        lambda corners: band_mask(corners, SHAPE),
        lambda corners: signed_distance_to_wall_px(corners, SHAPE),
        lambda corners: front_to_wall_px(np.zeros(SHAPE, bool), corners),
        lambda corners: depth_fraction(np.zeros(SHAPE, bool), corners),
        lambda corners: hidden_front_to_wall_px(np.zeros(SHAPE, bool), np.zeros(SHAPE, bool), corners, reach_px=1),
        lambda corners: classify_leaks(np.zeros(SHAPE, bool), corners, mm_per_px=0.2),
        lambda corners: cement_outside_body_px(np.zeros(SHAPE, bool), corners, mm_per_px=0.2),
        lambda corners: plausible_body(corners, 0.2),
    ],
)
def test_corners_must_be_corners_even_with_no_cement(measure):
    # A WALL.json's mapping must go through Corners.from_dict, which checks it.
    with pytest.raises(ArgumentError, match="Corners"):
        measure(RECT.to_dict())


def test_speed_estimator_recovers_slope_under_noise():
    rng = np.random.default_rng(7)
    est = FrontSpeedEstimator(window_s=1.0)
    t = np.arange(90) / 30.0
    d = 20.0 - 2.5 * t + rng.normal(0, 0.15, t.size)
    d[40] = 2.0  # one wild frame
    speeds = [est.update(ti, di) for ti, di in zip(t, d)]
    assert math.isnan(speeds[0])
    assert speeds[-1] == pytest.approx(2.5, abs=0.3)
    assert np.nanmedian(speeds[30:]) == pytest.approx(2.5, abs=0.15)


def _speed_after_a_change(est, *, before_mm_s, after_mm_s, frames_after):
    """The estimate at 10 fps after 100 frames at one speed and ``frames_after`` more at another."""
    d, speed = 40.0, math.nan
    for k in range(100 + frames_after):
        d -= 0.1 * (before_mm_s if k < 100 else after_mm_s)
        speed = est.update(k * 0.1, d)
    return speed


def test_speed_estimator_window_bounded_and_nan_skipped():
    # 0.5 s at 10 fps holds 6 frames (both ends): 5 frames at the new speed give it exactly
    # (the sample before the change is on the same line), 4 do not.
    window = dict(before_mm_s=1.0, after_mm_s=5.0)
    assert _speed_after_a_change(FrontSpeedEstimator(window_s=0.5), **window, frames_after=5) == pytest.approx(5.0)
    assert _speed_after_a_change(FrontSpeedEstimator(window_s=0.5), **window, frames_after=4) < 5.0
    # The sample cap bounds a long window: the last 4 samples only, 3 frames at the new speed.
    capped = FrontSpeedEstimator(window_s=10.0, max_samples=4)
    assert _speed_after_a_change(capped, **window, frames_after=3) == pytest.approx(5.0)
    assert _speed_after_a_change(FrontSpeedEstimator(window_s=10.0), **window, frames_after=3) == pytest.approx(1.0)
    # Moving away: negative speed; NaN frames add nothing.
    est = FrontSpeedEstimator(window_s=1.0)
    est.update(0.0, 5.0)
    assert math.isnan(est.update(0.1, float("nan")))
    assert est.update(0.2, 6.0) == pytest.approx(-5.0)
    # Samples older than the window leave it: a lone new sample gives NaN.
    assert math.isnan(est.update(5.0, 1.0))


def test_speed_estimator_rejects_bad_window():
    with pytest.raises(ValueError, match="window_s"):
        FrontSpeedEstimator(window_s=0)


@pytest.mark.parametrize(
    "d, v, expected",
    [(6.0, 2.0, 3.0), (-1.0, 2.0, 0.0), (6.0, 0.0, math.nan), (6.0, -1.0, math.nan), (math.nan, 1.0, math.nan)],
)
def test_time_to_wall(d, v, expected):
    result = time_to_wall_s(d, v)
    if math.isnan(expected):
        assert math.isnan(result)
    else:
        assert result == pytest.approx(expected)


# Invariants on random bodies: turned and shifted rectangles with a random cement pixel.
@settings(max_examples=60, deadline=None)
@given(
    deg=st.floats(-30, 30),
    dx=st.integers(-10, 10),
    dy=st.integers(-10, 10),
    u=st.floats(0.05, 0.95),
    v=st.floats(0.05, 0.95),
)
def test_invariants_inside_the_body(deg, dx, dy, u, v):
    body = _transformed(RECT, _rotation(deg, (70, 55)))
    # A pixel near the point at fractions (u, v) of the body's width and height.
    a_s, p_s, p_i, a_i = body.as_array()
    point = a_s + u * (p_s - a_s) + v * (a_i - a_s)
    col, row = (int(round(c)) for c in point)
    mask = np.zeros(SHAPE, bool)
    mask[row, col] = True
    if not body_mask(body, SHAPE)[row, col]:
        return  # rounding left the body: nothing to check
    d, depth = front_to_wall_px(mask, body), depth_fraction(mask, body)
    assert 0 <= d <= 60 + 1e-9 and 0 <= depth <= 1
    assert d == pytest.approx(signed_distance_to_wall_px(body, SHAPE)[row, col], abs=1e-4)
    # Moving mask and body together changes nothing.
    moved = np.roll(mask, (dy, dx), axis=(0, 1))
    assert front_to_wall_px(moved, body.translated(dx, dy)) == pytest.approx(d, abs=1e-9)
    assert depth_fraction(moved, body.translated(dx, dy)) == pytest.approx(depth, abs=1e-9)
    # Inside the body nothing leaks.
    assert classify_leaks(mask, body, mm_per_px=0.3) == {}
