"""The anatomy of a study: its first frames aligned on frame 0 and averaged."""

from __future__ import annotations

import numpy as np
import pydicom
from anatomy_cases import simulate_pre_injection, truth_corners

import vpimage.io
from vpimage.anatomy import MIN_CONFIDENCE, corner_errors_px, find_anatomy, pre_injection_image, study_anatomy
from vpimage.kernels import get_backend
from vpimage.synth import SynthOptions, simulate, write_dicom


def test_pre_injection_image_is_in_frame_0_coordinates():
    # Frame 0 and copies of it moved by known whole-pixel shifts: the mean is frame 0.
    rng = np.random.default_rng(1)
    base = np.full((96, 96), 3000.0, np.float32)
    base[30:60, 25:70] = 1500.0  # a dense block (lower values: more attenuation)
    base += rng.normal(0, 5, base.shape).astype(np.float32)
    shifted = [np.roll(base, shift, axis=(0, 1)) for shift in ((0, 0), (2, -3), (-1, 2))]
    fov = np.ones(base.shape, bool)
    image = pre_injection_image(np.stack(shifted), fov_mask=fov, display_log_range=11.0)
    reference = get_backend("numpy").attenuation(base, white_level=4095.0, log_range=11.0)
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs(image - reference)[inner].max() < 0.05 * (reference.max() - reference.min())


def test_one_frame_and_several_frames_find_the_same_corners():
    sim, image, fov = simulate_pre_injection(2200, {"dose": "low"})
    frames = sim.run.frames.astype(np.float32)[:1]
    single = pre_injection_image(frames, fov_mask=fov, display_log_range=11.0)
    mm = sim.run.mm_per_px
    a = find_anatomy(image, mm_per_px=mm, fov_mask=fov)
    b = find_anatomy(single, mm_per_px=mm, fov_mask=fov)
    truth = truth_corners(sim)
    assert np.median(corner_errors_px(a.corners, truth)) * mm <= 1.0
    assert np.median(corner_errors_px(b.corners, truth)) * mm <= 1.5



def test_a_study_without_shutters_whose_trocar_clips_black_at_the_fields_edge_has_its_needle(tmp_path):
    # Without shutter attributes the field comes from the pixels. The AP trocar clips to 0
    # where it crosses the intensifier's circle; the field once lost it with the dark
    # border, and the study had no needle (needle_not_found).
    sim = simulate("posterior_breach", seed=8, options=SynthOptions(frames=8, size_px=256, view="ap"))
    (path,) = write_dicom(sim.run, tmp_path / "run.dcm")
    ds = pydicom.dcmread(path)
    for keyword in ("ShutterShape", "CenterOfCircularShutter", "RadiusOfCircularShutter"):
        delattr(ds, keyword)
    ds.save_as(path)
    study = vpimage.io.open(path)
    assert study.geometry.fov_source == "pixels" and study.geometry.view == "ap"
    found = study_anatomy(study, display_log_range=11.0)
    mm = sim.run.mm_per_px
    assert found.confidence >= MIN_CONFIDENCE and found.reason == ""
    assert np.linalg.norm(np.subtract(found.needle.tip_px, sim.truth["needle"]["tip_px"])) * mm <= 1.5
    assert np.median(corner_errors_px(found.corners, truth_corners(sim))) * mm <= 1.5
