"""A change of tube output is not cement: the engine reads every frame at the reference's level.

Automatic exposure control changes the tube output from frame to frame (pulse to pulse,
and in steps as the patient's attenuation in the field changes). In a log-domain image a
change by a factor ``g`` moves every pixel by ``-ln g``. The phantom's ``exposure_changes``
makes it (3 % pulse to pulse, one step of 10-30 % during the injection; the display keeps
the first frame's mapping), and its truth (masks, front, events) does not change with it.

Measured before the engine took the level out (``no_leak`` seed 7 below): the first frame
whose output was 6 % under the baseline's (frame 11) read 620 mm2 of "cement", a breach
30 mm behind the wall and four leak classes, and the case stopped where nothing leaks.

A clipped pixel only bounds its truth, so the level cannot be taken out there as it is
elsewhere: black (steel along the beam) stays at the bottom of the reference's range, and
white is not measured (the last two tests).
"""

import numpy as np
import pytest

from vpimage.alerts import AlertLevel
from vpimage.engine import Engine
from vpimage.measures import Corners
from vpimage.synth import SynthOptions, simulate

import test_accuracy


def analysed(scenario: str, seed: int):
    return test_accuracy.analysed_phantom(scenario, seed, exposure_changes=True)


def test_a_study_without_a_leak_stays_ok_through_every_change_of_output():
    case = analysed("no_leak", 7)
    output = np.array(case["truth"]["exposure"]["tube_output"])
    assert output.min() < 0.8 and output.max() > 1.0  # pulses both ways and a step down of 18 %
    assert {r.alert for r in case["results"]} == {AlertLevel.OK}
    assert not any(r.leak_classes for r in case["results"])
    assert np.median(case["dice"]) >= 0.9 and case["dice"].min() >= 0.85, case["dice"].round(3)


def test_a_sliver_along_the_posterior_wall_is_not_cement_far_from_the_cement():
    # no_leak seed 142: at the top of each breath the posterior wall's cortex (a step of
    # about 2.0 in attenuation over a pixel and a half) leaves a 4 px band of 0.2 excess
    # after registration, under the smoothed-gradient threshold but for a pixel or two.
    # Two frames of higher output (+8 %, +6 %) lifted a 2 px sliver over it, 20 mm from
    # the cement: the engine read a blob on the wall, the front 0.7 mm from it, and
    # stopped from frame 12 to the end (the front "0.1 mm behind the wall" from frame 17).
    # Far from the cement, a quarter of a new blob must stand above what a sub-pixel
    # breath really leaves on such bone; no pixel of the sliver does.
    case = analysed("no_leak", 142)
    output = case["truth"]["exposure"]["tube_output"]
    assert output[12] > 1.07 and output[13] > 1.05
    assert {r.alert for r in case["results"]} == {AlertLevel.OK}
    nearest_truth = min(f["front_to_wall_mm"] for f in case["truth"]["frames"] if f["front_to_wall_mm"] is not None)
    nearest = np.nanmin([r.front_to_wall_mm for r in case["results"]])
    assert nearest_truth > 15.0 and nearest > nearest_truth - 1.5, (nearest, nearest_truth)


@pytest.mark.parametrize("scenario", ["posterior_breach", "disc_leak"])
def test_a_stop_comes_on_time_through_changes_of_output(scenario):
    case = analysed(scenario, 7)
    truth_stop, ours = test_accuracy.stop_times(case)
    assert ours is not None
    assert test_accuracy.early_limit(case) - 1e-3 <= ours
    assert ours <= test_accuracy.next_frame_time(case["truth"]["frames"], truth_stop) + 1e-3
    assert set(case["results"][-1].leak_classes) == set(case["truth"]["frames"][-1]["leak_classes"])
    assert np.median(case["dice"]) >= 0.9, case["dice"].round(3)


def test_steel_black_in_every_frame_stays_out_of_the_cement_when_the_output_rises(monkeypatch):
    # AP view: the needle seen along its shaft is black in every frame. The baseline there
    # is the bottom of the stored range, not the steel's attenuation; frame 44 of this study
    # has 33 % more output than the first, and read 0.44 of excess over the black steel (a
    # false posterior leak) before the engine held black at the reference's level.
    sim = simulate("no_leak", seed=1000, options=SynthOptions(view="ap", exposure_changes=True))
    assert max(sim.truth["exposure"]["tube_output"]) > 1.3
    assert (sim.run.frames[:5] == 0).any()  # black steel before the injection
    monkeypatch.setattr(test_accuracy, "Engine", lambda *args, **kwargs: Engine(*args, view="ap", **kwargs))
    frames = test_accuracy.analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]))
    assert not any(f.result.leak_classes for f in frames)
    assert {f.result.alert for f in frames} == {AlertLevel.OK}


def test_tissue_clipped_white_by_a_rise_of_output_is_not_cement():
    # Near-white tissue beside the body (a patch 4 mm in front of it, 20 stored levels
    # under white) clips to white from frame 30 on, when the whole frame brightens by 300
    # levels (a step of tube output). Read at the reference's level, the clipped patch
    # would show the step's 300 levels less its own 20 as excess; it is not measured.
    sim = simulate("no_leak", seed=7, options=SynthOptions(breathing=False))
    frames = test_accuracy.as_ingested(sim.run)
    top = 2**sim.run.bits_stored - 1
    corners = Corners.from_dict(sim.truth["vertebral_body"])
    anterior = (np.array(corners.anterior_superior) + np.array(corners.anterior_inferior)) / 2
    posterior = (np.array(corners.posterior_superior) + np.array(corners.posterior_inferior)) / 2
    forward = (anterior - posterior) / np.linalg.norm(anterior - posterior)
    x, y = np.rint(anterior + forward * 4.0 / sim.truth["mm_per_px"]).astype(int)
    patch = (slice(y - 4, y + 4), slice(x - 4, x + 4))
    frames[(slice(None),) + patch] = top - 20
    frames[30:] = np.minimum(frames[30:] + 300, top)
    out = test_accuracy.analyse(sim.run, corners, frames=frames)
    assert not any(f.cement_mask[patch].any() for f in out)
    assert not any(f.result.leak_classes for f in out)
    assert {f.result.alert for f in out} == {AlertLevel.OK}
