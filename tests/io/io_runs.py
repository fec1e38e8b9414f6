"""Inputs of the ingestion tests: the wg04 gold files and small hand-made runs.

Every truth is either the wg04 reference file (XA1_UNC) or the hand-built FluoroRun a
test writes with the phantom's DICOM writer: its frames, times (s) and mm/px.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from vpimage.synth._dicom import write_dicom
from vpimage.synth._run import FieldOfView, FieldShape, FluoroRun

WG04 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "wg04"
CIRCLE = FieldOfView(FieldShape.CIRCLE, centre_rc=(23.6, 30.2), radius_px=21.4)
RECTANGLE = FieldOfView(FieldShape.RECTANGLE, left=3, right=57, top=5, bottom=41)


def build_run(*, n=5, rows=48, columns=60, bits=12, photometric="MONOCHROME2", jittered=False,
              field=CIRCLE, primary_deg=-88.5, secondary_deg=3.25, seed=0) -> FluoroRun:
    """A small run: random frames [n, rows, columns] below 2**bits, 15 fps (optionally
    jittered), 0.154 mm detector pitch, magnification 1100/740."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 2**bits, size=(n, rows, columns), dtype=np.uint16)
    time_s = np.arange(n) / 15.0
    if jittered:
        time_s[1:] += rng.uniform(-0.02, 0.02, n - 1)
    return FluoroRun(
        frames=frames, time_s=time_s, fps=15.0, bits_stored=bits, photometric=photometric,
        imager_pixel_spacing_mm=0.154, source_to_detector_mm=1100.0, source_to_patient_mm=740.0,
        view="lateral", positioner_primary_deg=primary_deg, positioner_secondary_deg=secondary_deg, field=field,
    )


def expected_frames(run: FluoroRun) -> np.ndarray:
    """The run's frames as the analysis must see them: float32, MONOCHROME1 inverted."""
    frames = run.frames.astype(np.float32)
    if run.photometric == "MONOCHROME1":
        frames = np.float32(2**run.bits_stored - 1) - frames
    return frames


def write(run: FluoroRun, folder: Path, obj="xa", syntax="explicit-le", calibration=None, name="run") -> Path:
    """Write ``run`` with the phantom's writer; the path to open (file, or series folder)."""
    out = folder / (name if obj.endswith("-series") else f"{name}.dcm")
    calibration = calibration or ("pixel-spacing" if obj == "sc" else "distances")
    write_dicom(run, out, obj=obj, syntax=syntax, calibration=calibration)
    return out
