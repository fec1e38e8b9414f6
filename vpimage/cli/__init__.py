"""The ``vpimage`` command line: one module per subcommand, dispatched here.

Each subcommand module provides ``add_parser(subparsers)``, which registers the
subcommand and sets ``run`` (``args -> exit status``) as its default. This is the only
place that turns a :class:`~vpimage.errors.VpimageError` into one line on standard error
and its exit status (3 for bad input, 1 for an output that cannot be written); argparse
answers bad usage with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import warnings

from vpimage import __version__
from vpimage.cli._native import native_output_dropped
from vpimage.cli._warnings import held_warnings
from vpimage.errors import VpimageError

__all__ = ["main"]

# Subcommand modules of vpimage.cli, in the order --help lists them.
_COMMANDS = ("synth", "analyze", "evaluate", "info", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpimage",
        description="Watch the cement in vertebroplasty fluoroscopy.",
    )
    parser.add_argument("--version", action="version", version=f"vpimage {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log progress (-vv: debug)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"vpimage.cli.{name}").add_parser(subparsers)
    return parser


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time of the record.

    ``main`` may run many times in one process (tests, notebooks) under a redirected
    stderr; a handler holding the stderr of an earlier call would write to a closed file.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _configure_logging(verbosity: int) -> None:
    """Log vpimage's own messages to stderr; other libraries' loggers stay silent.

    pydicom logs every failed decoder attempt with a traceback; a bad file must still
    cost the user one line on stderr (the VpimageError that follows says it all).
    """
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("vpimage: %(levelname)s: %(name)s: %(message)s"))
    logger = logging.getLogger("vpimage")
    logger.handlers = [h for h in logger.handlers if isinstance(h, logging.NullHandler)] + [handler]
    logger.setLevel(level)
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # (while the subcommands' modules load)
        print("vpimage: interrupted", file=sys.stderr)
        return 1
    _configure_logging(args.verbose)
    native = native_output_dropped() if args.verbose == 0 else contextlib.nullcontext()
    with native, warnings.catch_warnings():
        if getattr(args, "quiet", False):
            warnings.simplefilter("ignore")
        try:
            with held_warnings():  # (analyze shows each study's when it is done)
                return args.run(args)
        except VpimageError as error:
            print(f"vpimage: error: {error}", file=sys.stderr)
            return error.exit_status
        except KeyboardInterrupt:  # (outputs are written atomically: nothing half-written is left)
            print("vpimage: interrupted", file=sys.stderr)
            return 1  # (CONTRACT.md: 1 for anything but done, bad usage and bad input)
