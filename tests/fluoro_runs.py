"""Small hand-built fluoroscopy runs, shared by the writer and the ingestion tests.

Their truth is what they hold: random frames, times (s), detector pitch and distances.
"""

from __future__ import annotations

import numpy as np

from vpimage.synth._run import FieldOfView, FieldShape, FluoroRun

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
