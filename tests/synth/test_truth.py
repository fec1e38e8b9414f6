"""The truth file: its measures recomputed here from the masks and corners, its format, its files.

Truths: hand-computed distances on hand-built masks, and, for phantom runs, the CONTRACT
definitions re-implemented below (signed distances by 2-D cross products, independent of
vpimage.synth._truth).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vpimage.synth._truth import alert_events, leak_seen, wall_measures

NAMES = ("anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior")


def corners(as_, ps, pi, ai):
    return dict(zip(NAMES, (as_, ps, pi, ai)))


def one_pixel(x, y, shape=(80, 80)):
    mask = np.zeros(shape, bool)
    mask[y, x] = True
    return mask


# --- hand-computed cases ---------------------------------------------------------------


def test_wall_measures_axis_aligned_body():
    c = corners((10, 10), (50, 10), (50, 40), (10, 40))
    assert wall_measures(one_pixel(45, 20), c) == pytest.approx((5.0, 35 / 40))
    assert wall_measures(one_pixel(53, 20), c) == pytest.approx((-3.0, 43 / 40))  # a breach
    assert wall_measures(one_pixel(30, 5), c) == (None, None)  # above the band
    assert wall_measures(np.zeros((80, 80), bool), c) == (None, None)
    # The smallest distance wins; cement outside the band does not count.
    mask = one_pixel(20, 20) | one_pixel(48, 30) | one_pixel(70, 60)
    assert wall_measures(mask, c) == pytest.approx((2.0, 38 / 40))


def test_wall_measures_tilted_body():
    # Posterior wall along (0.6, 0.8), 30 px long; the body lies 40 px along (-0.8, 0.6).
    ps = np.array([50.0, 10.0])
    along, across = np.array([0.6, 0.8]), np.array([-0.8, 0.6])
    c = corners(ps + 40 * across, ps, ps + 30 * along, ps + 30 * along + 40 * across)
    x, y = ps + 10 * along + 5 * across  # (52, 21): 5 px in front of the wall
    assert (x, y) == (52.0, 21.0)
    assert wall_measures(one_pixel(52, 21), c) == pytest.approx((5.0, 35 / 40))


def test_wall_measures_of_a_wedge_body():
    # Anterior wall shorter than the posterior one: the band follows the endplate lines.
    c = corners((10, 14), (50, 10), (50, 40), (10, 36))
    assert wall_measures(one_pixel(12, 12), c) == (None, None)  # above the sloping endplate
    ftw, depth = wall_measures(one_pixel(40, 12), c)
    assert ftw == pytest.approx(10.0) and depth == pytest.approx(30 / 40)


def test_a_leak_is_seen_once_its_cement_lies_outside_the_body():
    # CONTRACT: a leak is cement outside the treated body. Leak cement that still projects
    # over the body (frames 0-1) is not yet seen; one pixel past the anterior wall (frame 2)
    # is; it stays seen when the pixel falls below the floor again (frame 3), and a body
    # that moves under the cement decides by its own corners (frame 4 is inside the moved body).
    body = corners((10, 10), (50, 10), (50, 40), (10, 40))
    moved = corners((4, 10), (44, 10), (44, 40), (4, 40))
    masks = np.stack([np.zeros((80, 80), bool), one_pixel(11, 20), one_pixel(9, 20), np.zeros((80, 80), bool)])
    assert leak_seen(masks, [body] * 4).tolist() == [False, False, True, True]
    assert leak_seen(np.stack([one_pixel(9, 20)] * 2), [body, moved]).tolist() == [True, True]
    assert leak_seen(np.stack([one_pixel(9, 20)] * 2), [moved, body]).tolist() == [False, True]
    # Tilted body (as in the wall-measure test): in front of and behind the posterior wall.
    ps = np.array([50.0, 10.0])
    along, across = np.array([0.6, 0.8]), np.array([-0.8, 0.6])
    tilted = corners(ps + 40 * across, ps, ps + 30 * along, ps + 30 * along + 40 * across)
    assert leak_seen(one_pixel(52, 21)[None], [tilted]).tolist() == [False]  # 5 px inside
    assert leak_seen(one_pixel(58, 16)[None], [tilted]).tolist() == [True]  # 2.8 px behind the wall


def test_alert_events_hold_time():
    t = np.arange(24) * 0.125  # exact in binary
    raw = ["ok"] * 4 + ["warn", "warn", "ok", "warn"] + ["ok"] * 6 + ["stop"] + ["ok"] * 9
    events = alert_events(t, raw)
    assert [(e["level"], e["time_s"]) for e in events] == [
        ("ok", 0.0),
        ("warn", 0.5),  # entered at once; the lone ok at 0.75 does not flap it
        ("ok", 1.375),  # last met at 0.875, left 0.5 s later
        ("stop", 1.75),
        ("ok", 2.25),
    ]


@pytest.mark.parametrize("fps", [10, 15, 30])
def test_alert_events_leave_a_level_when_the_hold_is_up_at_float_frame_times(fps):
    """Frame times as the phantom sums them (0.1 is not exact in binary): a stop met on
    frame 1 only is left on the first frame 0.5 s or more after it (frame 6 at 10 fps: 0.6 s -
    0.1 s = 0.5 s; frame 9 at 15 fps)."""
    t = np.cumsum(np.full(3 * fps, 1 / fps)) - 1 / fps
    raw = ["ok", "stop"] + ["ok"] * (3 * fps - 2)
    events = alert_events(t, raw)
    assert [(e["frame"], e["level"]) for e in events] == [(0, "ok"), (1, "stop"), (1 + math.ceil(fps / 2), "ok")]


# --- the phantom's truth against an independent re-implementation -----------------------


def cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def own_wall_measures(mask, c):
    """CONTRACT definitions: signed distances from 2-D cross products."""
    as_, ps, pi, ai = (np.asarray(c[n], float) for n in NAMES)
    ys, xs = np.nonzero(mask)
    p = np.stack([xs, ys], axis=1).astype(float)

    def signed(a, b, ref):  # distance to line a-b, positive on ref's side
        s = cross(b - a, p - a) / np.linalg.norm(b - a)
        return s * np.sign(cross(b - a, ref - a))

    band = (signed(as_, ps, ai) >= 0) & (signed(ai, pi, as_) >= 0)
    if not band.any():
        return None, None
    post = signed(ps, pi, as_)[band]
    ant = signed(as_, ai, ps)[band]
    k = np.argmin(post)
    return post[k], ant[k] / (ant[k] + post[k])


CASES = [
    ("posterior_approach", 0, {}),
    ("posterior_breach", 1, {"tilt_deg": 25.0, "sudden_shift": True}),
    ("disc_leak", 2, {"tilt_deg": 12.0, "dose": "low"}),
]


@pytest.mark.parametrize(("scenario", "seed", "options"), CASES)
def test_front_to_wall_and_depth_recomputed(phantom, scenario, seed, options):
    r = phantom(scenario, seed, **options)
    mm = r.truth["mm_per_px"]
    measured = 0
    for f, fr in enumerate(r.truth["frames"]):
        ftw, depth = own_wall_measures(r.cement_masks[f], fr["vertebral_body"])
        if ftw is None:
            assert fr["front_to_wall_px"] is None and fr["front_to_wall_mm"] is None and fr["depth_fraction"] is None
            continue
        measured += 1
        assert fr["front_to_wall_px"] == pytest.approx(ftw, abs=1e-9)
        assert fr["front_to_wall_mm"] == pytest.approx(ftw * mm, abs=1e-9)
        assert fr["depth_fraction"] == pytest.approx(depth, abs=1e-9)
    assert measured > 40


@pytest.mark.parametrize(("scenario", "seed", "options"), CASES)
def test_areas_are_mask_pixel_counts(phantom, scenario, seed, options):
    r = phantom(scenario, seed, **options)
    mm = r.truth["mm_per_px"]
    for f, fr in enumerate(r.truth["frames"]):
        n = int(r.cement_masks[f].sum())
        assert fr["cement_area_px"] == n
        assert fr["cement_area_mm2"] == pytest.approx(n * mm * mm)
        assert fr["frame"] == f and fr["time_s"] == r.run.time_s[f]


def own_level(fr):
    ftw, depth = fr["front_to_wall_mm"], fr["depth_fraction"]
    if fr["leak_classes"] or (ftw is not None and ftw <= 2.0):
        return 2
    if (ftw is not None and ftw <= 5.0) or (depth is not None and depth >= 0.75):
        return 1
    return 0


@pytest.mark.parametrize(("scenario", "seed", "options"), CASES)
def test_events_follow_contract_thresholds_and_hold(phantom, scenario, seed, options):
    r = phantom(scenario, seed, **options)
    frames = r.truth["frames"]
    raw = np.array([own_level(fr) for fr in frames])
    t = r.run.time_s
    held = [raw[(t > ti - 0.5) & (t <= ti)].max() for ti in t]
    expected = [("ok", 0.0)] + [
        (("ok", "warn", "stop")[held[f]], t[f]) for f in range(len(t)) if held[f] != (held[f - 1] if f else 0)
    ]
    assert [(e["level"], e["time_s"]) for e in r.truth["events"]] == expected
    assert {e["level"] for e in r.truth["events"]} >= {"ok", "stop"}


def test_truth_file_and_masks_round_trip(phantom, tmp_path):
    r = phantom("venous_leak", 3, jitter=True)
    path = r.save_truth(tmp_path / "case.json")
    truth = json.loads(path.read_text())
    for key in ("scenario", "seed", "fps", "mm_per_px", "view", "vertebral_body", "frames", "events"):
        assert key in truth
    assert truth["scenario"] == "venous_leak" and truth["seed"] == 3 and truth["view"] == "lateral"
    assert truth["masks_file"] == "case_masks.npz"
    assert truth["visibility_floor_mm"] == 0.5
    assert set(truth["vertebral_body"]) == set(NAMES)
    assert truth["vertebral_body"] == truth["frames"][0]["vertebral_body"]
    frame_keys = {"frame", "time_s", "cement_area_mm2", "front_to_wall_mm", "depth_fraction", "leak_classes"}
    assert all(frame_keys <= set(fr) for fr in truth["frames"])
    assert truth["frames"][0]["front_to_wall_mm"] is None  # NaN is written as null
    assert truth["events"][0] == {"frame": 0, "time_s": 0.0, "level": "ok"}
    assert truth["options"]["jitter"] is True
    with np.load(tmp_path / truth["masks_file"]) as npz:
        masks = npz["masks"]
    assert masks.dtype == bool
    np.testing.assert_array_equal(masks, r.cement_masks)
    assert "NaN" not in path.read_text()


def test_wall_file(phantom, tmp_path):
    r = phantom("no_leak", 3)
    wall = json.loads(r.save_wall(tmp_path / "WALL.json").read_text())
    assert wall == {"frame": 0, "vertebral_body": r.truth["vertebral_body"]}


def test_needle_points_lie_on_the_needle(phantom):
    r = phantom("no_leak", 4, breathing=False)
    needle = r.needle_masks[0]
    for key in ("tip_px", "entry_px"):
        x, y = np.rint(r.truth["needle"][key]).astype(int)
        assert needle[y - 1 : y + 2, x - 1 : x + 2].any(), key
    assert 2.4 <= r.truth["needle"]["diameter_mm"] <= 3.0  # 11-13 gauge
    # The entry point is on the posterior wall line.
    c = {k: np.array(v) for k, v in r.truth["vertebral_body"].items()}
    entry = np.array(r.truth["needle"]["entry_px"])
    wall = c["posterior_inferior"] - c["posterior_superior"]
    assert abs(cross(wall, entry - c["posterior_superior"])) / np.linalg.norm(wall) < 1e-6
