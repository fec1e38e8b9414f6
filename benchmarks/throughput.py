"""Throughput and streaming latency of the analysis engine, per backend, device and size.

What is timed is :class:`vpimage.engine.Engine` itself, as ``vpimage analyze`` runs it
(WALL.json corners given), on each kernel backend: attenuation, motion against the
reference (FFT + ECC on the registration grid), bicubic alignment of the region of
interest, noise estimate, the denoised excess over the baseline, recursive filter, cement
candidates, growth and confirmation of blobs, monotone accumulation, then per frame the
measures (front to wall, depth, leak classes, speed) and the alert, and the cement mask
back on the host. The frames are a phantom run (``posterior_approach``) at each size: the
engine first sees its pre-injection frames and a few with cement (baseline frozen, untimed),
then the next :data:`CYCLE` frames, during which the cement keeps spreading; then it starts
afresh (untimed) and takes them again, so every timed frame is one of a growing injection
(cement that has stopped growing would let the engine reuse its shape measures and flatter
it). The naive script restarts alike. The same run also measures:

- a naive baseline (``backend`` ``naive-skimage``): the core of those steps frame by frame
  with scikit-image / scipy, as a typical research script writes them (registration,
  alignment, noise, denoising, subtraction, recursive filter, threshold, accumulation,
  largest component; no measures, leaks or alerts, so ``x naive`` is conservative);
- ``roofline_fps``: a plain copy of the same frames on the same device (host memory for
  numpy and the naive script), so ``fps / roofline_fps`` compares across machines.

``fps`` is measured in batches of ``batch`` frames (8 on a cpu, 32 on a GPU): ``batch`` over
the median time of a batch, so that a busy moment of a shared host does not weigh; the
latency is per frame fed one at a time, as the live monitor feeds the engine (p50 and p99,
ms). The pipelines of one size are measured in interleaved rounds, so that the host's load
weighs on the baseline and the backends alike.
``host`` names the machine, its cores and its 1-minute load average when the record was
taken (timings on a loaded host are lower bounds).
CUDA timings synchronise inside the timed region; frames reach the GPU from pinned host
memory with non-blocking copies. Contract: CONTRACT.md, "Benchmarks"::

    python benchmarks/throughput.py --json OUT.json [--sizes 512,1024] [--backends numpy,torch]
                                   [--device cpu|cuda] [--seconds S]

``--markdown OUT.md`` also writes the table; ``--readme README.md`` puts it into the README
between its ``<!-- throughput table -->`` markers; ``--from-json`` makes both from
committed records without measuring again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, measure, registration

from vpimage.config import RunConfig
from vpimage.engine import Engine
from vpimage.kernels import get_backend
from vpimage.measures import Corners
from vpimage.synth import SynthOptions, simulate

ROUNDS = 3  # interleaved measurement rounds per size


def batch_size(backend: str, device: str) -> int:
    """Frames per batch: one for the naive script, 8 on a cpu, 32 on a GPU."""
    return 1 if backend == "naive-skimage" else 32 if device == "cuda" else 8
SEGMENTATION = RunConfig.defaults().segmentation  # the engine's defaults
LOG_RANGE = SEGMENTATION.display_log_range  # the phantom's display is log-encoded, read as the engine reads it
THRESHOLD = SEGMENTATION.cement_contrast  # excess attenuation of cement
GRADIENT_GAIN = SEGMENTATION.registration_error_px  # px of residual misregistration assumed at edges
ALPHA = 0.5  # recursive filter weight of the newest frame (the naive script's)
PRE_INJECTION = 5  # phantom frames before the cement appears (SynthOptions default)
FPS = 5.0  # the phantom run's frame rate
START = PRE_INJECTION + 3  # frames fed untimed at each start: the baseline freezes on them
CYCLE = 32  # timed frames of growing cement before a restart (a multiple of every batch size)


@dataclass
class Scene:
    """What the engine knows before the stream: reference, baseline, masks (host numpy arrays)."""

    frames: np.ndarray  # [N, R, C] float32 stored values
    white_level: float
    mm_per_px: float
    corners: Corners
    fov: np.ndarray
    weight: np.ndarray
    reference: np.ndarray
    baseline: np.ndarray
    gradient: np.ndarray


def make_scene(size: int) -> Scene:
    """A phantom run at ``size`` px and the per-study set-up the engine derives from it."""
    numpy_kernels = get_backend("numpy")
    sim = simulate("posterior_approach", seed=0, options=SynthOptions(size_px=size, frames=START + CYCLE, fps=FPS))
    run = sim.run
    frames = run.frames.astype(np.float32)
    fov = run.field.mask(size, size)
    white_level = float(2**run.bits_stored - 1)  # the top of the stored range, as the engine takes it
    att = numpy_kernels.attenuation(frames[:PRE_INJECTION], white_level=white_level, log_range=LOG_RANGE)
    baseline = att.mean(axis=0)
    gradient = np.hypot(*np.gradient(numpy_kernels.smooth(baseline, sigma_px=1.0)))
    weight = ndi.binary_erosion(fov, iterations=size // 16)
    corners = Corners.from_dict(sim.truth["vertebral_body"])
    return Scene(frames, white_level, run.mm_per_px, corners, fov, weight, att[0], baseline, gradient)


@dataclass
class Batch:
    """The FrameBatch the engine consumes."""

    frames: np.ndarray
    time_s: np.ndarray
    index: np.ndarray


class EnginePipeline:
    """An engine for the scene on one backend, past its pre-injection frames, fed the frames with cement."""

    def __init__(self, scene: Scene, backend: str, device: str):
        self.scene, self.backend, self.device = scene, backend, device
        self.restart()

    def restart(self) -> None:
        """A fresh engine, fed the first :data:`START` frames (the baseline freezes; cement is followed next)."""
        rows, cols = self.scene.fov.shape
        self.engine = Engine(
            RunConfig.defaults(),
            rows=rows,
            columns=cols,
            mm_per_px=self.scene.mm_per_px,
            fov_mask=self.scene.fov,
            corners=self.scene.corners,
            white_level=self.scene.white_level,
            backend=self.backend,
            device=self.device,
        )
        self.fed = 0
        self(self.scene.frames[:START])

    def __call__(self, frames):
        index = np.arange(self.fed, self.fed + len(frames))
        self.fed += len(frames)
        return self.engine.process(Batch(frames, index / FPS, index))


class NaivePipeline:
    """The same steps, one frame at a time, with scikit-image and scipy as a research script would."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.restart()

    def restart(self) -> None:
        """No cement and no filter state yet (the script's baseline is the scene's)."""
        self.filtered = None
        self.accumulated = np.zeros(self.scene.fov.shape, bool)
        self.run_length = np.zeros(self.scene.fov.shape, np.int16)

    def __call__(self, frames):
        s = self.scene
        out = []
        for frame in frames:
            att = np.where(s.fov, (s.white_level - frame) * (LOG_RANGE / s.white_level), 0.0)
            shift, _, _ = registration.phase_cross_correlation(
                s.reference * s.weight, att * s.weight, upsample_factor=20, normalization=None
            )
            aligned = ndi.shift(att, shift, order=3, mode="nearest")
            residual = (aligned - ndi.uniform_filter(aligned, 3))[s.weight]
            1.4826 * np.median(np.abs(residual - np.median(residual)))  # noise sigma, as the kernels estimate it
            denoised = filters.gaussian(filters.median(aligned, np.ones((3, 3), bool)), sigma=1.0)
            excess = denoised - s.baseline
            self.filtered = excess if self.filtered is None else ALPHA * excess + (1 - ALPHA) * self.filtered
            candidates = (self.filtered > THRESHOLD + GRADIENT_GAIN * s.gradient) & s.fov
            self.run_length = np.where(candidates, self.run_length + 1, 0)
            self.accumulated |= self.run_length >= 2
            regions = measure.regionprops(measure.label(self.accumulated, connectivity=2))
            out.append(max((r.area for r in regions), default=0))
        return np.array(out)


def _timer(device: str):
    if device == "cuda":
        import torch

        def now() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()

        return now
    return time.perf_counter


@dataclass
class Timing:
    """One pipeline's measurements, gathered over the rounds."""

    batch: int
    batch_s: list  # seconds per batch of ``batch`` frames
    latency_ms: list  # one frame at a time
    frames: int = 0


def time_round(pipeline, feed, timing: Timing, seconds: float, now) -> None:
    """Batches for about ``seconds / 2``, then single frames for about as long, added to ``timing``."""
    batches = _timed_calls(pipeline, feed, timing.batch, seconds / 2, now, least=1)
    timing.batch_s += batches
    timing.frames += timing.batch * len(batches)
    timing.latency_ms += [t * 1000.0 for t in _timed_calls(pipeline, feed, 1, seconds / 2, now, least=20)]


def _timed_calls(pipeline, feed, count: int, seconds: float, now, *, least: int) -> list[float]:
    """Seconds per call of ``count`` frames, for about ``seconds`` and at least ``least`` calls.

    ``feed(position, count)`` gives the frames of growing cement from ``position`` of the
    cycle; at each cycle's start the pipeline restarts, untimed.
    """
    times: list[float] = []
    start = now()
    while now() - start < seconds or len(times) < least:
        position = len(times) * count % CYCLE
        if position == 0:
            pipeline.restart()
        t0 = now()
        pipeline(feed(position, count))
        times.append(now() - t0)
    return times


def copy_fps(frames, seconds: float, now) -> float:
    """Frames per second of a plain copy of ``frames`` (numpy array or tensor) on its device."""
    if isinstance(frames, np.ndarray):
        target = np.empty_like(frames)

        def copy():
            np.copyto(target, frames)
    else:
        target = frames.clone()

        def copy():
            target.copy_(frames)

    copy()
    count, start = 0, now()
    while now() - start < seconds or count == 0:
        copy()
        count += 1
    return count * frames.shape[0] / (now() - start)


def host_feed(scene: Scene):
    """The frames of growing cement after the first :data:`START`, from a cycle position (host memory)."""

    def feed(position: int, count: int):
        return scene.frames[START + position : START + position + count]

    return feed


def gpu_name(device: str) -> str | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.get_device_name()


def host_description(backend: str) -> str:
    """The machine, its cores, its 1-minute load average now (a loaded host times low) and torch's threads."""
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    machine = platform.processor() or platform.machine()
    threads = ""
    if backend == "torch":
        import torch

        threads = f", torch threads {torch.get_num_threads()}"
    return f"{machine}, {platform.system()} {platform.release()}, {os.cpu_count()} cores{load}{threads}"


def record(backend, device, size, batch, frames, fps, latencies, roofline_fps) -> dict:
    return {
        "backend": backend,
        "device": device,
        "size": size,
        "batch": batch,
        "frames": frames,
        "fps": round(fps, 2),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 3),
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 3),
        "roofline_fps": round(roofline_fps, 1),
        "host": host_description(backend),
        "gpu": gpu_name(device),
    }


def run(sizes: list[int], backends: list[str], device: str, seconds: float, rounds: int = ROUNDS) -> list[dict]:
    """Per size: the naive baseline and every backend, measured in interleaved rounds.

    Each round gives every pipeline ``seconds / rounds`` in turn, so a busy spell of a
    shared host weighs on all of them alike, and ``x naive`` stays fair; the fps is
    ``batch`` over the median batch time of all rounds.
    """
    records = []
    for size in sizes:
        scene = make_scene(size)
        host_roofline = copy_fps(scene.frames, seconds / 4, time.perf_counter)
        runs = {("naive-skimage", "cpu"): (NaivePipeline(scene), host_feed(scene), time.perf_counter, host_roofline)}
        for backend in backends:
            if backend == "numpy":
                pipeline = EnginePipeline(scene, "numpy", "cpu")
                runs[backend, "cpu"] = (pipeline, host_feed(scene), time.perf_counter, host_roofline)
            else:
                import torch

                now = _timer(device)
                roofline = copy_fps(torch.as_tensor(scene.frames, device=device), seconds / 4, now)
                # Host frames in: the engine moves each batch to the device itself (pinned, non-blocking).
                runs[backend, device] = (EnginePipeline(scene, "torch", device), host_feed(scene), now, roofline)
        timings = {key: Timing(batch_size(*key), [], []) for key in runs}
        for pipeline, feed, _, _ in runs.values():
            pipeline(feed(0, 1))  # warm-up: first calls allocate, compile kernels, fill caches
        for _ in range(rounds):
            for key, (pipeline, feed, now, _) in runs.items():
                time_round(pipeline, feed, timings[key], seconds / rounds, now)
        for (backend, on), (_, _, _, roofline) in runs.items():
            t = timings[backend, on]
            fps = t.batch / float(np.median(t.batch_s))
            records.append(record(backend, on, size, t.batch, t.frames, fps, t.latency_ms, roofline))
    return records


def markdown(records: list[dict]) -> str:
    """The records as the README's table: fps, its share of the copy roofline, latency, and speed-up on naive."""
    naive = {r["size"]: r["fps"] for r in records if r["backend"] == "naive-skimage"}
    lines = [
        "| backend | device | size px | batch | fps | fps / roofline | x naive | latency p50 ms | latency p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        speedup = r["fps"] / naive[r["size"]] if naive.get(r["size"]) else float("nan")
        device = r["gpu"] or r["device"]
        lines.append(
            f"| {r['backend']} | {device} | {r['size']} | {r['batch']} | {r['fps']:.1f} | "
            f"{r['fps'] / r['roofline_fps']:.1e} | {speedup:.1f} | {r['latency_ms_p50']:.1f} | {r['latency_ms_p99']:.1f} |"
        )
    return "\n".join(lines) + "\n"


README_MARKERS = ("<!-- throughput table -->\n", "<!-- /throughput table -->\n")


def update_readme(path: Path, records: list[dict]) -> None:
    """Put the records' table into the README at ``path``, between its two markers."""
    text = path.read_text()
    begin, end = README_MARKERS
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"{path}: needs one {begin.strip()} and one {end.strip()} line around the table")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    path.write_text(head + begin + markdown(records) + end + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="where to write the list of records")
    parser.add_argument("--from-json", action="store_true", help="read the records from --json instead of measuring")
    parser.add_argument("--sizes", default="512,1024", help="comma-separated frame sizes, px")
    parser.add_argument("--backends", default="numpy,torch", help="comma-separated: numpy, torch")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the torch backend runs")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="time per pipeline and size, s (half batches, half single frames)"
    )
    parser.add_argument("--torch-threads", type=int, help="torch's intra-op threads (default: torch's own choice)")
    parser.add_argument("--markdown", type=Path, help="also write the records as a markdown table here")
    parser.add_argument("--readme", type=Path, help="also put the table into this README between its markers")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    if unknown := set(backends) - {"numpy", "torch"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if args.torch_threads and "torch" in backends:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.from_json:
        records = json.loads(args.json.read_text())
    else:
        records = run([int(s) for s in args.sizes.split(",")], backends, args.device, args.seconds)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(records))
    if args.readme:
        update_readme(args.readme, records)
    for r in records:
        print(
            f"{r['backend']:>14} {r['device']:>4} {r['size']:>5} px: {r['fps']:9.1f} fps "
            f"(x{r['fps'] / r['roofline_fps']:.2e} of copy), latency p50 {r['latency_ms_p50']:.1f} ms, "
            f"p99 {r['latency_ms_p99']:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
