"""Cement that shows against fewer pre-injection frames than the baseline should average.

A run whose frames from the 2nd (or the 1st) to the 16th cannot be used (blank here: a
dropout, or frames clipped white) shows, in its first usable frame, cement injected since
the 6th. Before the engine looked for cement from the second usable frame on, that frame
joined the baseline, because it held fewer than ``segmentation.baseline_frames_min`` (3)
frames: its cement was then the baseline's own, and its frame-to-frame noise. Measured on
these cases before: the venous leak never stopped, and it and the run without a leak were
``unreliable`` from the gap to their end (``image_too_noisy``), their cement measured at a
median Dice of 0.75 and 0.60; the disc leak (one frame before the gap) stopped 3 frames
after the truth.

The truth is the phantom's: the stop within a frame of the truth's, none without a leak,
and the cement measured as well as in the run without the gap.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from vpimage.alerts import AlertLevel

from test_accuracy import Corners, SynthOptions, analyse, as_ingested, simulate

GAP_END = 17  # frames [first, 17) are blank; the injection starts at the 6th


@lru_cache(maxsize=None)
def with_gap(scenario: str, seed: int, first: int):
    """The phantom run, and the engine's frames on it with frames ``first`` to 16 blank."""
    sim = simulate(scenario, seed=seed, options=SynthOptions())
    frames = as_ingested(sim.run)
    frames[first:GAP_END] = 0
    return sim, analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), frames)


def dice_after_the_gap(sim, out) -> np.ndarray:
    """Cement Dice against the truth on each frame after the gap with >= 20 mm2 of true cement."""
    return np.array([
        2 * (frame.cement_mask & mask).sum() / (frame.cement_mask.sum() + mask.sum())
        for frame, truth, mask in zip(out[GAP_END:], sim.truth["frames"][GAP_END:], sim.cement_masks[GAP_END:])
        if truth["cement_area_mm2"] >= 20.0
    ])


def first_stop(frames) -> int | None:
    return next((f.result.frame for f in frames if f.result.alert is AlertLevel.STOP), None)


@pytest.mark.parametrize(("scenario", "seed", "first"), [("venous_leak", 502, 2), ("disc_leak", 501, 1)])
def test_a_leak_after_a_gap_over_the_injections_start_stops_on_time(scenario, seed, first):
    sim, out = with_gap(scenario, seed, first)
    truth_stop = next(e["frame"] for e in sim.truth["events"] if e["level"] == "stop")
    assert truth_stop <= first_stop(out) <= truth_stop + 1
    # The frames of the gap are unreliable; after it, the cement is measured.
    assert all(f.result.alert is AlertLevel.UNRELIABLE for f in out[first:GAP_END])
    assert np.median(dice_after_the_gap(sim, out)) >= 0.90


def test_a_run_without_a_leak_is_measured_after_the_gap_and_never_alerts():
    sim, out = with_gap("no_leak", 500, 2)
    after = [f.result for f in out[GAP_END + 2:]]
    assert {r.alert for r in after} == {AlertLevel.OK}
    assert np.median(dice_after_the_gap(sim, out)) >= 0.90
    errors = [abs(r.front_to_wall_mm - t["front_to_wall_mm"]) for r, t in zip(after, sim.truth["frames"][GAP_END + 2:])]
    assert np.median(errors) <= 0.5


def test_a_display_gain_that_clips_the_field_until_the_blades_close_in_raises_no_alert():
    """A display gain 15 % higher from the 3rd frame on clips a fifth of the field white or
    more (``unreliable``) until collimator blades close in over the bright part, at the 58th.
    The first frame measured then joined the baseline's two frames, and the run without a
    leak stopped from the next to its end (its cement outside the body, a venous leak)."""
    sim = simulate("no_leak", seed=107, options=SynthOptions(collimation_change=True))
    frames = as_ingested(sim.run)
    frames[2:] = np.clip(frames[2:] * 1.15, 0, 2**sim.run.bits_stored - 1)
    out = analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), frames)
    assert {f.result.alert for f in out} == {AlertLevel.OK, AlertLevel.UNRELIABLE}
    last, truth = out[-1], sim.cement_masks[-1]
    assert last.result.alert is AlertLevel.OK
    assert 2 * (last.cement_mask & truth).sum() >= 0.90 * (last.cement_mask.sum() + truth.sum())
