"""``vpimage export``: a study's frames, as the analysis sees them, and times to ``.npz``.

The archive is written frame by frame (memory holds one frame, whatever the study's
length) into a temporary file beside the target, which then replaces the target: a
reader sees the old file or the whole new one.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a study's frames and times to .npz",
        description=(
            "Open INPUT and write FILE.npz with `frames` (float32 [N, rows, cols], as the analysis "
            "sees them: rescaled, MONOCHROME1 inverted) and `time_s` (float64 [N], s from the first "
            "frame)."
        ),
    )
    p.add_argument("input", type=Path, metavar="INPUT", help="DICOM file, study folder, DICOMDIR or video")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.npz", help="archive to write")
    p.set_defaults(run=run)


def _write_member(archive: zipfile.ZipFile, name: str, shape: tuple, dtype, chunks) -> None:
    """Stream ``chunks`` (arrays whose bytes make up the array) as ``name.npy``."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as stream:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_2_0(stream, header)
        for chunk in chunks:
            stream.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def export_npz(study, out: Path) -> None:
    """Write ``study``'s frames (float32 [N, rows, cols]) and ``time_s`` (float64 [N]) to ``out``."""
    from vpimage._atomic import atomic_path

    with atomic_path(out) as temporary:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
            _write_member(archive, "frames", (study.n_frames, study.rows, study.columns), np.float32,
                          study.iter_frames())
            _write_member(archive, "time_s", (study.n_frames,), np.float64, [study.timing.time_s])


def run(args: argparse.Namespace) -> int:
    import vpimage.io
    from vpimage._atomic import folder_for_outputs
    from vpimage.cli._warnings import held_warnings

    with held_warnings() as rewrites:
        study = vpimage.io.open(args.input)
        rewrites.append(study.shown_text)  # (a path named after the patient: by the study's key)
        with folder_for_outputs(args.out.parent):
            export_npz(study, args.out)
    return 0
