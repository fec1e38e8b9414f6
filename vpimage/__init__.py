"""vpimage: watches the cement during percutaneous vertebroplasty.

The data's way through the package::

    source ─> Study ─> FrameBatch ─> Engine ─> FrameResult ─> sinks

- :mod:`vpimage.synth` simulates fluoroscopy of a vertebroplasty with ground truth
  (anatomy, needle, cement growth, X-ray imaging) and writes it as DICOM.
- :mod:`vpimage.errors` holds the exception tree; the CLI (:mod:`vpimage.cli`) turns a
  :class:`VpimageError` into one line on standard error and exit status 3.

``import vpimage`` stays light: torch, pynetdicom and Dask load only when used.
"""

import logging

from vpimage.errors import VpimageError

__version__ = "0.1.0"
__all__ = ["VpimageError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
