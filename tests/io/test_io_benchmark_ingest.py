"""Smoke test of benchmarks/ingest.py (--quick): it runs and writes what its docstring says."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "ingest.py"


def test_quick_run_writes_records_for_each_syntax_and_a_flat_memory_record(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("ingest_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ingest_benchmark", module)  # its worker processes find it there
    spec.loader.exec_module(module)
    out = tmp_path / "ingest.json"
    assert module.main(["--quick", "--workers", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"date", "commit", "host", "pydicom"} <= set(report["metadata"])
    assert [r["syntax"] for r in report["results"]] == ["explicit-le", "rle", "jpeg-ls"]
    for record in report["results"]:
        assert record["frames"] == 4 and record["fps_1proc"] > 0 and record["fps_all_cores"] > 0
        assert record["raw_read_fps"] > 0
    assert [m["frames"] for m in report["memory"]] == [40, 40]  # the streamed long studies decode whole
    assert all(m["within_target"] for m in report["memory"])
