"""Poor evidence gives no confident body: a real angiogram, an image without a spine."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from anatomy_cases import paint_needle
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


def test_a_needle_in_soft_tissue_only_gives_no_body():
    noise = np.random.default_rng(0).normal(0.0, 0.02, (320, 320)).astype(np.float32)
    image = paint_needle(ndi.gaussian_filter(2.0 + noise, 0.7), (120, 150), (1.0, 0.05), width_px=7)
    for view in ("lateral", "ap"):
        found = find_anatomy(image, mm_per_px=0.36, view=view)
        assert found.needle is not None and found.corners is None and found.confidence < MIN_CONFIDENCE / 2


def test_an_empty_field_finds_nothing():
    found = find_anatomy(np.zeros((64, 64), np.float32), mm_per_px=0.3, fov_mask=np.zeros((64, 64), bool))
    assert found.corners is None and found.confidence == 0.0
