"""What the frozen baseline fixes for the segmentation (EngineState.maps), against the phantom's
truth: the needle map holds the whole needle, what is never cement holds everything off the field
and on its rim, and the blind pixels are those whose threshold rose past the documented share of
the contrast."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from vpimage.config import RunConfig
from vpimage.measures import Corners
from vpimage.synth import SynthOptions, simulate

from test_accuracy import analysed_engine


@pytest.fixture(scope="module", params=[{}, {"dose": "low", "field": "rectangle"}], ids=["plain", "low_dose_blades"])
def study(request):
    # (No breathing: the first frame's needle is the baseline's, pixel for pixel.)
    sim = simulate("posterior_approach", seed=3, options=SynthOptions(frames=20, breathing=False, **request.param))
    _, engine = analysed_engine(sim.run, Corners.from_dict(sim.truth["vertebral_body"]))
    return sim, engine


def test_the_needle_map_holds_the_whole_needle_and_its_rim_lies_on_it(study):
    sim, engine = study
    maps = engine.state.maps
    truth = engine.roi.crop(sim.needle_masks[0])
    assert truth.sum() > 100 and (maps.needle | ~truth).all()
    assert (maps.needle | ~maps.needle_rim).all()
    assert 0 < maps.needle_rim.sum() < maps.needle.sum()  # (the core is not rim)


def test_nothing_off_the_field_or_on_its_rim_is_ever_cement(study):
    sim, engine = study
    field = sim.run.field.mask(*sim.needle_masks.shape[1:])
    margin = RunConfig.defaults().segmentation.field_margin_px
    rim = field & ~ndi.binary_erosion(field, iterations=margin, border_value=1)
    off = engine.roi.crop(~field | rim)
    assert margin > 0 and engine.roi.crop(rim).any()
    assert (engine.state.maps.excluded | ~off).all()


def test_blind_pixels_are_those_whose_threshold_rose_past_the_share_of_the_contrast(study):
    _, engine = study
    maps, config = engine.state.maps, RunConfig.defaults()
    limit = config.reliability.blind_threshold_ratio * config.segmentation.cement_contrast
    inside = engine.roi.crop(maps.blind)
    np.testing.assert_array_equal(inside, maps.cement_raise >= limit)
    assert inside.any() and maps.blind.sum() == inside.sum()  # (none outside the region of interest)
