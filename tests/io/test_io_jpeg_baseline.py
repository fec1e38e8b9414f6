"""JPEG baseline (8-bit) cine, grey and colour, which the phantom's writer does not make:
encoded here with OpenCV and encapsulated by hand; the truth is OpenCV's own decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from io_runs import build_run, write
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

import vpimage.io


def jpeg_study(tmp_path, images, photometric):
    """An XA file of ``images`` (uint8 [n, rows, cols] or [n, rows, cols, 3] BGR) in JPEG baseline."""
    path = write(build_run(n=len(images), rows=images.shape[1], columns=images.shape[2], bits=8), tmp_path, "xa")
    ds = dcmread(path)
    encoded = [cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for image in images]
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PhotometricInterpretation = photometric
    if images.ndim == 4:
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.save_as(path, enforce_file_format=True)
    return path, [cv2.imdecode(np.frombuffer(e, np.uint8), cv2.IMREAD_UNCHANGED) for e in encoded]


def test_grey_jpeg_baseline_decodes_like_opencv(tmp_path):
    rng = np.random.default_rng(3)
    images = np.clip(rng.normal(120, 30, (3, 40, 56)), 0, 255).astype(np.uint8)
    path, reference = jpeg_study(tmp_path, images, "MONOCHROME2")
    study = vpimage.io.open(path)
    assert study.transfer_syntax == JPEGBaseline8Bit.name
    for frame, expected in zip(study.iter_frames(), reference):
        assert np.abs(frame - expected).max() <= 1  # IDCT rounding may differ by one level


def test_colour_jpeg_baseline_becomes_luminance_with_a_warning(tmp_path):
    rng = np.random.default_rng(4)
    images = np.clip(rng.normal(120, 30, (2, 40, 56, 3)), 0, 255).astype(np.uint8)
    path, reference = jpeg_study(tmp_path, images, "YBR_FULL_422")
    with pytest.warns(UserWarning, match="converted to luminance"):
        frames = list(vpimage.io.open(path).iter_frames())
    for frame, expected in zip(frames, reference):
        luminance = cv2.cvtColor(expected, cv2.COLOR_BGR2GRAY).astype(np.float32)
        assert np.abs(frame - luminance).max() <= 2  # YBR->RGB and rounding differ slightly (seen: 1.4)
