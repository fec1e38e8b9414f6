"""Inputs of the ingestion tests: the wg04 gold files and small hand-made runs.

Every truth is either the wg04 reference file (XA1_UNC) or the hand-built FluoroRun a
test writes with the phantom's DICOM writer: its frames, times (s) and mm/px.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from vpimage.synth._dicom import write_dicom
from fluoro_runs import CIRCLE, RECTANGLE, build_run  # noqa: F401  (re-exported to the io tests)
from vpimage.synth._run import FluoroRun

WG04 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "wg04"
def expected_frames(run: FluoroRun) -> np.ndarray:
    """The run's frames as the analysis must see them: float32, MONOCHROME1 inverted."""
    frames = run.frames.astype(np.float32)
    if run.photometric == "MONOCHROME1":
        frames = np.float32(2**run.bits_stored - 1) - frames
    return frames


def write(run: FluoroRun, folder: Path, obj="xa", syntax="explicit-le", calibration=None, name="run") -> Path:
    """Write ``run`` with the phantom's writer; the path to open (file, or series folder)."""
    out = folder / (name if obj.endswith("-series") else f"{name}.dcm")
    write_dicom(run, out, obj=obj, syntax=syntax, calibration=calibration)
    return out
