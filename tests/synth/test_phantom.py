"""The phantom's images agree with its truth, and its options do what they say.

Truths used here: the projected cement thickness and the physics constants the truth file
states (mu of the cement, display window), the DICOM-like geometry, the CONTRACT image
conventions. The checks recompute what they need from the stored pixel values.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from vpimage.errors import ConfigError
from vpimage.synth._phantom import SCENARIOS, SynthOptions, simulate

QUIET = {"dose": "noiseless", "breathing": False}  # no noise, no motion


def line_integral(run, truth) -> np.ndarray:
    """Invert the display mapping documented in vpimage.synth._imaging: stored -> P."""
    d = truth["display"]
    s = run.frames.astype(float)
    if run.photometric == "MONOCHROME1":
        s = d["max_value"] - s
    return d["p_hi"] - s / d["max_value"] * (d["p_hi"] - d["p_lo"])


def level_step(truth) -> float:
    """Line-integral step of one stored level."""
    d = truth["display"]
    return (d["p_hi"] - d["p_lo"]) / d["max_value"]


def unclipped(run, frames) -> np.ndarray:
    """Pixels of the exposed field whose stored value is not clipped in any of ``frames``."""
    top = 2**run.bits_stored - 1
    ok = run.field.mask(*run.frames.shape[1:])
    for f in frames:
        ok &= (run.frames[f] > 0) & (run.frames[f] < top)
    return ok


@pytest.mark.parametrize(
    ("scenario", "view"), [("posterior_approach", "lateral"), ("venous_leak", "lateral"), ("anterior_leak", "ap")]
)
def test_excess_attenuation_is_mu_times_truth_thickness(phantom, scenario, view):
    r = phantom(scenario, 1, blur_px=0.0, view=view, **QUIET)
    pre = r.truth["options"]["pre_injection_frames"] - 1
    last = r.run.frames.shape[0] - 1
    p = line_integral(r.run, r.truth)
    excess = p[last] - p[pre]
    expected = r.truth["mu_cement_excess_per_mm"] * r.cement_thickness_mm[last]
    ok = unclipped(r.run, (pre, last))
    mask = r.cement_masks[last]
    assert (ok & mask).sum() > 0.5 * mask.sum() > 100  # most of the cement is measurable
    step = level_step(r.truth)
    np.testing.assert_array_less(np.abs(excess - expected)[ok], 1.01 * step)
    # Where the image says "more than the floor", the truth mask says so too.
    floor = r.truth["mu_cement_excess_per_mm"] * r.truth["visibility_floor_mm"]
    clear = ok & (np.abs(expected - floor) > step)
    np.testing.assert_array_equal((excess > floor)[clear], mask[clear])


def test_mask_matches_image_away_from_blurred_edges(phantom):
    r = phantom("disc_leak", 2, **QUIET)  # default detector blur, 0.7 px
    assert r.truth["options"]["blur_px"] > 0
    pre = r.truth["options"]["pre_injection_frames"] - 1
    p = line_integral(r.run, r.truth)
    floor = r.truth["mu_cement_excess_per_mm"] * r.truth["visibility_floor_mm"]
    step = level_step(r.truth)
    square = np.ones((7, 7), bool)  # the blur kernel's support (sigma 0.7 px, truncated at 4 sigma)
    checked = 0
    for f in range(pre + 1, r.run.frames.shape[0], 7):
        excess = p[f] - p[pre]
        ok = unclipped(r.run, (pre, f))
        inner = ndimage.binary_erosion(r.cement_masks[f], square) & ok
        outer = ~ndimage.binary_dilation(r.cement_masks[f], square) & ok
        assert np.all(excess[inner] > floor - step)
        assert np.all(excess[outer] < floor + step)
        checked += inner.sum()
    assert checked > 500


def test_needle_attenuates_but_is_never_cement(phantom):
    r = phantom("posterior_breach", 0, blur_px=0.0, **QUIET)
    p = line_integral(r.run, r.truth)
    pre = r.truth["options"]["pre_injection_frames"] - 1
    needle = r.needle_masks[0]
    assert needle.sum() > 100
    # The steel is plainly visible: far more attenuation than right beside it.
    core = ndimage.binary_erosion(needle, iterations=1) & unclipped(r.run, (0,))
    beside = ndimage.binary_dilation(needle, iterations=4) & ~ndimage.binary_dilation(needle, iterations=2)
    assert np.median(p[0][core]) > np.median(p[0][beside]) + 1.0
    # Without motion the needle is the same in every frame and adds no excess: not cement.
    assert np.all(r.needle_masks == needle)
    no_cement = needle & (r.cement_thickness_mm[-1] == 0) & unclipped(r.run, (pre, len(p) - 1))
    assert no_cement.sum() > 50
    assert not r.cement_masks[:, no_cement].any()
    assert np.all(np.abs(p[-1] - p[pre])[no_cement] <= 1.01 * level_step(r.truth))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_cement_before_injection_then_some(phantom, scenario):
    r = phantom(scenario, 3, tilt_deg=12.0)
    pre = r.truth["options"]["pre_injection_frames"]
    assert not r.cement_masks[:pre].any()
    assert not r.cement_thickness_mm[:pre].any()
    assert r.cement_masks[-1].sum() > 200
    assert all(fr["cement_area_px"] == 0 for fr in r.truth["frames"][:pre])


def test_same_seed_same_run_other_seed_other_run():
    options = SynthOptions(size_px=96, frames=10, sudden_shift=True, jitter=True)
    a = simulate("venous_leak", seed=11, options=options)
    b = simulate("venous_leak", seed=11, options=options)
    c = simulate("venous_leak", seed=12, options=options)
    np.testing.assert_array_equal(a.run.frames, b.run.frames)
    np.testing.assert_array_equal(a.cement_thickness_mm, b.cement_thickness_mm)
    np.testing.assert_array_equal(a.run.time_s, b.run.time_s)
    assert a.truth == b.truth
    assert not np.array_equal(a.run.frames, c.run.frames)


@pytest.mark.parametrize("bits", [10, 12])
def test_stored_values_fit_bits_stored_and_use_the_range(phantom, bits):
    r = phantom("anterior_leak", 4, bits_stored=bits, dose="low")
    assert r.run.frames.dtype == np.uint16
    assert r.run.frames.shape == (60, 160, 160)
    assert r.run.bits_stored == bits
    assert int(r.run.frames.max()) < 2**bits
    assert int(r.run.frames.max()) > 2 ** (bits - 1)  # the mapping spans the stored range


def test_monochrome1_is_the_inversion_of_monochrome2(phantom):
    m2 = phantom("disc_leak", 5, field="rectangle")
    m1 = phantom("disc_leak", 5, field="rectangle", photometric="MONOCHROME1")
    top = 2**m2.run.bits_stored - 1
    assert m1.run.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(m1.run.frames.astype(int), top - m2.run.frames.astype(int))
    np.testing.assert_array_equal(m1.cement_masks, m2.cement_masks)
    # Cement is dark in MONOCHROME2 and bright in MONOCHROME1 stored values.
    mask = m2.cement_masks[-1]
    assert m2.run.frames[-1][mask].mean() < m2.run.frames[0][mask].mean()
    assert m1.run.frames[-1][mask].mean() > m1.run.frames[0][mask].mean()


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_outside_the_intensifier_circle_is_black(phantom, photometric):
    r = phantom("no_leak", 6, photometric=photometric)
    field = r.run.field
    assert field.shape == "circle"
    inside = field.mask(160, 160)
    assert 0.55 < inside.mean() < 0.78  # a circle of radius 47-49 % of the side
    black = 0 if photometric == "MONOCHROME2" else 2**r.run.bits_stored - 1
    assert np.all(r.run.frames[:, ~inside] == black)
    assert (r.run.frames[:, inside] != black).mean() > 0.99


def test_collimator_blades_are_very_dark_but_not_black(phantom):
    r = phantom("no_leak", 6, field="rectangle")
    field = r.run.field
    assert field.shape == "rectangle"
    inside = field.mask(160, 160)
    assert 0.55 < inside.mean() < 0.95
    out, into = r.run.frames[:, ~inside].astype(float), r.run.frames[:, inside].astype(float)
    assert out.mean() < 0.5 * into.mean()
    assert (out > 0).mean() > 0.5


def test_ap_view_renders_with_null_wall_measures(phantom):
    r = phantom("venous_leak", 7, view="ap")
    assert r.run.view == "ap" and r.truth["view"] == "ap"
    assert r.run.positioner_primary_deg == 0.0
    assert all(fr["front_to_wall_mm"] is None and fr["depth_fraction"] is None for fr in r.truth["frames"])
    assert r.cement_masks[-1].sum() > 100
    # This vein runs toward the beam in AP: its cement is there but projects over the
    # body, so the truth holds no leak (CONTRACT: a leak is cement outside the body),
    # while the lateral view of the same case shows it.
    assert r.truth["injection"]["first_leak_cement_frame"] is not None
    assert r.truth["frames"][-1]["leak_classes"] == []
    lateral = phantom("venous_leak", 7)
    assert lateral.truth["frames"][-1]["leak_classes"] == ["venous"]
    assert lateral.run.positioner_primary_deg == 90.0
    # Same patient and cement, other projection: the needle is foreshortened in AP.
    assert r.needle_masks[0].sum() < lateral.needle_masks[0].sum()


@pytest.mark.parametrize(("dose", "lo", "hi"), [("normal", 100, 1000), ("low", 10, 100)])
def test_quanta_behind_the_body(phantom, dose, lo, hi):
    # Counts behind the treated body: hundreds at normal dose, tens at low dose. Use the
    # noiseless rendering of the same dose's N0 through the inverted display.
    r = phantom("no_leak", 8, **QUIET)
    n0 = {"normal": r.truth["display"]["n0"], "low": phantom("no_leak", 8, dose="low").truth["display"]["n0"]}[dose]
    p0 = line_integral(r.run, r.truth)[0]
    corners = np.array(list(r.truth["vertebral_body"].values()))
    cx, cy = np.rint(corners.mean(axis=0)).astype(int)
    counts = n0 * np.exp(-np.median(p0[cy - 4 : cy + 5, cx - 4 : cx + 5]))
    assert lo <= counts < hi


def test_low_dose_is_noisier(phantom):
    def noise(dose):
        r = phantom("no_leak", 9, dose=dose, breathing=False, frames=3, pre_injection_frames=2)
        inside = ndimage.binary_erosion(r.run.field.mask(160, 160), iterations=5)
        diff = r.run.frames[1].astype(float) - r.run.frames[0].astype(float)  # both pre-injection
        return diff[inside].std()

    assert noise("low") > 1.5 * noise("normal") > 1.5 * noise("high")
    assert noise("noiseless") == 0.0


def test_geometry_at_the_isocentre(phantom):
    r = phantom("no_leak", 10)
    run = r.run
    assert 112.0 <= run.mm_per_px * 160 <= 128.0  # 2-3 vertebral bodies across the field
    assert run.mm_per_px == pytest.approx(r.truth["mm_per_px"])
    assert 1000 <= run.source_to_detector_mm <= 1200 and 700 <= run.source_to_patient_mm <= 800
    assert run.imager_pixel_spacing_mm == pytest.approx(run.mm_per_px * run.source_to_detector_mm / run.source_to_patient_mm)
    # Body height 24-30 mm and depth 32-45 mm, measured on the truth corners.
    c = {k: np.array(v) for k, v in r.truth["vertebral_body"].items()}
    depth = np.linalg.norm(c["posterior_superior"] - c["anterior_superior"]) * run.mm_per_px
    height = np.linalg.norm(c["posterior_inferior"] - c["posterior_superior"]) * run.mm_per_px
    assert 32.0 <= depth <= 45.1 and 24.0 <= height <= 30.0
    assert c["anterior_superior"][0] < c["posterior_superior"][0]  # anterior on the image left
    assert c["posterior_superior"][1] < c["posterior_inferior"][1]  # cranial up


def test_tilt_rotates_the_wall(phantom):
    r = phantom("no_leak", 10, tilt_deg=25.0)
    c = {k: np.array(v) for k, v in r.truth["vertebral_body"].items()}
    wall = c["posterior_inferior"] - c["posterior_superior"]
    assert abs(np.degrees(np.arctan2(abs(wall[0]), wall[1])) - 25.0) < 0.5


def test_breathing_moves_anatomy_and_cement_rigidly(phantom):
    r = phantom("no_leak", 12)
    truth = r.truth
    offsets = np.array(truth["motion"]["offsets_mm"])
    amplitude = np.linalg.norm(offsets, axis=1).max()
    assert 0.5 <= amplitude <= 4.0
    frames = truth["frames"]
    end = int(np.searchsorted(r.run.time_s, truth["injection"]["end_s"])) + 1
    assert end <= 55
    for f in (end, end + 4, 59):
        corner = np.array(frames[f]["vertebral_body"]["anterior_superior"])
        corner0 = np.array(frames[end]["vertebral_body"]["anterior_superior"])
        np.testing.assert_allclose(corner - corner0, (offsets[f] - offsets[end]) / truth["mm_per_px"], atol=1e-3)  # offsets stored to 0.1 um
        # The cement (finished, so unchanged) moves with the corners.
        com = np.array(ndimage.center_of_mass(r.cement_thickness_mm[f]))[::-1]
        com0 = np.array(ndimage.center_of_mass(r.cement_thickness_mm[end]))[::-1]
        np.testing.assert_allclose(com - com0, corner - corner0, atol=0.1)


def test_sudden_shift_is_one_jump_during_injection(phantom):
    r = phantom("no_leak", 13, breathing=False, sudden_shift=True)
    offsets = np.array(r.truth["motion"]["offsets_mm"])
    k = r.truth["motion"]["sudden_shift_frame"]
    assert r.truth["options"]["pre_injection_frames"] < k < 59
    assert np.all(offsets[:k] == 0)
    assert 3.0 <= np.linalg.norm(offsets[k]) <= 6.0
    assert np.all(offsets[k:] == offsets[k])
    moved = np.array(r.truth["frames"][k]["vertebral_body"]["posterior_inferior"])
    before = np.array(r.truth["frames"][k - 1]["vertebral_body"]["posterior_inferior"])
    assert np.linalg.norm(moved - before) * r.truth["mm_per_px"] == pytest.approx(np.linalg.norm(offsets[k]))


def test_exposure_changes_move_whole_frames_by_the_log_of_the_tube_output(phantom):
    r = phantom("posterior_approach", 15, exposure_changes=True, **QUIET)
    output = np.array(r.truth["exposure"]["tube_output"])
    k = r.truth["exposure"]["step_frame"]
    assert output[0] == 1.0 and r.truth["options"]["pre_injection_frames"] < k < 59
    # One step of 10-30 % (the ratio across it also carries two pulses of 3 %).
    assert 0.09 <= abs(np.log(output[k] / output[k - 1])) <= np.log(1.3) + 0.25
    # Every pixel away from cement (and its detector blur) reads its line integral less
    # ln(output), to a stored level.
    p = line_integral(r.run, r.truth)
    cement = ndimage.binary_dilation((r.cement_thickness_mm > 0).any(axis=0), iterations=4)
    no_cement = ~cement & unclipped(r.run, range(len(p)))
    shift = p[:, no_cement] - p[0, no_cement]
    np.testing.assert_allclose(shift, np.broadcast_to(-np.log(output)[:, None], shift.shape), atol=1.01 * level_step(r.truth))
    unchanged = phantom("posterior_approach", 15, **QUIET)
    assert unchanged.truth["exposure"] == {"tube_output": [1.0] * 60, "step_frame": None}
    np.testing.assert_array_equal(unchanged.run.frames[0], r.run.frames[0])


@pytest.mark.parametrize("field", ["rectangle", "circle"])
def test_collimation_change_darkens_what_the_blades_cover_and_keeps_body_and_cement_in_view(phantom, field):
    r = phantom("venous_leak", 15, collimation_change=True, field=field, **QUIET)
    unchanged = phantom("venous_leak", 15, field=field, **QUIET)
    k, opening = r.truth["collimation"]["frame"], r.truth["collimation"]["field"]
    assert r.truth["options"]["pre_injection_frames"] + 2 <= k <= 58
    inside = np.zeros(r.run.frames.shape[1:], bool)
    inside[opening["top"] : opening["bottom"] + 1, opening["left"] : opening["right"] + 1] = True
    assert 0.2 < 1 - inside.mean() < 0.9  # the blades closed in
    np.testing.assert_array_equal(r.run.frames[:k], unchanged.run.frames[:k])
    # From the frame on, a lead blade lets 3 % through: ln(1 / 0.03) more line integral
    # under it (its blurred edge and clipped pixels aside), nothing changes inside.
    p, before = line_integral(r.run, r.truth), line_integral(unchanged.run, unchanged.truth)
    edge = ndimage.binary_dilation(inside, iterations=4) & ~ndimage.binary_erosion(inside, iterations=4)
    ok = unclipped(r.run, range(k, 60)) & unclipped(unchanged.run, range(k, 60)) & ~edge
    if field == "rectangle":  # (outside the study's own blades everything stays at their 3 %)
        ok &= ndimage.binary_erosion(r.run.field.mask(*inside.shape), iterations=4)
    darker = p[k:, ok & ~inside] - before[k:, ok & ~inside]
    assert darker.shape[1] > 1000
    np.testing.assert_allclose(darker, np.log(1 / 0.03), atol=1.01 * level_step(r.truth))
    np.testing.assert_allclose(p[:, ok & inside], before[:, ok & inside], atol=0)
    # What the analysis needs stays in view: the body and every frame's cement.
    for frame, cement in zip(r.truth["frames"], r.cement_masks):
        for x, y in frame["vertebral_body"].values():
            assert inside[int(round(y)), int(round(x))]
        assert not (cement & ~inside).any()
    assert r.truth["frames"] == unchanged.truth["frames"]
    assert unchanged.truth["collimation"] == {"frame": None, "field": None}


def test_needle_withdrawal_pulls_the_tip_back_along_the_shaft(phantom):
    r = phantom("posterior_approach", 4, needle_withdrawal=True, blur_px=0.0, **QUIET)
    unchanged = phantom("posterior_approach", 4, blur_px=0.0, **QUIET)
    k, by_mm = r.truth["needle"]["withdrawal"]["frame"], r.truth["needle"]["withdrawal"]["mm"]
    assert r.truth["options"]["pre_injection_frames"] + 2 <= k <= 58 and 3.0 <= by_mm <= 8.0
    np.testing.assert_array_equal(r.run.frames[:k], unchanged.run.frames[:k])
    # Steel leaves the tip's end of the shaft and nowhere else, from the frame on.
    before, after = unchanged.needle_masks[0], r.needle_masks[k]
    assert np.all(r.needle_masks[:k] == before) and np.all(r.needle_masks[k:] == after)
    assert not (after & ~before).any()
    # (x, y) px: between the first tip and the one pulled back, along the shaft (its projection
    # is shorter than the 3-D withdrawal: the shaft runs toward a pedicle, partly along the beam)
    left = np.argwhere(before & ~after)[:, ::-1]
    tip, pulled = np.array(r.truth["needle"]["tip_px"]), np.array(r.truth["needle"]["withdrawal"]["tip_px"])
    projected = np.linalg.norm(pulled - tip)
    along = (left - tip) @ (pulled - tip) / projected
    assert 0.3 * by_mm < projected * r.truth["mm_per_px"] < by_mm
    reach = r.truth["needle"]["diameter_mm"] / 2 / r.truth["mm_per_px"] + 1.0  # the tilted flat tip, a pixel
    assert along.min() > -reach and abs(along.max() - projected) < reach
    # Where the steel left, the line integral drops by the steel's (more than a unit); the
    # cement is as it was.
    p, p_before = line_integral(r.run, r.truth), line_integral(unchanged.run, unchanged.truth)
    gone = before & ~after & unclipped(r.run, (k,)) & unclipped(unchanged.run, (k,))
    drop = p_before[k][gone] - p[k][gone]
    assert gone.sum() > 10 and np.all(drop > 0) and np.median(drop) > 1.0
    same = ~before & unclipped(r.run, (k,)) & unclipped(unchanged.run, (k,))
    np.testing.assert_allclose(p[k:, same], p_before[k:, same], atol=0)
    assert r.truth["frames"] == unchanged.truth["frames"]
    np.testing.assert_array_equal(r.cement_thickness_mm, unchanged.cement_thickness_mm)
    assert unchanged.truth["needle"]["withdrawal"] is None


def test_jittered_frame_times(phantom):
    r = phantom("no_leak", 14, jitter=True, fps=10.0, frames=20)
    t = r.run.time_s
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert r.run.jittered
    assert np.all(np.abs(t - np.arange(t.size) / 10.0) <= 0.2 / 10.0 + 1e-12)
    assert not phantom("no_leak", 14, fps=10.0, frames=20).run.jittered


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("size_px", 10),
        ("frames", 1),
        ("fps", 0.0),
        ("view", "oblique"),
        ("tilt_deg", 30.0),
        ("dose", "ultra"),
        ("photometric", "RGB"),
        ("field", "oval"),
        ("breathing", "yes"),
        ("exposure_changes", 1),
        ("collimation_change", "no"),
        ("needle_withdrawal", None),
        ("bits_stored", 8),
        ("pre_injection_frames", 0),
        ("blur_px", -1.0),
    ],
)
def test_bad_option_raises_config_error_naming_it(name, value):
    with pytest.raises(ConfigError, match=f"`{name}`"):
        SynthOptions(**{name: value})


def test_too_few_frames_for_the_pre_injection_ones_names_frames():
    # `vpimage synth --frames 3` has no flag for the pre-injection frames: the message names `frames`.
    with pytest.raises(ConfigError, match="`frames` = 3: must be at least 6: 5 pre-injection frames"):
        SynthOptions(frames=3)
    with pytest.raises(ConfigError, match="`frames` = 60: must be at least 61"):
        SynthOptions(pre_injection_frames=60)
    assert SynthOptions(frames=6).frames == 6


def test_frames_are_bounded_by_the_memory_a_run_may_take():
    # 4 GiB over 16 B a pixel and 512 KiB a frame: 63 frames of 2048 x 2048 px (the
    # default 60 fit), 7281 of 64 x 64.
    assert SynthOptions(size_px=2048).frames == 60 and SynthOptions(size_px=2048, frames=63).frames == 63
    with pytest.raises(ConfigError, match="`frames` = 64: must be at most 63 at size_px 2048: a run must fit in 4 GiB"):
        SynthOptions(size_px=2048, frames=64)
    assert SynthOptions(size_px=64, frames=7281).frames == 7281  # (7282 refused: test_cli_synth_options)


def test_sudden_shift_needs_room_in_the_injection():
    with pytest.raises(ConfigError, match="`sudden_shift`"):
        SynthOptions(frames=8, pre_injection_frames=5, sudden_shift=True)
    assert SynthOptions(frames=9, pre_injection_frames=5, sudden_shift=True).sudden_shift


def test_unknown_scenario_or_bad_seed_raises_config_error():
    with pytest.raises(ConfigError, match="no_such"):
        simulate("no_such", options=SynthOptions(size_px=64, frames=8))
    with pytest.raises(ConfigError, match="`seed`"):
        simulate("no_leak", seed=-1, options=SynthOptions(size_px=64, frames=8))


def test_phantom_never_imports_the_analysis():
    # The truth stays independent of what it scores.
    code = (
        "import sys\n"
        "from vpimage.synth._phantom import SynthOptions, simulate\n"
        "simulate('disc_leak', options=SynthOptions(size_px=64, frames=8))\n"
        "bad = ('vpimage.engine', 'vpimage.kernels', 'vpimage.measures', 'vpimage.alerts', 'vpimage.io', 'vpimage.anatomy')\n"
        "print(','.join(m for m in sys.modules if m.startswith(bad)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
