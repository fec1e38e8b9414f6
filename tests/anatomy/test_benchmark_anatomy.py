"""Smoke run of benchmarks/anatomy.py (--quick), so it cannot rot: it writes what its docstring says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "anatomy.py"


def test_quick_run_writes_the_anatomy_and_analysis_tables(tmp_path):
    out, md = tmp_path / "anatomy.json", tmp_path / "anatomy.md"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out), "--markdown", str(md)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result) == {"metadata", "anatomy", "criteria", "analysis", "cases"}
    assert [r["view"] for r in result["anatomy"]] == ["lateral", "ap"]
    assert [(c["scenario"], c["view"]) for c in result["cases"]] == [("posterior_breach", "lateral"), ("no_leak", "ap")]
    for row in result["anatomy"]:  # both bodies found, near the truth
        assert row["found"] == row["cases"] == 1 and row["corner_error_median_mm"] <= 1.5
    assert result["criteria"]["cases"] == 1 and "| scenario |" in md.read_text()
