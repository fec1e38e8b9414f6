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

Here the truth is the same study without the change: the alerts must be the same, frame by
frame, and the cement the same to a few pixels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from vpimage.alerts import AlertLevel

import test_accuracy
from test_accuracy import Corners, SynthOptions, analyse, as_ingested, simulate


@lru_cache(maxsize=None)
def study(scenario: str, seed: int):
    """The phantom run, its frames as ingested, and the engine's frames on them unchanged."""
    sim = simulate(scenario, seed=seed, options=SynthOptions())
    frames = as_ingested(sim.run)
    return sim, frames, analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), frames)


def shown_at_gain(scenario: str, seed: int, frames: slice, gain: float):
    """The engine's frames on the run with ``frames`` stored at ``gain`` times their values
    (kept within the stored range), and the same run unchanged."""
    sim, plain_frames, plain = study(scenario, seed)
    changed = plain_frames.copy()
    changed[frames] = np.clip(changed[frames] * gain, 0, 2**sim.run.bits_stored - 1)
    out = analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), changed)
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


def test_a_gain_changed_for_good_before_the_injection_raises_no_alert():
    # From the 5th of the 5 pre-injection frames on: the baseline gathers frames of both gains.
    out, plain = shown_at_gain("no_leak", 10, slice(4, None), 0.8)
    assert {f.result.alert for f in out} == {AlertLevel.OK}
    assert_same_analysis(out, plain)


def test_a_first_frame_at_another_gain_does_not_delay_the_stop():
    out, plain = shown_at_gain("posterior_approach", 17, slice(0, 1), 0.5)
    sim = study("posterior_approach", 17)[0]
    truth_stop, plain_stop = test_accuracy.stop_times({"truth": sim.truth, "results": [f.result for f in plain]})
    assert plain_stop <= truth_stop + np.diff(sim.run.time_s).max()  # (the unchanged run: on time)
    assert_same_analysis(out, plain)
