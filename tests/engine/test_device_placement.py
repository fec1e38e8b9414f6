"""The torch pipeline keeps its images on the frames' device (issue 6: no host round trips).

No CUDA device is needed to check where a CUDA run would put each tensor. On CUDA a tensor
made without a device (``torch.zeros(shape)``, ``torch.as_tensor(host_array)``) is on the
host; one made on the data's device, or computed from a tensor there, is on the device;
an operation given both fails ("Expected all tensors to be on the same device") or copies
through the host. :class:`Placement` follows that rule by tag on a cpu run, and the engine
runs every parity case on the torch backend with CUDA's schedule: each batch prepared at
once (no worker thread) and the convergence checks of ECC and label propagation every few
iterations. A 0-d host tensor (a scalar) may meet a device tensor: CUDA kernels take it as
an argument.

The same tags count what the host reads from the device (each read waits for the work
queued before it): the engine's docstring lists what it reads, and the last test holds
it to that list.
"""

from __future__ import annotations

import collections
import inspect
import weakref
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch backend is not installed here")
from torch.overrides import TorchFunctionMode  # noqa: E402

import test_accuracy  # noqa: E402
import test_backend_pipeline as parity  # noqa: E402
from vpimage.engine import Engine  # noqa: E402
from vpimage.kernels import _torch  # noqa: E402
from vpimage.measures import Corners  # noqa: E402

FACTORIES = {
    torch.tensor, torch.as_tensor, torch.asarray, torch.from_numpy, torch.zeros, torch.ones, torch.empty,
    torch.full, torch.arange, torch.linspace, torch.eye, torch.rand, torch.randn, torch.randint,
}
LIKE = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like}
TO_HOST = {"cpu", "numpy", "pin_memory"}
TO_DEVICE = {"to", "cuda"}
# Operations that bring device data to the host: a copy, a Python value, or an output whose
# size depends on the data.
READS = {"numpy", "item", "tolist", "__bool__", "__int__", "__float__", "__index__", "equal", "nonzero", "unique"}
SOURCES = tuple(str(Path(_torch.__file__).parents[1] / part) for part in ("vpimage", "kernels"))  # (their callers)


class Placement(TorchFunctionMode):
    """Tags every tensor made under it ``host`` or ``device`` as a CUDA run would place it,
    and records each operation given a host tensor (not a scalar) and a device tensor:
    ``mixed`` counts them by operation and the line of vpimage that called it; ``reads``
    counts the host's reads of device data by the function of vpimage that made them."""

    def __init__(self):
        super().__init__()
        self.mixed = collections.Counter()
        self.reads = collections.Counter()
        self._tags = {}  # id -> (weak reference, tag): a tag holds only while its tensor lives

    def tag(self, tensor) -> str:
        known = self._tags.get(id(tensor))
        return known[1] if known is not None and known[0]() is tensor else "device"  # (made before: an input)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if args and isinstance(args[0], torch.Tensor) and self.tag(args[0]) == "device":
            masked = name == "__getitem__" and isinstance(args[1], torch.Tensor) and args[1].dtype == torch.bool
            if name in READS or masked:
                self.reads[_reader()] += 1
        given = [a for a in _flat([*args, *kwargs.values()]) if isinstance(a, torch.Tensor)]
        tags = [(self.tag(a), a.dim()) for a in given]
        if any(t == "device" for t, _ in tags) and any(t == "host" and dims > 0 for t, dims in tags):
            self.mixed[name, _caller()] += 1
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
            tag = "device" if not given or any(t == "device" for t, _ in tags) else "host"
        for tensor in _flat([out]):
            if isinstance(tensor, torch.Tensor):
                self._tags[id(tensor)] = (weakref.ref(tensor), tag)
        return out


def _flat(items) -> list:
    out = []
    for item in items:
        out += _flat(item) if isinstance(item, (list, tuple)) else [item]
    return out


def _caller() -> str:
    for frame in inspect.stack()[2:]:
        if frame.filename.startswith(SOURCES):
            return f"{Path(frame.filename).relative_to(Path(SOURCES[0]).parent)}:{frame.lineno}"
    return "?"


def _reader() -> str:
    """The innermost function of vpimage (``to_host`` aside: its caller) on the stack."""
    for frame in inspect.stack()[2:]:
        if frame.filename.startswith(SOURCES) and frame.function != "to_host":
            return frame.function
    return "?"


def on_cuda_schedule(name: str, placement: Placement, *, batch: int = 16) -> tuple[list, list]:
    """The parity case ``name`` analysed on the torch backend (cpu) as CUDA schedules it, under
    ``placement``, in batches of ``batch`` frames: its EngineFrames and, per batch, whether the
    baseline was frozen before it, how many frames it had and what the host read meanwhile."""
    sim = parity.case(name)
    batches = []

    def engine_as_on_cuda(*args, **kwargs):
        engine = Engine(*args, backend="torch", device="cpu", **kwargs)
        engine._worker = None  # (on CUDA each batch is prepared at once, by the thread that feeds it)
        process = engine.process

        def counted(frames):
            frozen, before = engine.state.baseline is not None, placement.reads.copy()
            out = process(frames)
            batches.append((frozen, len(out), placement.reads - before))
            return out

        engine.process = counted
        return engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_accuracy, "Engine", engine_as_on_cuda)
        patch.setattr(_torch, "_ECC_CHECK_EVERY", {})
        patch.setattr(_torch, "_ROUNDS_PER_CHECK", {})
        with placement:
            frames = test_accuracy.analyse(sim.run, Corners.from_dict(sim.truth["vertebral_body"]), batch=batch)
    return frames, batches


one_torch_thread = parity.one_torch_thread  # (its autouse fixture: one torch thread for 128 px images)


@pytest.mark.parametrize("name", list(parity.CASES))
def test_the_torch_pipeline_never_mixes_host_and_device_tensors(name):
    placement = Placement()
    frames, _ = on_cuda_schedule(name, placement)
    assert not placement.mixed, f"host tensors met device tensors: {dict(placement.mixed)}"
    # The run is the torch run the parity test compares with numpy (the tags change nothing).
    reference, _ = parity.analysed(name, "torch", "cpu")
    for ours, theirs in zip(frames, reference, strict=True):
        assert ours.result.alert == theirs.result.alert
        np.testing.assert_array_equal(ours.cement_mask, theirs.cement_mask)
    assert any(f.result.cement_area_px for f in frames)


def test_placement_reports_a_tensor_made_without_the_device():
    placement = Placement()
    with placement:
        frames = _torch.to_device(np.ones((2, 8, 8), np.float32), device="cpu")
        kept = _torch.accumulate_cement(
            frames > 0,
            time_s=np.arange(2, dtype=np.float32),
            min_run=1,
            run_length=torch.zeros((8, 8), dtype=torch.int16),  # a host tensor on CUDA
            run_start_s=torch.zeros((8, 8), device=frames.device),
            accumulated=torch.zeros((8, 8), dtype=torch.bool, device=frames.device),
            time_of_arrival_s=torch.full((8, 8), float("nan"), device=frames.device),
        )
        scaled = frames * torch.tensor(2.0)  # a scalar: allowed
    assert kept.all() and scaled.sum() == 256
    assert placement.mixed and all(where.startswith("kernels/_torch.py:") for _, where in placement.mixed)


@pytest.mark.parametrize("batch", [4, 8])
def test_once_the_baseline_is_frozen_the_host_reads_a_mask_per_frame_and_the_motion_per_batch(batch):
    # What the engine's docstring lists: per batch the registration results and the frame
    # statistics (shifts and scores; clipped fractions, noise levels and the field's
    # darkened edge), per frame the accumulated cement mask; and the convergence checks
    # the kernels document (ECC, label propagation). A case without collimator blades.
    _, batches = on_cuda_schedule("approach_motion_low_dose", Placement(), batch=batch)
    steady = [(frames, reads) for frozen, frames, reads in batches if frozen]
    assert len(steady) >= 2
    for frames, reads in steady:
        checks = {"_ecc_translation", "_component_roots"}
        assert {reader: n for reader, n in reads.items() if reader not in checks} == {
            "_measure": frames,
            "_prepare": 3,
            "_estimate_shift": 2,
        }
        # One registration per batch, all its frames in lock step, checked every 5th iteration.
        assert reads["_ecc_translation"] <= _torch._ECC_ITERATIONS // 5
