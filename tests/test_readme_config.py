"""The README's configuration table lists every key of the run configuration with its default."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

from vpimage.config import RunConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def defaults() -> dict[str, object]:
    """Every key of the default configuration, dotted (``alerts.warn_mm``), with its value."""
    flat = {}

    def walk(table, prefix):
        for key, value in table.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            else:
                flat[prefix + key] = value

    walk(dataclasses.asdict(RunConfig.defaults()), "")
    return {key: getattr(value, "value", value) for key, value in flat.items()}  # (alert levels by name)


def readme_rows() -> dict[str, str]:
    """Key -> default as the README's configuration table gives them; a row naming several
    keys gives their defaults in the same order, comma-separated."""
    section = README.read_text().split("## Configuration", 1)[1]
    table = section.split("| key | default | clinical meaning |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            keys = re.findall(r"`([\w.<>]+)`", cells[0])
            values = [value.strip().strip("`") for value in cells[1].split(",")]
            rows.update(zip(keys, values if len(values) == len(keys) else values * len(keys)))
    return rows


def test_every_key_is_in_the_readme_with_its_default():
    rows = readme_rows()
    flat = defaults()
    assert len(flat) > 40
    for key, value in flat.items():
        shown = rows.get(re.sub(r"^alerts\.leak_levels\.\w+$", "alerts.leak_levels.<class>", key))
        assert shown is not None, f"README's configuration table lacks `{key}`"
        assert shown == str(value), f"`{key}`: README says {shown}, the default is {value}"


def test_the_readme_lists_no_key_that_does_not_exist():
    known = set(defaults()) | {"alerts.leak_levels.<class>"}
    assert set(readme_rows()) <= known
