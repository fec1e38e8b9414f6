"""``vpimage evaluate``: score an analysis folder against a truth file.

    vpimage evaluate RESULT_DIR TRUTH.json

Writes the report to ``RESULT_DIR/evaluation.json`` and prints it as JSON, less its
``per_frame`` list (which stays in the file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``evaluate`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score an analysis against a truth file",
        description="Score the output folder of `vpimage analyze` against a truth file (as `vpimage synth "
        "--truth` writes it): Dice of the cement masks, front_to_wall_mm errors, alert timing, leak classes. "
        "Writes the report to RESULT_DIR/evaluation.json and prints it (less the per-frame list).",
    )
    parser.add_argument("result_dir", metavar="RESULT_DIR", help="output folder of `vpimage analyze`")
    parser.add_argument("truth", metavar="TRUTH.json", help="truth file (CONTRACT.md 'Truth files')")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Score, print and write the report; return the exit status (errors propagate as VpimageError)."""
    from vpimage.evaluate import EVALUATION_FILE, evaluate, evaluation_json, write_evaluation_json

    report = evaluate(args.result_dir, args.truth)
    write_evaluation_json(Path(args.result_dir) / EVALUATION_FILE, report)
    print(evaluation_json({key: value for key, value in report.items() if key != "per_frame"}), end="")
    return 0
