"""Ingestion: a path becomes a :class:`Study` with lazy frames, geometry and timing.

>>> import vpimage.io
>>> study = vpimage.io.open("run.dcm")                      # doctest: +SKIP
>>> for batch in study.iter_batches(16):                     # doctest: +SKIP
...     batch.frames.shape, batch.time_s, batch.index        # [B, rows, cols], [B] s, [B]

:func:`discover` lists every study under a folder tree or DICOMDIR (for batch work);
each :class:`StudySource` opens to a :class:`Study`.

Frame values as the analysis sees them: float32 ``[rows, cols]``, after the Modality
LUT or Rescale Slope/Intercept, oriented like MONOCHROME2 (higher = brighter = less
attenuation). MONOCHROME1 is inverted within its value range, ``(2**BitsStored - 1) -
value`` without rescale (``lo + hi - value`` over the rescaled range ``[lo, hi]``), so
radiopaque cement is darker than bone in both. Colour (RGB, YBR) frames become
luminance with a warning. Millimetres are at the isocentre (:class:`Geometry`), times
in seconds from the first frame (:class:`Timing`).
"""

from __future__ import annotations

from vpimage.io._discovery import StudySource, discover, open_path
from vpimage.io._geometry import Geometry
from vpimage.io._study import FrameBatch, Study
from vpimage.io._timing import FALLBACK_FPS, Timing

__all__ = ["FALLBACK_FPS", "FrameBatch", "Geometry", "Study", "StudySource", "Timing", "discover", "open"]


def open(path) -> Study:  # noqa: A001 - the public name the analysis codes against
    """Open a study: a DICOM file, a folder holding one study, a DICOMDIR, or a video.

    Parameters
    ----------
    path : str or PathLike
        What to open.

    Returns
    -------
    Study
        Lazy frames (float32 [rows, cols], see the module docstring), geometry, timing.

    Raises
    ------
    InvalidStudyError
        Missing, unreadable, truncated or inconsistent input; the message names the file
        and the reason.
    UnsupportedError
        Well-formed input that cannot be handled (no decoder for its encoding, an object
        without pixels, non-square pixels).
    """
    return open_path(path)
