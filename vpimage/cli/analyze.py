"""``vpimage analyze``: studies in, frames.csv / events.json / summary.json / masks.npz / config.toml out.

    vpimage analyze INPUT [INPUT ...] --out DIR [--wall WALL.json] [--backend auto|numpy|torch]
                    [--device auto|cpu|cuda] [--config FILE.toml] [--overlay] [--quiet]

One INPUT writes into DIR; several write one subfolder of DIR each, named from the
input's file (or folder) name, never from patient data. A study that cannot be read (or
its outputs written) costs only itself: the others are analysed, then the command exits 3
(1 when only outputs could not be written) with one line naming each study that failed and why. The heavy modules load only when the
command runs.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

__all__ = ["add_parser", "analyze_study", "read_wall"]

logger = logging.getLogger(__name__)

# Frames decoded and analysed per engine call.
_BATCH = 16
OVERLAY_FILE, TIMELINE_FILE = "overlay.mp4", "timeline.png"  # (--overlay)


def add_parser(subparsers) -> None:
    """Register ``analyze`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "analyze",
        help="measure the cement front against the posterior wall and raise alerts",
        description="Analyse one or more studies: per-frame cement measures and alerts, "
        "written as frames.csv, events.json, summary.json, masks.npz and config.toml (the thresholds used).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM file, study folder, DICOMDIR or video")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (one subfolder per INPUT if several)")
    parser.add_argument("--wall", metavar="WALL.json", help="vertebral body corners (else found automatically)")
    parser.add_argument("--backend", choices=("auto", "numpy", "torch"), default="auto", help="array backend")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the backend computes")
    parser.add_argument("--config", metavar="FILE.toml", help="thresholds and engine parameters")
    parser.add_argument("--overlay", action="store_true", help="also write overlay.mp4 and timeline.png")
    parser.add_argument("--quiet", action="store_true",
                        help="print no progress nor reading warnings: only errors, and the warnings that a study's "
                             "analysis may mislead (corners swapped, no cement seen, ...)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Analyse every INPUT; return the exit status (errors propagate as VpimageError).

    A study that cannot be read, or whose outputs cannot be written, does not stop the
    others: they are analysed, and then its error is raised (several:
    :class:`~vpimage.errors.StudiesFailedError` naming each).
    """
    from vpimage._atomic import folder_for_outputs
    from vpimage._paths import path_argument
    from vpimage.config import RunConfig
    from vpimage.errors import StudiesFailedError

    for option in ("out", "wall", "config"):  # (an empty one, as an unset shell variable gives, is refused)
        if getattr(args, option) is not None:
            path_argument(getattr(args, option), f"--{option}")
    config = RunConfig.from_toml(args.config) if args.config is not None else RunConfig.defaults()
    wall = read_wall(args.wall) if args.wall is not None else None
    with folder_for_outputs(args.out) as out:  # (an output that cannot be written fails before any analysis)
        failures = _analyze_each(args, out, config, wall)
    if len(args.inputs) == 1 and failures:
        raise failures[0]
    if failures:
        raise StudiesFailedError(failures, total=len(args.inputs))
    return 0


def _analyze_each(args: argparse.Namespace, out: Path, config, wall) -> list:
    """Analyse each input into its folder under ``out``; the errors of the studies that
    failed. A study that fails leaves no empty folder behind that this run made."""
    import vpimage.io
    from vpimage._atomic import folder_for_outputs
    from vpimage.cli._warnings import held_warnings
    from vpimage.errors import InvalidStudyError, OutputError

    failures, redacted = [], collections.Counter()
    for source, target in _output_folders(args.inputs, out):
        try:
            with held_warnings() as rewrites:  # (warnings shown as each study is done)
                study = vpimage.io.open(source)
                rewrites.append(study.shown_text)  # (a path named after the patient: by the study's key)
                if target != out and (name := study.shown_name(target.name)) != target.name:
                    # (a subfolder named after the patient: after the study's key instead)
                    redacted[name] += 1
                    target = target.with_name(name if redacted[name] == 1 else f"{name}_{redacted[name]}")
                with folder_for_outputs(target):
                    summary = analyze_study(study, source, target, config=config, wall=wall, backend=args.backend,
                                            device=args.device, overlay=args.overlay)
        except (InvalidStudyError, OutputError) as error:  # (a study that fails has its error alone)
            failures.append(error)
            continue
        if not args.quiet:
            first_stop = summary["first_stop_s"]
            stop = "never" if first_stop is None else f"{first_stop:.2f} s"
            skipped = len(summary["skipped_files"])
            print(
                f"{summary['input']}: {summary['frames']} frames, max alert {summary['max_alert']}, "
                f"first stop {stop}{f', {skipped} file(s) skipped' if skipped else ''} -> {target}"
            )
    return failures


def _output_folders(inputs: list[str], out: Path) -> list[tuple[str, Path]]:
    """One output folder per input: ``out`` itself for one, else ``out/<stem>`` (made unique;
    the stem of the absolute path: ``..`` would name ``out``'s parent)."""
    if len(inputs) == 1:
        return [(inputs[0], out)]
    taken: set[str] = set()
    pairs = []
    for source in inputs:
        stem = Path(os.path.abspath(source)).stem or "study"
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}_{n}"
        taken.add(name)
        pairs.append((source, out / name))
    return pairs


def read_wall(path: str | Path) -> dict:
    """Read WALL.json: ``{"frame": int, "vertebral_body": {corner: [x, y], ...}}``.

    Returns
    -------
    dict
        ``{"frame": int, "corners": Corners, "path": Path}``.

    Raises
    ------
    InvalidStudyError
        The file cannot be read, is not JSON, or its corners are malformed.
    """
    from vpimage.errors import InvalidStudyError
    from vpimage.measures import Corners

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidStudyError(path, f"cannot read WALL.json: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # (also bad UTF-8, too many digits, too deep a nesting)
        raise InvalidStudyError(path, f"not valid JSON: {error}") from None
    if not isinstance(data, dict) or "vertebral_body" not in data:
        raise InvalidStudyError(path, 'WALL.json must be an object with "vertebral_body" (and "frame")')
    frame = data.get("frame", 0)
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise InvalidStudyError(path, f'"frame" must be a frame index >= 0; got {frame!r}')
    try:
        corners = Corners.from_dict(data["vertebral_body"])
    except ValueError as error:
        raise InvalidStudyError(path, str(error)) from None
    return {"frame": frame, "corners": corners, "path": Path(path)}


def _check_wall(source, wall: dict, study) -> None:
    """Refuse WALL.json for a frame the study lacks, or with a corner off its image (a wall
    that is not in view cannot be measured against: another study's corners, x and y
    swapped on a tall image). The error names the study (a run of several goes on with the
    others) and the WALL.json file."""
    from vpimage.errors import InvalidStudyError

    if wall["frame"] >= study.n_frames:
        raise InvalidStudyError(
            source, f"WALL.json {wall['path']}: frame {wall['frame']} is beyond the study's {study.n_frames} frames"
        )
    corners = wall["corners"].to_dict()
    outside = [
        f"{name} ({x:g}, {y:g})"
        for name, (x, y) in corners.items()
        if not (-0.5 <= x <= study.columns - 0.5 and -0.5 <= y <= study.rows - 0.5)
    ]
    if outside:
        raise InvalidStudyError(
            source,
            f"WALL.json {wall['path']}: corners off the {study.columns} x {study.rows} px image (x, y): "
            f"{', '.join(outside)}",
        )


def _on_first_frame(study, source, corners, frame: int, make_engine) -> tuple:
    """Corners drawn on a later ``frame`` of a finished study, moved onto its first frame by
    the engine's own registration of that frame against the first.

    Everything the engine places by the body at its start (the bone motion is measured on,
    the search region, the leak channel's outline) is then where the body is in the first
    frame, not where it was in ``frame``: the engine itself, fed frames in order as a live
    stream feeds them, can only move the corners when ``frame`` comes.

    Returns
    -------
    (Corners, int)
        The corners on frame 0 and 0; or as drawn and ``frame`` when that frame cannot be
        registered (the engine then moves them itself, by the first usable frame from
        ``frame`` on).
    """
    import numpy as np

    from vpimage.io import FrameBatch

    probe = make_engine(corners, frame)
    index = np.array([0, frame])
    (_, drawn_on) = _process(probe, FrameBatch(np.stack([study.frame(0), study.frame(frame)]),
                                               study.timing.time_s[index], index), source)
    if probe.state.corners_anchor_frame is not None:  # (not registered)
        logger.warning(
            "study %s: WALL.json's frame %d cannot be registered (%s): its corners are placed by the first frame "
            "after it that can be, and the frames before are unreliable",
            study.key, frame, drawn_on.result.reason,
        )
        return corners, frame
    return probe.state.corners, 0


def _process(engine, batch, source) -> list:
    """``engine.process(batch)``; frames the engine refuses (a first frame off the white level's
    scale or blank) are this study's fault: :class:`InvalidStudyError` naming ``source``."""
    from vpimage.errors import ArgumentError, InvalidStudyError

    try:
        return engine.process(batch)
    except ArgumentError as error:
        raise InvalidStudyError(source, str(error)) from None


def _warn_if_injection_start_unseen(key: str, results: list, baseline_frames: int, least: int) -> None:
    """Warn when the run may have begun after the injection: no cement seen, or seen against a
    baseline of ``baseline_frames`` frames, fewer than ``least`` (``baseline_frames_min``; cement
    is looked for from the second usable frame on). Cement in the body at a run's first frames
    is taken for the pre-injection baseline and never seen, however near the wall it lies; the
    pixels cannot tell it from bone. A run that begins while cement grows slowly shows it
    later, as a run that begins before the injection does: this does not catch that one."""
    first = next((r.frame for r in results if r.cement_area_px > 0), None)
    if first is None:
        seen = "no cement was seen"
    elif baseline_frames < least:
        seen = (f"cement was seen from frame {first}, against a baseline of {baseline_frames} usable frame(s) "
                f"before it, fewer than segmentation.baseline_frames_min ({least}): the baseline is noisier")
    else:
        return
    logger.warning(
        "study %s: %s. If the run began after the injection, the cement already in the body at its first frames "
        "is taken for the pre-injection baseline and not seen, however near the wall: analyse a run that starts "
        "before the injection", key, seen,
    )


def analyze_study(
    study,
    source: str | Path,
    out: str | Path,
    *,
    config,
    wall: dict | None = None,
    backend: str = "auto",
    device: str = "auto",
    overlay: bool = False,
) -> dict:
    """Analyse one study and write its results into ``out``.

    Parameters
    ----------
    study : vpimage.io.Study
        The study, opened from ``source``.
    source : str or Path
        DICOM file, study folder, DICOMDIR or video it was opened from (named in errors).
    out : str or Path
        Folder for frames.csv, events.json, summary.json, masks.npz, config.toml (the
        thresholds of ``config``, every one, as ``--config`` reads them) and with
        ``overlay`` overlay.mp4, timeline.png; created if missing.
    config : RunConfig
    wall : dict, optional
        ``{"frame", "corners"}`` from :func:`read_wall`; it always wins. Without it the
        corners are found in the study's first frames (:func:`vpimage.anatomy.study_anatomy`);
        when they are not found with confidence every frame is ``unreliable``
        (``wall_not_found``), and the leak margin widens by their error
        (:meth:`LeakRules.for_automatic_corners <vpimage.measures.LeakRules.for_automatic_corners>`).
    backend, device : str
        Kernel backend and device (see :func:`vpimage.kernels.get_backend`).
    overlay : bool
        Also write overlay.mp4 and timeline.png.

    Returns
    -------
    dict
        The summary written to summary.json.

    Raises
    ------
    VpimageError
        Unreadable or inconsistent input (InvalidStudyError naming the file), or an
        unavailable backend.
    """
    import numpy as np

    from vpimage import __version__, outputs
    from vpimage._atomic import all_or_none, make_folder, remove_file, write_text_atomic
    from vpimage.alerts import (
        BODY_SIZE_IMPLAUSIBLE,
        NEEDLE_ENTERS_ANTERIOR,
        PIXELS_TOO_COARSE,
        WHITE_LEVEL_UNREACHED,
        events,
    )
    from vpimage.anatomy import needle_entry_side, study_anatomy, study_needle
    from vpimage.engine import Engine
    from vpimage.evaluate import EVALUATION_FILE
    from vpimage.measures import plausible_body

    geometry, timing = study.geometry, study.timing
    if wall:
        _check_wall(source, wall, study)
    anatomy = None if wall else study_anatomy(study, display_log_range=config.segmentation.display_log_range)
    corners = wall["corners"] if wall else anatomy.corners
    given_config = config  # what config.toml records: `--config` reads it back to rerun alike
    if anatomy is not None:
        logger.info("study %s: anatomy confidence %.2f %s", study.key, anatomy.confidence, anatomy.reason)
        config = dataclasses.replace(config, leaks=config.leaks.for_automatic_corners())
    def make_engine(corners, corners_frame: int, needle_enters: str | None = None) -> Engine:
        return Engine(
            config,
            rows=study.rows,
            columns=study.columns,
            mm_per_px=geometry.mm_per_px,
            fov_mask=geometry.fov_mask,
            corners=corners,
            corners_frame=corners_frame,
            view=geometry.view if geometry.view in ("ap", "oblique") else "lateral",  # (unknown: as lateral)
            magnification_unknown=geometry.magnification_unknown,
            needle_enters_anterior=needle_enters == "anterior",
            white_level=study.white_level,
            backend=backend,
            device=None if device == "auto" else device,
        )

    # (summary.json reports the corners as given, with the frame they were drawn on)
    corners_frame = wall["frame"] if wall else 0
    on_first = _on_first_frame(study, source, corners, corners_frame, make_engine) if corners_frame else (corners, 0)
    needle_enters = None
    if wall and geometry.view != "ap":  # (automatic corners put the posterior wall on the needle's side)
        needle = study_needle(study, display_log_range=config.segmentation.display_log_range)
        needle_enters = needle_entry_side(on_first[0], needle) if needle else None
        if needle_enters == "anterior":
            logger.warning(
                "study %s: the needle enters the body through the side WALL.json calls anterior: are its anterior "
                "and posterior corners swapped? Frames that meet neither warn nor stop are unreliable (%s)",
                study.key, NEEDLE_ENTERS_ANTERIOR,
            )
    if wall and geometry.mm_per_px is not None and not plausible_body(corners, geometry.mm_per_px):
        depth, height = (size_px * geometry.mm_per_px for size_px in corners.depth_and_height_px())
        logger.warning(
            "study %s: WALL.json's corners span %.1f mm deep and %.1f mm high, no vertebral body's size at %.3g mm/px: "
            "drawn for another image or scale? Frames that meet neither warn nor stop are unreliable (%s)",
            study.key, depth, height, geometry.mm_per_px, BODY_SIZE_IMPLAUSIBLE,
        )
    engine = make_engine(*on_first, needle_enters)
    if PIXELS_TOO_COARSE in engine.doubts:
        logger.warning(
            "study %s: its pixels (%.3g mm at the %s) are too large for the stop distance (%g mm spans "
            "fewer than %g of them): the front may lie up to a pixel nearer the wall than it reads. Frames that "
            "meet neither warn nor stop are unreliable (%s)",
            study.key, geometry.mm_per_px, "detector" if geometry.magnification_unknown else "isocentre",
            config.alerts.stop_mm, config.reliability.min_stop_px, PIXELS_TOO_COARSE,
        )
    results, packed_masks, frame_corners = [], [], []
    started = time.perf_counter()
    for batch in study.iter_batches(_BATCH):
        for frame in _process(engine, batch, source):
            results.append(frame.result)
            packed_masks.append(np.packbits(frame.cement_mask))
            frame_corners.append(frame.corners)
    elapsed = time.perf_counter() - started
    logger.info("study %s: %d frames in %.2f s", study.key, len(results), elapsed)
    if WHITE_LEVEL_UNREACHED in engine.doubts:
        logger.warning(
            "study %s: its first frame's values span a small part of the white level %g (the top of the stored "
            "range the header declares): if the data use less of that range, every contrast reads as many times too "
            "small and cement is seen late. Frames that meet neither warn nor stop are unreliable (%s)",
            study.key, study.white_level, WHITE_LEVEL_UNREACHED,
        )
    baseline_frames = engine.state.baseline_frames
    _warn_if_injection_start_unseen(study.key, results, baseline_frames, config.segmentation.baseline_frames_min)
    if engine.state.baseline_left_out:
        logger.warning(
            "study %s: frame(s) %s left out of the pre-injection baseline: part of each did not match the other "
            "frames (rows shifted by a damaged decode?); the baseline is the mean of the %d others",
            study.key, ", ".join(map(str, engine.state.baseline_left_out)), baseline_frames,
        )

    out = make_folder(out)
    shape = (study.rows, study.columns)
    masks = np.stack([np.unpackbits(p, count=shape[0] * shape[1]).reshape(shape).astype(bool) for p in packed_masks])
    summary = {
        **outputs.summarize_alerts(results),
        "duration_s": float(timing.time_s[-1]) if len(timing.time_s) else 0.0,
        "fps": float(timing.fps),
        "mm_per_px": geometry.mm_per_px,
        "calibration": geometry.calibration,
        "wall_source": "annotation" if wall else "auto",
        "wall": corners.to_dict() if corners else None,
        "wall_frame": wall["frame"] if wall else (0 if corners else None),
        "wall_confidence": None if wall else round(float(anatomy.confidence), 4),
        "anatomy": None if wall else anatomy.to_dict(),
        "needle_enters": needle_enters,
        "backend": engine.backend,
        "device": engine.device,
        "processing_fps": len(results) / elapsed if elapsed > 0 else None,
        "version": __version__,
        "input": study.shown_name(Path(source).name),  # (study_<key> where it holds the patient's identity)
        "study_key": study.key,
        "view": geometry.view,
        "unreliable_frames": sum(r.alert == "unreliable" for r in results),
        "baseline_frames": baseline_frames,
        "baseline_left_out_frames": list(engine.state.baseline_left_out),
        "skipped_files": list(study.skipped_files),
    }
    # The files are a set: none replaces an earlier run's before all are written, so a rerun
    # that fails or is interrupted meanwhile leaves the earlier result set as it was.
    # summary.json, written last, marks a complete set: the stale one goes before the new
    # files take their places, so no summary ever claims files of two runs. What an earlier
    # run wrote that this one does not write again (its overlay, its evaluation) would
    # describe another analysis beside this one's results: it goes too.
    with all_or_none():
        outputs.write_frames_csv(out / "frames.csv", results)
        outputs.write_events_json(out / "events.json", events(results))
        outputs.write_masks_npz(out / outputs.MASKS_FILE, masks, engine.state.time_of_arrival_s)
        write_text_atomic(out / "config.toml", given_config.to_toml())
        if overlay:
            outputs.write_overlay(
                out / OVERLAY_FILE, study.iter_frames(), results, list(masks), frame_corners,
                fps=float(timing.fps) or 5.0,
            )
            outputs.write_timeline_png(out / TIMELINE_FILE, results, config.alerts)
        for name in ["summary.json", EVALUATION_FILE] + ([] if overlay else [OVERLAY_FILE, TIMELINE_FILE]):
            remove_file(out / name)
    outputs.write_summary_json(out / "summary.json", summary)
    return summary
