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


def test_kernels_import_nothing_of_vpimage_but_its_errors():
    import ast
    from pathlib import Path

    kernels = Path(__file__).resolve().parents[1] / "kernels"
    imported = {}
    for source in sorted(kernels.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            imported.setdefault(source.name, set()).update(n for n in names if n.split(".")[0] == "vpimage")
    assert set(imported) >= {"__init__.py", "_numpy.py", "_torch.py"}  # (the walk saw the backends)
    reaching_out = {name: sorted(m for m in modules if m != "vpimage.errors" and not m.startswith("vpimage.kernels"))
                    for name, modules in imported.items()}
    assert reaching_out == {name: [] for name in imported}
