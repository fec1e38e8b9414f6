"""Each scenario meets its definition (CONTRACT words), over seeds and with nuisances on.

Truth: the scenario definitions of the phantom's brief, read off the truth file (whose
measures test_truth.py recomputes from the masks) and off the masks themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

from vpimage.synth._phantom import SCENARIOS

MOVING = [
    (0, {}),  # breathing on by default
    (1, {"tilt_deg": 25.0, "sudden_shift": True, "photometric": "MONOCHROME1", "field": "rectangle"}),
    (2, {"tilt_deg": 12.0, "dose": "low", "jitter": True}),
]
STILL = [(3, {"breathing": False, "tilt_deg": 20.0, "dose": "low", "field": "rectangle"})]
CASES = [(s, seed, opts) for s in SCENARIOS for seed, opts in MOVING + STILL]
LEAK_CLASSES = {
    "no_leak": set(),
    "posterior_approach": set(),
    "posterior_breach": {"posterior"},
    "venous_leak": {"venous"},
    "disc_leak": {"disc_superior", "disc_inferior"},
    "anterior_leak": {"anterior"},
}


def ftw_series(truth):
    return np.array([np.nan if f["front_to_wall_mm"] is None else f["front_to_wall_mm"] for f in truth["frames"]])


@pytest.mark.parametrize(("scenario", "seed", "options"), CASES)
def test_scenario_meets_its_definition(phantom, scenario, seed, options):
    r = phantom(scenario, seed, **options)
    truth = r.truth
    ftw = ftw_series(truth)
    leaks = [set(f["leak_classes"]) for f in truth["frames"]]
    seen = set().union(*leaks)
    assert truth["injection"]["end_state_reached"]  # the default clip timing is long enough
    assert np.isfinite(ftw[-1])
    if scenario == "no_leak":
        assert np.nanmin(ftw) >= 8.0
    elif scenario == "posterior_approach":
        assert 0.5 <= ftw[-1] <= 3.0
        assert np.nanmin(ftw) >= 0.0
    elif scenario == "posterior_breach":
        assert np.nanmin(ftw) <= -1.0  # mm behind the wall, in the canal
        assert ftw[-1] < 0.0
    else:
        assert np.nanmin(ftw) >= 4.0  # the stop comes from the leak, not the wall
    # Leak classes: only the scenario's one, seen at the end, and once seen it stays.
    if LEAK_CLASSES[scenario]:
        assert len(seen) == 1 and seen <= LEAK_CLASSES[scenario]
        assert seen == {truth["injection"]["leak_class"]}
        first = next(f for f, classes in enumerate(leaks) if classes)
        assert all(leaks[f] == seen for f in range(first, len(leaks)))
        # The leak begins well after the injection does, so alert timing is testable.
        start = truth["injection"]["start_s"]
        assert truth["frames"][first]["time_s"] - start >= 1.0
        first_cement = next(f for f in truth["frames"] if f["cement_area_px"] > 0)
        assert first > first_cement["frame"] + 2
    else:
        assert seen == set()


@pytest.mark.parametrize(("scenario", "seed", "options"), [c for c in CASES if c[1] == STILL[0][0]])
def test_cement_area_never_shrinks_without_motion(phantom, scenario, seed, options):
    r = phantom(scenario, seed, **options)
    area = np.array([f["cement_area_px"] for f in r.truth["frames"]])
    assert np.all(np.diff(area) >= 0)
    assert area[-1] > 200
    # Pixel by pixel too: a pixel once cement stays cement.
    assert np.all(r.cement_masks[1:] >= r.cement_masks[:-1])


@pytest.mark.parametrize(("scenario", "seed", "options"), CASES)
def test_cement_never_shrinks_with_motion(phantom, scenario, seed, options):
    # The injected volume only grows. The projected area, resampled onto a moving pixel
    # grid, may lose a few edge pixels from frame to frame, never more than 3 %.
    r = phantom(scenario, seed, **options)
    volume = np.array([f["cement_volume_ml"] for f in r.truth["frames"]])
    assert np.all(np.diff(volume) >= 0)
    assert 0.5 < volume[-1] < 8.0
    area = np.array([f["cement_area_px"] for f in r.truth["frames"]], float)
    assert np.all(area >= 0.97 * np.maximum.accumulate(area))


def inside_body(cols, rows, corners):
    """Pixels inside the convex outline of the four corners (own half-plane tests)."""
    quad = [np.asarray(corners[n], float) for n in ("anterior_superior", "posterior_superior",
                                                    "posterior_inferior", "anterior_inferior")]
    p = np.stack([cols, rows], axis=1).astype(float)
    sides = []
    for a, b in zip(quad, quad[1:] + quad[:1]):
        e = b - a
        sides.append(e[0] * (p[:, 1] - a[1]) - e[1] * (p[:, 0] - a[0]))
    sides = np.array(sides)
    return np.all(sides >= 0, axis=0) | np.all(sides <= 0, axis=0)


@pytest.mark.parametrize(("scenario", "seed", "options"), CASES)
def test_front_speed_during_injection(phantom, scenario, seed, options):
    # The body's cement front: its farthest point in the body from the needle tip, over
    # the time since the injection started (a leak fills its compartment at its own pace).
    r = phantom(scenario, seed, **options)
    truth = r.truth
    mm = truth["mm_per_px"]
    t = r.run.time_s
    volume = np.array([f["cement_volume_ml"] for f in truth["frames"]])
    done = int(np.argmax(volume == volume[-1]))  # first frame with the final volume
    start = t[truth["options"]["pre_injection_frames"] - 1]  # last frame without cement
    # The tip in that frame: frame-0 tip moved by the patient's motion since frame 0.
    offsets = np.array(truth["motion"]["offsets_mm"])
    tip = np.array(truth["needle"]["tip_px"]) + (offsets[done] - offsets[0]) / mm
    rows, cols = np.nonzero(r.cement_masks[done])
    body = inside_body(cols, rows, truth["frames"][done]["vertebral_body"])
    assert body.mean() > 0.5
    reach = np.hypot(cols[body] - tip[0], rows[body] - tip[1]).max() * mm
    speed = reach / (t[done] - start)
    assert 0.5 <= speed <= 3.0
