"""vpimage.io stays upstream of the analysis: it imports none of it, nor OpenCV until a video."""

import subprocess
import sys

ANALYSIS = ("vpimage.engine", "vpimage.kernels", "vpimage.alerts", "vpimage.measures", "vpimage.outputs", "cv2")


def test_io_imports_no_analysis_module_and_no_opencv():
    code = f"import sys, vpimage.io\nprint(','.join(m for m in {ANALYSIS!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"`import vpimage.io` loaded {loaded}"
