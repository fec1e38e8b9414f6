"""Regenerate sample_dicom/: one small phantom study per scenario, with truth and previews.

Run from the repository root::

    python sample_dicom/make_samples.py

Every study is deterministic (fixed seeds), so rerunning rewrites the same files. Each
scenario folder holds the study (``study.dcm``, or ``study/`` for a series of single-frame
instances), ``truth.json`` with ``truth_masks.npz`` beside it, and ``WALL.json``; previews
of a few frames per scenario go to ``previews/<scenario>.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from vpimage.synth import SynthOptions, simulate, write_dicom

HERE = Path(__file__).resolve().parent

# One study per scenario, each showing another object, encoding and nuisance, so the
# samples also exercise ingestion. (obj, syntax, options)
SAMPLES = {
    "no_leak": ("xa", "j2k-lossless", SynthOptions(size_px=256, frames=60, fps=5.0, bits_stored=10)),
    "posterior_approach": (
        "xa", "jpeg-ls", SynthOptions(size_px=288, frames=64, fps=5.0, tilt_deg=12.0, bits_stored=10),
    ),
    "posterior_breach": (
        "enhanced-xa", "j2k-lossless",
        SynthOptions(size_px=256, frames=64, fps=5.0, photometric="MONOCHROME1", field="rectangle", bits_stored=10),
    ),
    "venous_leak": (
        "xrf", "jpeg-ls", SynthOptions(size_px=256, frames=60, fps=5.0, dose="low", tilt_deg=20.0, bits_stored=10),
    ),
    "disc_leak": ("xa", "rle", SynthOptions(size_px=256, frames=60, fps=5.0, sudden_shift=True, bits_stored=10)),
    "anterior_leak": (
        "xa-series", "jpeg-ls", SynthOptions(size_px=256, frames=50, fps=4.0, jitter=True, bits_stored=10),
    ),
}
SEED = 2026


def preview(result, path: Path, n_tiles: int = 3) -> None:
    """Write a row of ``n_tiles`` frames (8-bit, displayed as a viewer would) with the truth contour."""
    run = result.run
    index = np.linspace(0, run.frames.shape[0] - 1, n_tiles).round().astype(int)
    top = 2**run.bits_stored - 1
    tiles = []
    for i in index:
        frame = run.frames[i].astype(np.float32)
        if run.photometric == "MONOCHROME1":
            frame = top - frame  # a viewer shows MONOCHROME1 inverted
        lo, hi = np.percentile(frame[frame > 0], [1, 99]) if np.any(frame > 0) else (0, top)
        grey = np.clip((frame - lo) / max(hi - lo, 1) * 255, 0, 255).astype(np.uint8)
        tile = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        contours, _ = cv2.findContours(result.cement_masks[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, contours, -1, (0, 200, 255), 1)
        cv2.putText(tile, f"frame {i}  t={run.time_s[i]:.1f}s", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
        tiles.append(tile)
    cv2.imwrite(str(path), np.hstack(tiles))


def make(scenario: str, out_root: Path) -> None:
    obj, syntax, options = SAMPLES[scenario]
    result = simulate(scenario, seed=SEED, options=options)
    folder = out_root / scenario
    folder.mkdir(parents=True, exist_ok=True)
    study = folder / ("study" if obj.endswith("-series") else "study.dcm")
    write_dicom(result.run, study, obj=obj, syntax=syntax, calibration="distances", seed=SEED)
    result.save_truth(folder / "truth.json")
    result.save_wall(folder / "WALL.json")
    (out_root / "previews").mkdir(exist_ok=True)
    preview(result, out_root / "previews" / f"{scenario}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="root folder (default: sample_dicom/)")
    parser.add_argument("scenarios", nargs="*", default=list(SAMPLES), help="scenarios to make (default: all)")
    args = parser.parse_args()
    for scenario in args.scenarios:
        make(scenario, args.out)
        print(f"wrote {args.out / scenario}")


if __name__ == "__main__":
    main()
