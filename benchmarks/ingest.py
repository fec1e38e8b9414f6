"""Ingestion speed and memory of ``vpimage.io``: frames/s decoded per transfer syntax.

For every transfer syntax the phantom's writer makes and every frame size, a legacy XA
run of textured 12-bit frames (a smooth anatomy-like pattern with quantum noise) is
written once, then streamed through ``vpimage.io.open(...).iter_frames()``:

- ``fps_1proc``: frames/s in one process;
- ``fps_all_cores``: frames/s over ``--workers`` processes, each streaming the whole
  study (many studies decoded side by side, as ``vpimage batch`` does);
- ``raw_read_fps``: frames/s of a plain read of the same file's bytes (page cache warm),
  the ceiling that no decoding reaches.

Then the peak resident memory of a child process streaming a long study (default 1000
frames of 1024 x 1024, uncompressed and JPEG-LS) in batches, against a child that only
opens it: the target is flat, under 200 MB plus one batch. Timings are medians of
``--repeats`` runs after one warm-up. Results: ``{"metadata", "results", "memory"}``::

    python benchmarks/ingest.py --json benchmarks/results/ingest--cpu.json [--sizes 512,1024]
        [--frames 30] [--workers N] [--memory-frames 1000] [--quick]

``--quick`` is a smoke test (tiny frames, three syntaxes, a 40-frame memory study).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.encaps import generate_frames

import vpimage
import vpimage.io
from vpimage.synth._dicom import SYNTAXES, write_dicom
from vpimage.synth._run import FieldOfView, FieldShape, FluoroRun

_BITS = 12


def textured_frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``[n, size, size]`` uint16: smooth blobs and a gradient drifting over time, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    frames = np.empty((n, size, size), dtype=np.uint16)
    for i in range(n):
        shift = 0.02 * i
        base = 1500 + 800 * np.sin(6 * (x + shift)) * np.cos(4 * y) + 600 * y
        frames[i] = np.clip(base + rng.normal(0, 12, (size, size)), 0, 2**_BITS - 1).astype(np.uint16)
    return frames


def make_run(frames: np.ndarray) -> FluoroRun:
    n, size = frames.shape[0], frames.shape[1]
    return FluoroRun(
        frames=frames, time_s=np.arange(n) / 15.0, fps=15.0, bits_stored=_BITS, photometric="MONOCHROME2",
        imager_pixel_spacing_mm=0.154, source_to_detector_mm=1100.0, source_to_patient_mm=740.0, view="lateral",
        positioner_primary_deg=90.0, positioner_secondary_deg=0.0,
        field=FieldOfView(FieldShape.CIRCLE, centre_rc=(size / 2, size / 2), radius_px=size / 2),
    )


def stream(path: str) -> int:
    """Open ``path`` and decode every frame; the number of frames."""
    count = 0
    for _ in vpimage.io.open(path).iter_frames():
        count += 1
    return count


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up: page cache, imports, decoder plugins
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _read_bytes(path: Path) -> int:
    with open(path, "rb", buffering=0) as stream_:
        return len(stream_.read())


def decode_record(path: Path, syntax: str, size: int, n: int, workers: int, repeats: int, pool) -> dict:
    one = _median_time(lambda: stream(str(path)), repeats)
    many = _median_time(lambda: list(pool.map(stream, [str(path)] * workers)), repeats)
    raw = _median_time(lambda: _read_bytes(path), repeats)
    return {
        "syntax": syntax, "transfer_syntax": SYNTAXES[syntax][0].name, "size": size, "frames": n,
        "file_mb": round(path.stat().st_size / 1e6, 3),
        "fps_1proc": round(n / one, 2), "fps_all_cores": round(workers * n / many, 2), "workers": workers,
        "raw_read_fps": round(n / raw, 1), "raw_read_mb_s": round(path.stat().st_size / raw / 1e6, 1),
    }


# -- a long study, written frame by frame (never held whole in memory) ---------------------


def _element_header(tag: int, vr: bytes, length: int) -> bytes:
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + b"\0\0" + struct.pack("<I", length)


def write_long_study(path: Path, n: int, size: int, syntax: str) -> None:
    """An ``n``-frame XA file: eight distinct frames cycled, streamed to disk; explicit VR
    little endian (``explicit-le``) or an encapsulated syntax whose frames are encoded once."""
    sample = textured_frames(8, size)
    template = path.with_suffix(".template.dcm")
    write_dicom(make_run(sample), template, obj="xa", syntax=syntax)
    ds = dcmread(template)
    template.unlink()
    encoded = list(generate_frames(ds.PixelData, number_of_frames=8)) if ds.file_meta.TransferSyntaxUID.is_encapsulated else None
    del ds.PixelData
    ds.NumberOfFrames = n
    ds.FrameTime = "66.666667"
    ds.StopTrim = n
    header = BytesIO()
    ds.save_as(header, enforce_file_format=True)
    with open(path, "wb") as out:
        out.write(header.getvalue())
        if encoded is None:
            frame_bytes = [f.astype("<u2").tobytes() for f in sample]
            out.write(_element_header(0x7FE00010, b"OW", n * len(frame_bytes[0])))
            for i in range(n):
                out.write(frame_bytes[i % 8])
            return
        out.write(_element_header(0x7FE00010, b"OB", 0xFFFFFFFF))
        out.write(struct.pack("<HHI", 0xFFFE, 0xE000, 0))  # empty Basic Offset Table
        for i in range(n):
            fragment = encoded[i % 8] + (b"\0" if len(encoded[i % 8]) % 2 else b"")
            out.write(struct.pack("<HHI", 0xFFFE, 0xE000, len(fragment)) + fragment)
        out.write(struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))


# The child reports VmHWM (this process image's peak RSS, KiB); ru_maxrss would not do:
# Linux carries it over from the parent across fork and exec.
_CHILD = """
import sys
import vpimage.io
study = vpimage.io.open(sys.argv[1])
frames = 0
if sys.argv[2] == "stream":
    for batch in study.iter_batches(int(sys.argv[3])):
        frames += len(batch.index)
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(frames, peak.split()[1])
"""


def _peak_rss_mb(path: Path, mode: str, batch: int) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), mode, str(batch)], capture_output=True,
                         text=True, check=True)
    frames, kib = out.stdout.split()
    return int(frames), int(kib) / 1024


def memory_record(folder: Path, n: int, size: int, syntax: str, batch: int) -> dict:
    path = folder / f"long-{syntax}.dcm"
    write_long_study(path, n, size, syntax)
    _, opened = _peak_rss_mb(path, "open", batch)
    frames, streamed = _peak_rss_mb(path, "stream", batch)
    half = folder / f"half-{syntax}.dcm"
    write_long_study(half, n // 2, size, syntax)
    _, streamed_half = _peak_rss_mb(half, "stream", batch)
    batch_mb = batch * size * size * 4 / 1e6
    record = {
        "syntax": syntax, "frames": frames, "size": size, "file_mb": round(path.stat().st_size / 1e6, 1),
        "batch": batch, "batch_mb": round(batch_mb, 1),
        "peak_rss_open_mb": round(opened, 1), "peak_rss_stream_mb": round(streamed, 1),
        "peak_rss_stream_half_length_mb": round(streamed_half, 1),
        "stream_minus_open_mb": round(streamed - opened, 1),
        "target_mb": round(200 + batch_mb, 1), "within_target": bool(streamed <= 200 + batch_mb),
    }
    path.unlink()
    half.unlink()
    return record


def _metadata(workers: int) -> dict:
    import pydicom

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
        "vpimage": vpimage.__version__, "pydicom": pydicom.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
        "host": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                 "cpus": os.cpu_count(), "system": platform.platform()},
        "workers": workers,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],  # other work on the host skews timings
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--sizes", default="512,1024", help="frame sizes, px (default 512,1024)")
    parser.add_argument("--frames", type=int, default=30, help="frames per decode study (default 30)")
    parser.add_argument("--syntaxes", default=",".join(SYNTAXES), help="writer syntax names (default all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for all cores")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measure (median)")
    parser.add_argument("--memory-frames", type=int, default=1000, help="frames of the memory study")
    parser.add_argument("--memory-size", type=int, default=1024, help="rows and columns of the memory study")
    parser.add_argument("--batch", type=int, default=16, help="batch size while streaming the memory study")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny and fast")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    syntaxes = args.syntaxes.split(",")
    n, repeats, memory_frames, memory_size = args.frames, args.repeats, args.memory_frames, args.memory_size
    if args.quick:
        sizes, syntaxes, n, repeats, memory_frames, memory_size = [64], ["explicit-le", "rle", "jpeg-ls"], 4, 1, 40, 64
    results, memory = [], []
    with tempfile.TemporaryDirectory(prefix="vpimage-ingest-") as tmp, \
            ProcessPoolExecutor(max_workers=args.workers) as pool:
        folder = Path(tmp)
        for size in sizes:
            frames = textured_frames(n, size)
            for syntax in syntaxes:
                path = folder / f"{syntax}-{size}.dcm"
                write_dicom(make_run(frames), path, obj="xa", syntax=syntax)
                results.append(decode_record(path, syntax, size, n, args.workers, repeats, pool))
                print(json.dumps(results[-1]), file=sys.stderr)
                path.unlink()
        for syntax in ("explicit-le", "jpeg-ls"):
            memory.append(memory_record(folder, memory_frames, memory_size, syntax, args.batch))
            print(json.dumps(memory[-1]), file=sys.stderr)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"metadata": _metadata(args.workers), "results": results, "memory": memory},
                                    indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
