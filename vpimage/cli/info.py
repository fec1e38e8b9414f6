"""``vpimage info``: what a study is (size, timing, calibration, encoding), no patient data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe a study: frames, size, fps, mm/px, view, encoding",
        description=(
            "Open INPUT (DICOM file, study folder, DICOMDIR or video) and print its frames, size, "
            "frame rate, duration, mm/px at the isocentre and its source, view, photometric "
            "interpretation, transfer syntax and SOP class. No patient identity is printed."
        ),
    )
    p.add_argument("input", type=Path, metavar="INPUT", help="DICOM file, study folder, DICOMDIR or video")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.set_defaults(run=run)


def describe(study) -> dict:
    """The facts ``info`` prints about ``study`` (a :class:`vpimage.io.Study`)."""
    time_s = study.timing.time_s
    return {
        "frames": study.n_frames,
        "rows": study.rows,
        "columns": study.columns,
        "fps": float(study.timing.fps),
        "duration_s": float(time_s[-1]) if len(time_s) else 0.0,
        "timing": study.timing.source,
        "mm_per_px": study.geometry.mm_per_px,
        "calibration": study.geometry.calibration,
        "field_of_view": study.geometry.fov_source,
        "view": study.geometry.view,
        "photometric": study.photometric,
        "transfer_syntax": study.transfer_syntax,
        "sop_class": study.sop_class,
        "study_key": study.key,
    }


def run(args: argparse.Namespace) -> int:
    import vpimage.io
    from vpimage.cli._warnings import held_warnings

    with held_warnings() as rewrites:
        study = vpimage.io.open(args.input)
        rewrites.append(study.shown_text)  # (a path named after the patient: by the study's key)
        facts = describe(study)
    if args.json:
        print(json.dumps(facts))
    else:
        width = max(len(k) for k in facts)
        for key, value in facts.items():
            print(f"{key:<{width}}  {'none' if value is None else value}")
    return 0
