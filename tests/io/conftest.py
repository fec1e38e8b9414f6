"""Fixtures of the ingestion tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from io_runs import WG04


@pytest.fixture(scope="session")
def wg04() -> Path:
    assert WG04.is_dir(), f"the wg04 test set must sit in shared/ beside the repository: {WG04}"
    return WG04
