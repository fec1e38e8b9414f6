"""``vpimage synth``: render a phantom run with ground truth and write it as DICOM.

The files it writes are a set: all of them take their place, or (on an error) none does
and any old file at those paths is left as it was. Two outputs at one path are refused.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path


def add_parser(subparsers) -> None:
    from vpimage.synth import CALIBRATIONS, OBJECTS, SCENARIOS, SYNTAXES

    p = subparsers.add_parser(
        "synth",
        help="simulate a vertebroplasty fluoroscopy run with ground truth",
        description=(
            "Simulate lateral (or AP) fluoroscopy of a vertebroplasty injection and write it as "
            "DICOM, with its truth file (CONTRACT.md), per-frame truth masks and WALL.json."
        ),
    )
    p.add_argument("scenario", choices=SCENARIOS, metavar="SCENARIO", help=f"one of: {', '.join(SCENARIOS)}")
    p.add_argument("--out", required=True, type=Path, help="DICOM file to write (a new or empty folder for *-series objects)")
    p.add_argument("--truth", type=Path, help="truth JSON to write; masks go beside it as <stem>_masks.npz")
    p.add_argument("--wall", type=Path, help="WALL.json to write (the treated body's corners at frame 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same run")
    p.add_argument("--size", type=int, default=320, metavar="PX", help="image rows and columns, px (default 320)")
    p.add_argument("--frames", type=int, default=60, metavar="N", help="number of frames (default 60)")
    p.add_argument("--fps", type=float, default=5.0, metavar="F", help="frame rate, frames/s (default 5)")
    p.add_argument("--view", choices=("lateral", "ap"), default="lateral")
    p.add_argument("--syntax", choices=sorted(SYNTAXES), default="explicit-le", metavar="NAME",
                   help=f"transfer syntax (default explicit-le): {', '.join(sorted(SYNTAXES))}")
    p.add_argument("--object", dest="obj", choices=OBJECTS, default="xa", help="DICOM object (default xa)")
    p.add_argument("--calibration", choices=CALIBRATIONS,
                   help="how mm/px is written (default distances; pixel-spacing for sc)")
    p.add_argument("--tilt", type=float, default=0.0, metavar="DEG", help="spine tilt in the image, degrees (0-25)")
    p.add_argument("--dose", choices=("high", "normal", "low"), default="normal")
    p.add_argument("--photometric", choices=("MONOCHROME2", "MONOCHROME1"), default="MONOCHROME2",
                   help="MONOCHROME1 is valid for the enhanced objects only; the legacy xa, xrf and sc objects get it "
                        "as some archives hold them, which dciodvfy reports as an error (a test input for readers)")
    p.add_argument("--field", choices=("circle", "rectangle"), default="circle",
                   help="image-intensifier circle or rectangular collimation")
    p.add_argument("--bits", type=int, default=12, choices=(10, 11, 12),
                   help="bits stored (default 12; 11 for the enhanced and sc objects only)")
    p.add_argument("--no-breathing", dest="breathing", action="store_false", help="no breathing motion")
    p.add_argument("--sudden-shift", action="store_true", help="one sudden patient shift during injection")
    p.add_argument("--jitter", action="store_true", help="jittered frame times (Frame Time Vector)")
    p.add_argument("--exposure-changes", action="store_true",
                   help="tube output changing as automatic exposure control makes it (pulse to pulse, one step)")
    p.add_argument("--collimation-change", action="store_true",
                   help="the collimator blades close in once during the injection (body and cement stay in view)")
    p.add_argument("--needle-withdrawal", action="store_true",
                   help="the needle is pulled back 3-8 mm along its shaft once during the injection")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vpimage._atomic import all_or_none, folder_for_outputs
    from vpimage.synth import SynthOptions, check_bits_stored, checked_calibration, simulate, write_dicom

    calibration = checked_calibration(args.obj, args.syntax, args.calibration)  # (before the simulation)
    check_bits_stored(args.obj, args.bits)
    _check_distinct(_outputs(args))

    options = SynthOptions(
        size_px=args.size, frames=args.frames, fps=args.fps, view=args.view, tilt_deg=args.tilt,
        dose=args.dose, photometric=args.photometric, field=args.field, breathing=args.breathing,
        sudden_shift=args.sudden_shift, jitter=args.jitter, exposure_changes=args.exposure_changes,
        collimation_change=args.collimation_change, needle_withdrawal=args.needle_withdrawal, bits_stored=args.bits,
    )
    # The folders of the outputs, made as needed before the simulation: a series' folder, or a
    # file's, that the run made goes again if the set cannot be written.
    folders = [args.out if args.obj.endswith("-series") else args.out.parent]
    folders += [path.parent for path in (args.truth, args.wall) if path is not None]
    with contextlib.ExitStack() as made:
        for folder in folders:
            made.enter_context(folder_for_outputs(folder))
        result = simulate(args.scenario, seed=args.seed, options=options)
        made.enter_context(all_or_none())
        write_dicom(result.run, args.out, obj=args.obj, syntax=args.syntax, calibration=calibration, seed=args.seed)
        if args.truth is not None:
            result.save_truth(args.truth)
        if args.wall is not None:
            result.save_wall(args.wall)
    return 0


def _outputs(args: argparse.Namespace) -> dict[str, Path]:
    """The paths ``synth`` writes to, by the option that names them (the masks beside the truth)."""
    from vpimage.synth import SynthResult

    outputs = {"--out": args.out}
    if args.truth is not None:
        outputs["--truth"] = args.truth
        outputs["the masks of --truth"] = SynthResult.masks_path(args.truth)
    if args.wall is not None:
        outputs["--wall"] = args.wall
    return outputs


def _check_distinct(outputs: dict[str, Path]) -> None:
    """Refuse two outputs at one path (compared resolved): the later would overwrite the earlier.

    Raises
    ------
    ConfigError
        Naming the path and the two options that give it (bad options: exit status 3).
    """
    from vpimage.errors import ConfigError

    first_by_path: dict[str, str] = {}
    for option, path in outputs.items():
        first = first_by_path.setdefault(os.path.realpath(path), option)  # (Path.resolve raises on a loop)
        if first != option:
            raise ConfigError(f"{path}: given as both {first} and {option}; each output needs a path of its own")
