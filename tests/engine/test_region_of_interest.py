"""Cement is looked for in the vertebral body and ``leak_search_margin_mm`` around it, and nowhere else.

The phantom's venous leak runs about 14 mm out of the body (its truth mask). With the
default margin (30 mm) the engine follows it out there; with a 4 mm margin it finds no
cement farther than 4 mm from the body, and the same cement in the body. The masks it
gives stay whole frames either way.
"""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from vpimage.config import RunConfig
from vpimage.engine import Engine
from vpimage.measures import Corners, body_mask
from vpimage.synth import SynthOptions, simulate

from test_accuracy import Batch, as_ingested


@pytest.fixture(scope="module")
def venous_leak():
    return simulate("venous_leak", seed=4, options=SynthOptions(size_px=160, frames=30, fps=3.0))


def analysed(sim, margin_mm):
    defaults = RunConfig.defaults()
    config = dataclasses.replace(
        defaults, segmentation=dataclasses.replace(defaults.segmentation, leak_search_margin_mm=margin_mm)
    )
    frames = as_ingested(sim.run)
    engine = Engine(
        config,
        rows=frames.shape[1],
        columns=frames.shape[2],
        mm_per_px=sim.run.mm_per_px,
        fov_mask=sim.run.field.mask(*frames.shape[1:]),
        corners=Corners.from_dict(sim.truth["vertebral_body"]),
        white_level=2**sim.run.bits_stored - 1,
    )
    return engine.process(Batch(frames, sim.run.time_s, np.arange(len(frames)))), engine


def test_cement_beyond_the_leak_search_margin_is_not_looked_for(venous_leak):
    sim = venous_leak
    corners = Corners.from_dict(sim.truth["vertebral_body"])
    shape = sim.cement_masks.shape[1:]
    away_mm = ndi.distance_transform_edt(~body_mask(corners, shape)) * sim.truth["mm_per_px"]
    assert away_mm[sim.cement_masks[-1]].max() > 10.0  # the truth's vein runs out that far
    wide, wide_engine = analysed(sim, 30.0)
    near, near_engine = analysed(sim, 5.0)  # (the least margin the config allows)
    # (The state is on the reference frame, where the corners were drawn.)
    wide_cement, near_cement = wide_engine.state.accumulated, near_engine.state.accumulated
    assert away_mm[wide_cement].max() > 10.0
    assert away_mm[near_cement].max() <= 5.0
    in_body = away_mm == 0
    wide_in_body, near_in_body = int((wide_cement & in_body).sum()), int((near_cement & in_body).sum())
    assert abs(near_in_body - wide_in_body) <= 0.02 * wide_in_body
    for frames, engine in ((wide, wide_engine), (near, near_engine)):
        assert all(f.cement_mask.shape == shape for f in frames)
        arrival = engine.state.time_of_arrival_s
        assert arrival.shape == shape and np.isnan(arrival[~engine.state.accumulated]).all()
    assert "venous" in wide[-1].result.leak_classes
