"""The README shows the committed benchmark results as they are.

The README's tables of the phantom accuracy, the automatic anatomy and the throughput are
copies of the Markdown that ``benchmarks/`` writes under ``benchmarks/results/``; a re-run
that changes a result must change the README with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("accuracy--cpu.md", "anatomy--cpu.md")


def result_lines(text: str) -> list[str]:
    """The table rows and list items of a results file."""
    return [line for line in text.splitlines() if line.startswith(("|", "- "))]


@pytest.mark.parametrize("name", SHOWN)
def test_the_readme_shows_every_line_of_the_committed_results(name):
    readme = set((ROOT / "README.md").read_text().splitlines())
    lines = result_lines((ROOT / "benchmarks" / "results" / name).read_text())
    assert len(lines) >= 8  # a table's header, its rule and rows, at least
    missing = [line for line in lines if line not in readme]
    assert not missing, f"README.md lacks these lines of benchmarks/results/{name}: {missing}"


def test_the_readme_throughput_table_is_the_committed_record(tmp_path):
    # The table the throughput script makes from the committed records, put into a copy of
    # the README, leaves the README as it is.
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    records = ROOT / "benchmarks" / "results" / "throughput--cpu.json"
    assert json.loads(records.read_text())  # there is a record
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--json", str(records), "--from-json",
         "--readme", str(readme)],
        check=True,
        capture_output=True,
    )
    assert readme.read_text() == (ROOT / "README.md").read_text()
