"""Kernel launches and host waits per frame of the torch engine on CUDA, counted without a GPU.

On a GPU the torch engine's time per frame has a floor that no GPU lowers: the host issues
every tensor operation (on CUDA a kernel launch: microseconds of host time, however small
the kernel), and every read of device data waits for the work queued before it. This script
counts both on the cpu, for the throughput benchmark's scene (benchmarks/throughput.py: the
same phantom, its cement growing), with the engine on CUDA's schedule: each batch prepared at
once, by the thread that feeds it, ECC and label propagation checked for convergence every
few iterations, and the median that of the unfolded windows. :class:`Placement` tags every
tensor where a CUDA run would put it (one made without a device is a host tensor): the
operations counted are those that make or change data on the device (views and shape
queries aside), the reads those that bring device data to the host (a copy, a Python value,
an output whose size depends on the data).

It also times the host's share: the same engine at :data:`DISPATCH_SIZE` px on one cpu
thread, where the arithmetic is negligible, gives the host's time per operation (the engine's
own Python around the operations included). Operations per frame times that is the least
time per frame a single stream needs on any GPU behind a host as fast as this one (a CUDA
launch costs the host more than a cpu operation does): ``floor_ms_per_frame`` and its
``ceiling_fps``. The convergence checks each wait for the queue as well, which the floor
leaves out.

    python benchmarks/dispatch.py --json OUT.json [--markdown OUT.md] [--sizes 512,1024] [--batch 32]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from throughput import CYCLE, START, EnginePipeline, host_description, make_scene
from vpimage.kernels import _torch

DISPATCH_SIZE = 64  # px: frames small enough that the host's issuing is the whole cost
FACTORIES = {
    torch.tensor, torch.as_tensor, torch.asarray, torch.from_numpy, torch.zeros, torch.ones, torch.empty,
    torch.full, torch.arange, torch.linspace, torch.eye, torch.rand, torch.randn, torch.randint,
}
LIKE = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like}
TO_HOST = {"cpu", "numpy", "pin_memory"}
TO_DEVICE = {"to", "cuda"}
READS = {"numpy", "item", "tolist", "__bool__", "__int__", "__float__", "__index__", "equal", "nonzero", "unique"}
VIEWS = {
    "__getitem__", "__get__", "reshape", "view", "expand", "unsqueeze", "squeeze", "permute", "transpose",
    "flatten", "narrow", "select", "unbind", "split", "chunk", "contiguous", "detach", "size", "dim",
    "numel", "stride", "is_contiguous", "__len__", "__iter__",
}  # (no kernel: a view or a shape; indexing by a tensor is counted where it reads)
SOURCES = tuple(str(Path(_torch.__file__).parents[1] / part) for part in ("vpimage", "kernels"))


class Placement(TorchFunctionMode):
    """Tags every tensor made under it ``host`` or ``device`` as a CUDA run would place it.

    ``mixed`` counts the operations given a host tensor (not a 0-d scalar, which CUDA
    kernels take as an argument) and a device tensor, by operation and the line of vpimage
    that called it: on CUDA each fails or copies through the host. ``reads`` counts the
    host's reads of device data and ``launches`` the operations that make or change data
    on the device, both by the innermost function of vpimage that made them.
    """

    def __init__(self):
        super().__init__()
        self.mixed = collections.Counter()
        self.reads = collections.Counter()
        self.launches = collections.Counter()
        self._tags = {}  # id -> (weak reference, tag): a tag holds only while its tensor lives

    def tag(self, tensor) -> str:
        known = self._tags.get(id(tensor))
        return known[1] if known is not None and known[0]() is tensor else "device"  # (made before: an input)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        given = [a for a in _flat([*args, *kwargs.values()]) if isinstance(a, torch.Tensor)]
        tags = [(self.tag(a), a.dim()) for a in given]
        on_device = any(t == "device" for t, _ in tags)
        if on_device and any(t == "host" and dims > 0 for t, dims in tags):
            self.mixed[name, _caller()] += 1
        if given and self.tag(given[0]) == "device":
            masked = name == "__getitem__" and isinstance(args[1], torch.Tensor) and args[1].dtype == torch.bool
            if name in READS or masked:
                self.reads[_function()] += 1
        if func in FACTORIES:
            copied = func in (torch.as_tensor, torch.asarray) and given and kwargs.get("device") is None
            tag = self.tag(given[0]) if copied else "device" if kwargs.get("device") is not None else "host"
        elif name in TO_HOST:
            if out is args[0]:  # (on the cpu .cpu() is the tensor itself, on CUDA a host copy)
                return out
            tag = "host"
        elif name in TO_DEVICE and (
            name == "cuda" or "device" in kwargs or any(isinstance(a, (str, torch.device)) for a in args[1:])
        ):
            tag = "device"
        elif func in LIKE and kwargs.get("device") is None:
            tag = self.tag(args[0])
        else:
            tag = "device" if not given or on_device else "host"
        if tag == "device" and name not in VIEWS and name not in READS and name not in TO_HOST:
            self.launches[_function()] += 1
        for tensor in _flat([out]):
            if isinstance(tensor, torch.Tensor):
                self._tags[id(tensor)] = (weakref.ref(tensor), tag)
        return out


def _flat(items) -> list:
    out = []
    for item in items:
        out += _flat(item) if isinstance(item, (list, tuple)) else [item]
    return out


def _frames_of_vpimage():
    """The frames of vpimage on the stack, innermost first (the operation's caller and out)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(SOURCES):
            yield frame
        frame = frame.f_back


def _caller() -> str:
    """The innermost line of vpimage on the stack, relative to the checkout."""
    frame = next(_frames_of_vpimage(), None)
    if frame is None:
        return "?"
    return f"{Path(frame.f_code.co_filename).relative_to(Path(SOURCES[0]).parent)}:{frame.f_lineno}"


def _function() -> str:
    """The innermost function of vpimage on the stack (``to_host`` aside: its caller)."""
    return next((f.f_code.co_name for f in _frames_of_vpimage() if f.f_code.co_name != "to_host"), "?")


@contextlib.contextmanager
def cuda_schedule(*, unfolded_median: bool = True):
    """The torch kernels as they run on CUDA: convergence checks every few iterations, all frames in
    lock step, and (``unfolded_median``) the median of the unfolded windows, else the cpu's network."""
    saved = _torch._ECC_CHECK_EVERY, _torch._ROUNDS_PER_CHECK, _torch._MEDIAN_BY_NETWORK
    _torch._ECC_CHECK_EVERY, _torch._ROUNDS_PER_CHECK = {}, {}
    if unfolded_median:
        _torch._MEDIAN_BY_NETWORK = {}
    try:
        yield
    finally:
        _torch._ECC_CHECK_EVERY, _torch._ROUNDS_PER_CHECK, _torch._MEDIAN_BY_NETWORK = saved


def as_on_cuda(engine):
    """``engine`` (on the cpu) preparing each batch at once, by the thread that feeds it, as on CUDA."""
    engine._worker = None
    return engine


def restarted(pipeline: EnginePipeline) -> EnginePipeline:
    """``pipeline`` afresh, past its untimed frames, its engine on CUDA's schedule."""
    pipeline.restart()
    as_on_cuda(pipeline.engine)
    return pipeline


def feed_a_cycle(pipeline: EnginePipeline, batch: int) -> None:
    """The scene's :data:`CYCLE` frames of growing cement, in batches of ``batch``."""
    for first in range(0, CYCLE, batch):
        pipeline(pipeline.scene.frames[START + first : START + min(first + batch, CYCLE)])


def counted(size: int, batch: int, *, unfolded_median: bool = True) -> tuple[Placement, int]:
    """The throughput scene at ``size`` px, a cycle under a fresh :class:`Placement`, and its frames."""
    pipeline = restarted(EnginePipeline(make_scene(size), "torch", "cpu"))
    placement = Placement()
    with cuda_schedule(unfolded_median=unfolded_median), placement:
        feed_a_cycle(pipeline, batch)
    return placement, CYCLE


def host_us_per_operation(batch: int, rounds: int = 9) -> float:
    """The host's time per device operation: the engine at :data:`DISPATCH_SIZE` px, one thread, µs.

    Its median is the cpu's selection network, element-wise passes whose arithmetic is negligible
    there: the unfolded windows' median, one operation, keeps a cpu thread busy far longer than
    issuing it takes, and would count its arithmetic as the host's cost.
    """
    placement, _ = counted(DISPATCH_SIZE, batch, unfolded_median=False)
    pipeline = EnginePipeline(make_scene(DISPATCH_SIZE), "torch", "cpu")
    seconds = []
    with cuda_schedule(unfolded_median=False):
        for _ in range(rounds):
            restarted(pipeline)
            start = time.perf_counter()
            feed_a_cycle(pipeline, batch)
            seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)) * 1e6 / sum(placement.launches.values())


def run(sizes: list[int], batch: int) -> list[dict]:
    """One record per size (see the module's docstring), torch on one cpu thread meanwhile."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        us_per_operation = host_us_per_operation(batch)
        records = []
        for size in sizes:
            placement, frames = counted(size, batch)
            operations = sum(placement.launches.values()) / frames
            floor_ms = operations * us_per_operation / 1000.0
            records.append({
                "size": size,
                "batch": batch,
                "frames": frames,
                "device_operations_per_frame": round(operations, 1),
                "host_reads_per_frame": round(sum(placement.reads.values()) / frames, 2),
                "host_us_per_operation": round(us_per_operation, 2),
                "floor_ms_per_frame": round(floor_ms, 2),
                "ceiling_fps": round(1000.0 / floor_ms, 1),
                "operations_per_frame_by_function": {
                    function: round(n / frames, 1) for function, n in placement.launches.most_common(8)
                },
                "reads_per_frame_by_function": {
                    function: round(n / frames, 2) for function, n in placement.reads.most_common()
                },
                "mixed_host_and_device": sum(placement.mixed.values()),
                "host": host_description("torch"),
            })
        return records
    finally:
        torch.set_num_threads(threads)


def markdown(records: list[dict]) -> str:
    lines = [
        "| size px | batch | device operations / frame | host reads / frame | host us / operation | "
        "floor ms / frame | ceiling fps (one stream) | most operations |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        busiest = ", ".join(f"{f} {n:g}" for f, n in list(r["operations_per_frame_by_function"].items())[:4])
        lines.append(
            f"| {r['size']} | {r['batch']} | {r['device_operations_per_frame']:.0f} | {r['host_reads_per_frame']:.1f} | "
            f"{r['host_us_per_operation']:.1f} | {r['floor_ms_per_frame']:.1f} | {r['ceiling_fps']:.0f} | {busiest} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="where to write the list of records")
    parser.add_argument("--markdown", type=Path, help="also write the records as a markdown table here")
    parser.add_argument("--sizes", default="512,1024", help="comma-separated frame sizes, px")
    parser.add_argument("--batch", type=int, default=32, help="frames per batch (the throughput benchmark's on a GPU)")
    args = parser.parse_args(argv)
    records = run([int(s) for s in args.sizes.split(",")], args.batch)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(records, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(records))
    for r in records:
        print(
            f"{r['size']:>5} px: {r['device_operations_per_frame']:.0f} device operations and "
            f"{r['host_reads_per_frame']:.1f} host reads per frame; at {r['host_us_per_operation']:.1f} us each, "
            f"at least {r['floor_ms_per_frame']:.1f} ms per frame: at most {r['ceiling_fps']:.0f} frames/s per stream"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
