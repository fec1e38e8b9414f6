"""Fluoroscopy phantom of vertebroplasty with ground truth, and its DICOM writer.

:func:`simulate` renders a :class:`FluoroRun` (anatomy, trocar, cement growing by invasion
percolation, Beer-Lambert imaging with quantum noise and motion) together with its truth
(CONTRACT.md "Truth files", per-frame cement masks). :func:`write_dicom` stores a run as
legacy or enhanced XA/XRF, secondary capture or a single-frame series, in any transfer
syntax of :data:`SYNTAXES`. Nothing here imports the analysis: the truth stays independent.
"""

from vpimage.synth._dicom import CALIBRATIONS, OBJECTS, SYNTAXES, check_bits_stored, checked_calibration, write_dicom
from vpimage.synth._phantom import SCENARIOS, SynthOptions, SynthResult, simulate
from vpimage.synth._run import FieldOfView, FieldShape, FluoroRun

__all__ = [
    "CALIBRATIONS",
    "OBJECTS",
    "SCENARIOS",
    "SYNTAXES",
    "FieldOfView",
    "FieldShape",
    "FluoroRun",
    "SynthOptions",
    "SynthResult",
    "check_bits_stored",
    "checked_calibration",
    "simulate",
    "write_dicom",
]
