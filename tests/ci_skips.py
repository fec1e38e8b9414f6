"""Where ``VPIMAGE_CI`` is set (``.ci/run``), a skipped test fails unless it needs a CUDA GPU.

CI installs every extra the tests exercise, so a skip there means a component is broken
(torch that no longer imports would turn the backend parity tests into skips): it must not
pass as green. Expected failures (xfail) are not skips.
"""

from __future__ import annotations

import os

import pytest

#: Skips allowed in CI: CI has no GPU.
ALLOWED = "CUDA"


def _fail_a_skip(report) -> None:
    if not (report.skipped and os.environ.get("VPIMAGE_CI")) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if ALLOWED not in reason:
        report.outcome = "failed"
        report.longrepr = f"skipped, but VPIMAGE_CI says everything but CUDA is here: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_a_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_a_skip(outcome.get_result())
