"""vpimage: watches the cement during percutaneous vertebroplasty.

The data's way through the package::

    source ─> Study ─> FrameBatch ─> Engine ─> FrameResult ─> sinks

- :mod:`vpimage.io` opens a DICOM file, a study folder, a DICOMDIR or a video as a
  ``Study``: lazy frames, its ``Geometry`` (mm/px at the isocentre, the exposed field,
  the view) and ``Timing`` (s); ``Study.iter_batches`` gives ``FrameBatch``es.
- :mod:`vpimage.anatomy` finds the needle and the treated body's corners when no
  WALL.json is given, with a confidence.
- :mod:`vpimage.engine` (``Engine``) consumes batches in time order: baseline, motion,
  each frame's level (a change of tube output moves a whole log-domain frame),
  collimator blades closed in mid-run (not cement, not registered on), segmentation
  and accumulation through the array kernels of :mod:`vpimage.kernels` (``kernels/``
  in the tree: numpy or torch), then one ``FrameResult`` per frame.
- :mod:`vpimage.measures` (front_to_wall, depth, leaks, speed, the front hidden in the
  needle's shadow) works on masks and corners; :mod:`vpimage.alerts` turns the measures
  into a level and holds it with its hold-time state machine.
- :mod:`vpimage.outputs` writes frames.csv, events.json, summary.json, masks and overlays
  (atomically); :mod:`vpimage.evaluate` scores them against a phantom's truth.
- :mod:`vpimage.config` (``RunConfig``) carries every threshold; :mod:`vpimage.cli` is the
  ``vpimage`` command and the only place that prints.
- :mod:`vpimage.synth` simulates fluoroscopy of a vertebroplasty with ground truth
  (anatomy, needle, cement growth, X-ray imaging) and writes it as DICOM; it never imports
  the analysis.
- :mod:`vpimage.errors` holds the exception tree; the CLI turns a
  :class:`VpimageError` into one line on standard error and exit status 3.
  ``vpimage._atomic`` writes every file atomically (results, exports, the phantom's).

``import vpimage`` stays light: torch, pynetdicom and Dask load only when used.
"""

import logging

from vpimage.errors import VpimageError

__version__ = "0.1.0"
__all__ = ["VpimageError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
