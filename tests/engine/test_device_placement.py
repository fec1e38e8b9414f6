"""The torch pipeline keeps its images on the frames' device (issue 6: no host round trips).

No CUDA device is needed to check where a CUDA run would put each tensor. On CUDA a tensor
made without a device (``torch.zeros(shape)``, ``torch.as_tensor(host_array)``) is on the
host; one made on the data's device, or computed from a tensor there, is on the device;
an operation given both fails ("Expected all tensors to be on the same device") or copies
through the host. ``Placement`` (benchmarks/dispatch.py, which counts the operations a CUDA
run issues per frame) follows that rule by tag on a cpu run, and the engine
runs every parity case on the torch backend with CUDA's schedule: each batch prepared at
once (no worker thread), the convergence checks of ECC and label propagation every few
iterations, and the median of the unfolded windows. A 0-d host tensor (a scalar) may meet a device tensor: CUDA kernels take it as
an argument.

The same tags count what the host reads from the device (each read waits for the work
queued before it): the engine's docstring lists what it reads, and the last test holds
it to that list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch backend is not installed here")

import test_accuracy  # noqa: E402
import test_backend_pipeline as parity  # noqa: E402
from vpimage.engine import Engine  # noqa: E402
from vpimage.kernels import _torch  # noqa: E402
from vpimage.measures import Corners  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import dispatch  # noqa: E402
from dispatch import Placement, as_on_cuda, cuda_schedule  # noqa: E402


def on_cuda_schedule(name: str, placement: Placement, *, batch: int = 16) -> tuple[list, list]:
    """The parity case ``name`` analysed on the torch backend (cpu) as CUDA schedules it, under
    ``placement``, in batches of ``batch`` frames: its EngineFrames and, per batch, whether the
    baseline was frozen before it, how many frames it had and what the host read meanwhile."""
    sim = parity.case(name)
    batches = []

    def engine_as_on_cuda(*args, **kwargs):
        engine = as_on_cuda(Engine(*args, backend="torch", device="cpu", **kwargs))
        process = engine.process

        def counted(frames):
            frozen, before = engine.state.baseline is not None, placement.reads.copy()
            out = process(frames)
            batches.append((frozen, len(out), placement.reads - before))
            return out

        engine.process = counted
        return engine

    with pytest.MonkeyPatch.context() as patch, cuda_schedule():
        patch.setattr(test_accuracy, "Engine", engine_as_on_cuda)
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
    # statistics (shifts and scores; clipped fractions, noise levels, outlier shares and the
    # field's darkened edge) and the gains of the frames' contrast (read again, together, for
    # the frames whose gain is past the tolerance: this low-dose case has six), per frame the
    # accumulated cement mask; and the convergence checks the kernels document (ECC, label
    # propagation). A case without collimator blades.
    _, batches = on_cuda_schedule("approach_motion_low_dose", Placement(), batch=batch)
    steady = [(frames, reads) for frozen, frames, reads in batches if frozen]
    assert len(steady) >= 2
    for frames, reads in steady:
        checks = {"_ecc_translation", "_component_roots", "gains"}
        assert {reader: n for reader, n in reads.items() if reader not in checks} == {
            "measure": frames,
            "_prepare": 4,
            "estimate": 2,
        }
        assert reads["gains"] in (1, 2)
        # One registration per batch, all its frames in lock step, checked every 5th iteration.
        assert reads["_ecc_translation"] <= _torch._ECC_ITERATIONS // 5


def test_the_dispatch_benchmark_counts_per_frame_what_a_cuda_run_issues(tmp_path):
    out = tmp_path / "dispatch.json"
    assert dispatch.main(["--json", str(out), "--markdown", str(tmp_path / "d.md"), "--sizes", "128", "--batch", "8"]) == 0
    (record,) = json.loads(out.read_text())
    assert (record["size"], record["batch"], record["frames"]) == (128, 8, dispatch.CYCLE)
    assert record["mixed_host_and_device"] == 0
    assert record["reads_per_frame_by_function"]["measure"] == 1.0  # the cement mask, once per frame
    assert record["device_operations_per_frame"] > 100  # (each a launch on CUDA: the engine's kernels, per frame)
    floor_ms = record["device_operations_per_frame"] * record["host_us_per_operation"] / 1000
    assert record["floor_ms_per_frame"] == pytest.approx(floor_ms, rel=0.01)
    assert record["ceiling_fps"] == pytest.approx(1000 / record["floor_ms_per_frame"], rel=0.01)
    assert (tmp_path / "d.md").read_text().splitlines()[2].startswith("| 128 | 8 | ")
