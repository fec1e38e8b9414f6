"""The anatomy is analysis: it never loads the phantom (whose truth it is scored against) nor torch."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_anatomy_loads_no_phantom_and_no_torch():
    code = ("import sys, vpimage.anatomy; "
            "print(sorted(m for m in ('vpimage.synth', 'torch', 'pynetdicom', 'dask') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
