"""In CI (``VPIMAGE_CI``) a skip fails unless it is for a missing CUDA GPU (tests/ci_skips.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SAMPLE = """
import pytest

def test_on_a_gpu():
    pytest.skip("CUDA not available on this machine")

def test_with_torch():
    pytest.skip("torch is not installed here")

@pytest.mark.xfail(strict=True)
def test_known_miss():
    assert False
"""


@pytest.mark.parametrize("ci, summary", [(True, "1 failed, 1 skipped, 1 xfailed"), (False, "2 skipped, 1 xfailed")])
def test_a_skip_other_than_cuda_fails_in_ci(tmp_path, ci, summary):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "VPIMAGE_CI"} | {"PYTHONPATH": str(TESTS)}
    if ci:
        env["VPIMAGE_CI"] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ci_skips", "-p", "no:cacheprovider",
                           "test_sample.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert summary in done.stdout, done.stdout
    assert (done.returncode != 0) == ci
