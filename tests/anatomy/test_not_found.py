"""Poor evidence gives no confident body: a real angiogram, an image without a spine."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from anatomy_cases import paint_needle, simulate_pre_injection
from scipy import ndimage as ndi

import vpimage.io
from vpimage.anatomy import MIN_CONFIDENCE, find_anatomy, find_needle, pre_injection_image, study_anatomy

WG04 = Path(__file__).resolve().parents[3] / "shared" / "data" / "wg04" / "XA1_UNC.dcm"


@pytest.fixture(scope="module")
def angiogram():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no calibration: said elsewhere
        study = vpimage.io.open(WG04)
    image = pre_injection_image(np.stack([study.frame(0)]), fov_mask=study.geometry.fov_mask, display_log_range=11.0)
    return study, image


def test_wg04_has_no_needle_and_no_calibration(angiogram):
    study, image = angiogram
    assert study_anatomy(study, display_log_range=11.0).reason == "no_calibration"
    for view in ("lateral", "ap"):
        found = find_anatomy(image, mm_per_px=0.2, fov_mask=study.geometry.fov_mask, view=view)
        assert found.corners is None and found.confidence == 0.0 and found.reason == "needle_not_found"


@pytest.mark.parametrize("mm_per_px", [0.12, 0.3])
@pytest.mark.parametrize("tip, direction", [((450, 500), (1.0, -0.12)), ((600, 520), (-1.0, 0.2))])
def test_wg04_with_a_needle_painted_in_gives_no_confident_body(angiogram, mm_per_px, tip, direction):
    # The needle prior alone must not make a body out of vessels.
    study, image = angiogram
    fov = study.geometry.fov_mask
    painted = paint_needle(image, tip, direction, width_px=2.6 / mm_per_px)
    assert find_needle(painted, mm_per_px=mm_per_px, fov_mask=fov) is not None
    for view in ("lateral", "ap"):
        found = find_anatomy(painted, mm_per_px=mm_per_px, fov_mask=fov, view=view)
        assert found.corners is None and found.confidence < MIN_CONFIDENCE / 2 and found.needle is not None
        # A needle is found, so the body's sides are fitted and score too low.
        assert found.reason == "low_confidence"


def test_a_needle_in_soft_tissue_only_gives_no_body():
    noise = np.random.default_rng(0).normal(0.0, 0.02, (320, 320)).astype(np.float32)
    image = paint_needle(ndi.gaussian_filter(2.0 + noise, 0.7), (120, 150), (1.0, 0.05), width_px=7)
    for view in ("lateral", "ap"):
        found = find_anatomy(image, mm_per_px=0.36, view=view)
        assert found.needle is not None and found.corners is None and found.confidence < MIN_CONFIDENCE / 2
        # Sides are fitted around the needle's tip and make an outline, which scores too low.
        assert found.reason == "low_confidence"


def test_sides_that_make_no_outline_are_a_body_not_found(monkeypatch):
    # Where the fitted sides do not meet in a convex quadrilateral there is no body at all,
    # not a body found with too little confidence.
    import vpimage.anatomy._find as finder

    noise = np.random.default_rng(0).normal(0.0, 0.02, (320, 320)).astype(np.float32)
    image = paint_needle(ndi.gaussian_filter(2.0 + noise, 0.7), (120, 150), (1.0, 0.05), width_px=7)
    monkeypatch.setattr(finder, "_corners", lambda *args: None)
    found = find_anatomy(image, mm_per_px=0.36)
    assert found.needle is not None and found.corners is None and found.confidence == 0.0
    assert found.reason == "body_not_found"


def test_an_empty_field_finds_nothing():
    found = find_anatomy(np.zeros((64, 64), np.float32), mm_per_px=0.3, fov_mask=np.zeros((64, 64), bool))
    assert found.corners is None and found.confidence == 0.0 and found.reason == "body_not_found"


def test_a_needle_outside_the_field_is_not_looked_for():
    # The needle of the soft-tissue case above, but no pixel exposed: nothing in the image
    # counts, the body is not found before any needle is looked for.
    image = paint_needle(np.full((160, 160), 2.0, np.float32), (60, 75), (1.0, 0.05), width_px=7)
    assert find_needle(image, mm_per_px=0.36, fov_mask=np.ones(image.shape, bool)) is not None
    found = find_anatomy(image, mm_per_px=0.36, fov_mask=np.zeros(image.shape, bool))
    assert found.corners is None and found.confidence == 0.0 and found.needle is None
    assert found.reason == "body_not_found"


def test_a_body_found_below_the_asked_confidence_is_withheld():
    # A phantom body found at the default threshold is withheld, with the same score and
    # its needle, when the caller asks for more confidence than it has.
    sim, image, fov = simulate_pre_injection(2000, {})
    mm = sim.run.mm_per_px
    found = find_anatomy(image, mm_per_px=mm, fov_mask=fov)
    assert found.corners is not None and found.reason == "" and MIN_CONFIDENCE <= found.confidence <= 1.0
    strict = find_anatomy(image, mm_per_px=mm, fov_mask=fov, min_confidence=found.confidence + 1e-6)
    assert strict.corners is None and strict.reason == "low_confidence"
    assert strict.confidence == found.confidence and strict.needle == found.needle
