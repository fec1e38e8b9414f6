"""A frame shown at another display gain is read at the baseline's contrast.

Fluoroscopy stores frames log-encoded: a change of the display's gain or window (by the
operator, or the system's own image processing) scales a stored frame's values, so every
difference of attenuation in it by the same factor, plus a level. The level alone is what a
change of tube output makes, and the engine always took it out; the contrast it did not.
Measured before the engine read each frame's contrast (kernels' ``contrast_gain``):

- one frame of a study without a leak shown 10 % brighter, or 20 % darker: dense bone read
  as cement, and the study stopped from that frame to its end;
- a venous leak shown 20 % darker from its 20th frame on: the field's edge darkened as
  collimator blades do, and the study stopped at the change, 1.8 s early (the engine now
  takes the frame's level out before it counts the edge's darkened blocks);
- the same change from a pre-injection frame on: breathing darkens the edge enough for it
  to be searched for blades (in the unchanged run too), and the search, which compared the
  frame with the reference at the frame's own level, took the whole field for blades: from
  the 16th frame on, frames were ``image_too_noisy`` on the bone the blades left;
- the first frame shown at half the gain (the reference every frame is registered on until
  the baseline is frozen): the stop came 10 frames (2 s) late.
- a study without a leak shown 5 % brighter from its 20th frame on: its gain read 1.04-1.05,
  mostly within the 5 % a single frame's gain may stray, and from the 43rd frame on dense
  bone read as cement and the study warned and stopped (4.5-6 % alike). A gain that strays
  3 % on two frames running is now a display changed and kept, and taken out;
- at the lowest dose, every frame of an unchanged display read a gain of 0.965-0.99 against
  the baseline from its freeze on (a single frame's skewed noise against the baseline's
  average): the gain is now read over the one the baseline's own frames read on it.

Here the truth is the same study without the change: the alerts must be the same, frame by
frame, and the cement the same to a few pixels. At the end, the engine's DisplayGain on its own,
against frames made from a reference by a known gain.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from vpimage.alerts import AlertLevel

import test_accuracy
from test_accuracy import VARIANTS, Batch, Corners, RunConfig, SynthOptions, analyse, as_ingested, simulate, unchanged_study
from vpimage.engine import Engine
from vpimage.engine._display import DisplayGain
from vpimage.kernels import get_backend


def shown_at_gain(scenario: str, seed: int, frames: slice, gain: float, *, batch: int = 16,
                  options: SynthOptions = SynthOptions()):
    """The engine's frames on the run (``options``) with ``frames`` stored at ``gain`` times their
    values (kept within the stored range), fed ``batch`` frames at a time, and the same run unchanged."""
    sim, plain_frames, plain = unchanged_study(scenario, seed, options)
    changed = plain_frames.copy()
    changed[frames] = np.clip(changed[frames] * gain, 0, 2**sim.run.bits_stored - 1)
    out = analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), changed, batch=batch)
    return out, plain


def assert_same_analysis(out, plain) -> None:
    """The same alert on every frame, and the same cement: Dice >= 0.95 where either run has
    any (the frame at another gain is registered a few tenths of a pixel apart)."""
    assert [f.result.alert for f in out] == [f.result.alert for f in plain]
    for ours, theirs in zip(out, plain):
        both = ours.cement_mask.sum() + theirs.cement_mask.sum()
        assert 2 * (ours.cement_mask & theirs.cement_mask).sum() >= 0.95 * both, ours.result.frame


@pytest.mark.parametrize("gain", [0.8, 1.1])
def test_one_frame_at_another_gain_is_not_cement(gain):
    out, plain = shown_at_gain("no_leak", 10, slice(30, 31), gain)
    assert {f.result.alert for f in out} == {AlertLevel.OK}
    assert_same_analysis(out, plain)


@pytest.mark.parametrize("gain", [0.7, 0.8, 1.15])
def test_a_gain_changed_for_good_mid_run_keeps_the_stop_on_time(gain):
    out, plain = shown_at_gain("venous_leak", 31, slice(20, None), gain)
    assert AlertLevel.STOP in {f.result.alert for f in out}
    assert_same_analysis(out, plain)


@pytest.mark.parametrize(("gain", "batch"), [(1.045, 16), (1.05, 16), (1.06, 16), (1.05, 1), (0.95, 16)])
def test_a_gain_changed_for_good_just_within_the_tolerance_raises_no_alert(gain, batch):
    # Read 1.04-1.05 from the 20th frame on (0.94-0.95 for 0.95): the frame before tells a
    # display kept from noise, also when the frames come one at a time (a live stream).
    out, plain = shown_at_gain("no_leak", 7, slice(20, None), gain, batch=batch)
    assert {f.result.alert for f in out} == {AlertLevel.OK}
    assert_same_analysis(out, plain)


def test_a_gain_changed_for_good_before_the_injection_raises_no_alert():
    # From the 5th of the 5 pre-injection frames on: the baseline gathers frames of both gains.
    out, plain = shown_at_gain("no_leak", 10, slice(4, None), 0.8)
    assert {f.result.alert for f in out} == {AlertLevel.OK}
    assert_same_analysis(out, plain)


@pytest.mark.parametrize(("scenario", "seed", "gain"), [("no_leak", 10, 1.1), ("no_leak", 10, 0.8), ("venous_leak", 31, 0.9)])
def test_a_gain_changed_for_good_half_way_through_the_pre_injection_frames_keeps_the_analysis(scenario, seed, gain):
    # Half of six pre-injection frames at the new gain: the baseline stays at the first frame's
    # contrast. Read back at the new one (as when more than half are): Dice 0.92 (no_leak at
    # 1.1) and 0.96 (at 0.8) against the unchanged run's, and the leak's alert changed on a frame.
    out, plain = shown_at_gain(scenario, seed, slice(3, None), gain, options=SynthOptions(pre_injection_frames=6))
    assert sum(f.result.alert is not AlertLevel.UNRELIABLE for f in plain) >= len(plain) - 1
    assert_same_analysis(out, plain)


def test_a_first_frame_at_another_gain_does_not_delay_the_stop():
    out, plain = shown_at_gain("posterior_approach", 17, slice(0, 1), 0.5)
    sim = unchanged_study("posterior_approach", 17)[0]
    truth_stop, plain_stop = test_accuracy.stop_times({"truth": sim.truth, "results": [f.result for f in plain]})
    assert plain_stop <= truth_stop + np.diff(sim.run.time_s).max()  # (the unchanged run: on time)
    assert_same_analysis(out, plain)


@pytest.mark.parametrize(("scenario", "seed", "variant"), [("venous_leak", 34, 3), ("no_leak", 11, 1)])
def test_an_unchanged_display_at_the_lowest_dose_reads_a_gain_of_one(scenario, seed, variant):
    # Before the gain was read over the baseline's own frames': 0.965-0.985 (venous 34) and
    # 0.971-0.99 (no_leak 11) on most frames after the freeze, near the kept tolerance.
    sim = simulate(scenario, seed=seed, options=SynthOptions(**VARIANTS[variant]))
    frames = as_ingested(sim.run)
    engine = Engine(
        RunConfig.defaults(), rows=frames.shape[1], columns=frames.shape[2], mm_per_px=sim.run.mm_per_px,
        fov_mask=sim.run.field.mask(*frames.shape[1:]), corners=Corners.from_dict(sim.truth["vertebral_body"]),
        white_level=2**sim.run.bits_stored - 1,
    )
    gains = []
    for i in range(len(frames)):
        engine.process(Batch(frames[i : i + 1], sim.run.time_s[i : i + 1], np.array([i])))
        gains.append(engine.state.display_gain)
    measured = np.array(gains)[np.isfinite(gains)]  # (not the frame the baseline froze on)
    assert len(measured) == len(frames) - 1
    assert np.abs(measured - 1.0).max() <= 0.025


# -- DisplayGain on its own: frames made from a reference by a known gain and level -------------

HOST = get_backend("numpy")


def display_gain() -> tuple[DisplayGain, np.ndarray]:
    """A DisplayGain on every pixel of a 32 x 32 grid, the default tolerances, and a reference
    with contrast to read (smoothed noise, attenuation units)."""
    rng = np.random.default_rng(0)
    reference = ndi.gaussian_filter(rng.normal(size=(32, 32)), 2.0).astype(np.float32) * 10 + 3
    seg = RunConfig.defaults().segmentation
    display = DisplayGain(HOST, np.ones((32, 32), bool), tolerance=seg.display_gain_tolerance,
                          kept_tolerance=seg.display_gain_kept_tolerance, to_device=np.asarray)
    return display, reference


def shown(reference: np.ndarray, gains) -> np.ndarray:
    """Frames ``[B, 32, 32]`` of the reference at each gain, each at another level."""
    return np.stack([g * reference + 0.5 * i for i, g in enumerate(gains)]).astype(np.float32)


def test_a_gain_past_the_tolerance_is_divided_and_one_within_it_is_only_measured():
    display, reference = display_gain()
    divided, measured = display.gains(shown(reference, [1.1, 1.0, 0.97, 0.8]), reference, {}, math.nan)
    np.testing.assert_allclose(measured, [1.1, 1.0, 0.97, 0.8], atol=1e-5)
    np.testing.assert_allclose(divided, [1.1, 1.0, 1.0, 0.8], atol=1e-5)


def test_a_display_changed_and_kept_is_divided_from_its_second_frame():
    # 1.04 on two frames running (within the single frame's 5 %, past the kept 3 %): the first
    # is not divided, the second is; a frame the other way from the one before is not.
    display, reference = display_gain()
    divided, _ = display.gains(shown(reference, [1.04, 1.04, 0.96, 1.0]), reference, {}, math.nan)
    np.testing.assert_allclose(divided, [1.0, 1.04, 1.0, 1.0], atol=1e-5)
    # The frame before the batch (``previous``) counts as the frame before its first.
    divided, _ = display.gains(shown(reference, [1.04]), reference, {}, 1.04)
    np.testing.assert_allclose(divided, [1.04], atol=1e-5)


def test_a_frame_with_the_contrast_inverted_or_flat_reads_no_contrast():
    display, reference = display_gain()
    frames = np.stack([-reference, np.full_like(reference, 2.0)])
    divided, measured = display.gains(frames, reference, {}, math.nan)
    assert measured[0] == pytest.approx(-1.0, abs=1e-5) and measured[1] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_array_equal(divided, [0.0, 0.0])


def test_the_gain_of_a_new_reference_is_read_over_what_its_own_frames_read_on_it():
    # The frames a baseline is the mean of read 0.97 on it (as a low-dose mean reads its own
    # frames): a frame of their display reads 1 against it, not 0.97; against another
    # reference the gain is read as it is.
    display, reference = display_gain()
    display.rebase(list(shown(reference, [0.97, 0.97, 0.97])), reference)
    _, measured = display.gains(shown(reference, [0.97, 1.1 * 0.97]), reference, {}, math.nan)
    np.testing.assert_allclose(measured, [1.0, 1.1], atol=1e-5)
    _, measured = display.gains(shown(reference, [0.97]), reference.copy(), {}, math.nan)
    np.testing.assert_allclose(measured, [0.97], atol=1e-5)


def test_a_frame_with_blades_is_read_on_the_bone_they_leave():
    # Frame 0's right half is dark (a blade): over the whole grid its gain is off, over the
    # left half (the bone the blades leave) it is the display's.
    display, reference = display_gain()
    frames = shown(reference, [1.0, 1.0])
    frames[0, :, 16:] = 0.0
    left = np.zeros((32, 32), bool)
    left[:, :16] = True
    _, measured = display.gains(frames, reference, {0: left}, math.nan)
    np.testing.assert_allclose(measured, [1.0, 1.0], atol=1e-5)
    assert display.gains(frames, reference, {}, math.nan)[1][0] < 0.9
