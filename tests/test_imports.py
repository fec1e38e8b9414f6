"""`import vpimage` stays light: optional heavy parts load only when used."""

import subprocess
import sys

import pytest

OPTIONAL = ("torch", "pynetdicom", "dask", "distributed", "matplotlib")


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("vpimage", OPTIONAL + ("cv2",)),
        ("vpimage.cli", OPTIONAL + ("cv2",)),
        ("vpimage.synth", OPTIONAL),
        ("vpimage.io", OPTIONAL),
    ],
)
def test_import_does_not_load_heavy_optional_packages(module, forbidden):
    code = f"import sys, {module}\nprint(','.join(m for m in {forbidden!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"`import {module}` loaded {loaded}"
