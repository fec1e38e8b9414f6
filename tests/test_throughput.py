"""Smoke run of benchmarks/throughput.py, so it cannot rot: the records CONTRACT.md names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KEYS = {"backend", "device", "size", "batch", "frames", "fps", "latency_ms_p50", "latency_ms_p99", "roofline_fps", "host", "gpu"}


def test_throughput_writes_one_record_per_backend_and_the_naive_baseline(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
    out = tmp_path / "throughput.json"
    arguments = ["--json", str(out), "--sizes", "128", "--backends", "numpy,torch", "--seconds", "0.01"]
    subprocess.run(
        [sys.executable, str(script), *arguments, "--markdown", str(tmp_path / "t.md")],
        check=True,
        capture_output=True,
    )
    records = json.loads(out.read_text())
    assert [(r["backend"], r["device"], r["size"]) for r in records] == [
        ("naive-skimage", "cpu", 128),
        ("numpy", "cpu", 128),
        ("torch", "cpu", 128),
    ]
    for r in records:
        assert set(r) == KEYS
        assert r["fps"] > 0 and r["roofline_fps"] > 0 and r["frames"] >= r["batch"] >= 1
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p99"]
        assert r["gpu"] is None
    table = (tmp_path / "t.md").read_text().splitlines()
    assert len(table) == 2 + len(records) and table[2].startswith("| naive-skimage | cpu | 128 |")
