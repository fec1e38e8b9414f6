"""Smoke run of benchmarks/throughput.py, so it cannot rot: the records CONTRACT.md names."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

# The torch records where the optional torch backend is installed (CI installs it).
BACKENDS = ("numpy", "torch") if importlib.util.find_spec("torch") else ("numpy",)
KEYS = {"backend", "device", "size", "batch", "frames", "fps", "latency_ms_p50", "latency_ms_p99", "roofline_fps", "host", "gpu"}


def test_throughput_writes_one_record_per_backend_and_the_naive_baseline(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
    out = tmp_path / "throughput.json"
    arguments = ["--json", str(out), "--sizes", "128", "--backends", ",".join(BACKENDS), "--seconds", "0.01", "--torch-threads", "1"]
    subprocess.run(
        [sys.executable, str(script), *arguments, "--markdown", str(tmp_path / "t.md")],
        check=True,
        capture_output=True,
    )
    records = json.loads(out.read_text())
    assert [(r["backend"], r["device"], r["size"]) for r in records] == [
        (backend, "cpu", 128) for backend in ("naive-skimage", *BACKENDS)
    ]
    for r in records:
        assert set(r) == KEYS
        assert r["fps"] > 0 and r["roofline_fps"] > 0 and r["frames"] >= r["batch"] >= 1
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p99"]
        assert r["gpu"] is None
    table = (tmp_path / "t.md").read_text().splitlines()
    assert len(table) == 2 + len(records) and table[2].startswith("| naive-skimage | cpu | 128 |")
    assert all(" cores, load " in r["host"] for r in records)  # the host's load is on record
    if "torch" in BACKENDS:
        assert records[-1]["host"].endswith(", torch threads 1")  # as --torch-threads asked


def test_the_readme_table_is_generated_from_the_records(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
    records = [
        {"backend": "naive-skimage", "device": "cpu", "size": 512, "batch": 1, "frames": 9, "fps": 5.0,
         "latency_ms_p50": 190.0, "latency_ms_p99": 290.0, "roofline_fps": 10000.0, "host": "h", "gpu": None},
        {"backend": "numpy", "device": "cpu", "size": 512, "batch": 8, "frames": 80, "fps": 60.0,
         "latency_ms_p50": 20.0, "latency_ms_p99": 30.0, "roofline_fps": 10000.0, "host": "h", "gpu": None},
    ]
    results = tmp_path / "r.json"
    results.write_text(json.dumps(records))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- throughput table -->\nold table\n<!-- /throughput table -->\nafter\n")
    subprocess.run([sys.executable, str(script), "--json", str(results), "--from-json", "--readme", str(readme)], check=True)
    lines = readme.read_text().splitlines()
    assert lines[0] == "intro" and lines[-1] == "after" and "old table" not in lines
    # 60 fps is 12x the naive 5 fps, and 6e-3 of the copy roofline.
    assert "| numpy | cpu | 512 | 8 | 60.0 | 6.0e-03 | 12.0 | 20.0 | 30.0 |" in lines
