"""Fixtures of the ingestion tests."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from io_runs import WG04


@pytest.fixture(scope="session")
def wg04() -> Path:
    assert WG04.is_dir(), f"the wg04 test set must sit in shared/ beside the repository: {WG04}"
    return WG04


@pytest.fixture
def io_log(caplog):
    """``caplog`` holding what vpimage.io logs, DEBUG and up, wherever the command line (run
    in this process by other tests) has stopped vpimage's records from reaching the root."""
    logger = logging.getLogger("vpimage.io")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="vpimage.io"):
            yield caplog
    finally:
        logger.removeHandler(caplog.handler)
