"""Shared test configuration: this folder is on sys.path, so test folders can share helpers
(``fluoro_runs``); in CI a skip for anything but a missing CUDA GPU fails (``ci_skips``)."""

from ci_skips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401 (hooks)
