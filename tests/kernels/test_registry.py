"""The backend registry: one place picks the kernel module and says where it computes."""

import importlib.util
import subprocess
import sys

import pytest

import vpimage.kernels as registry
from vpimage.errors import BackendUnavailableError, ConfigError
from vpimage.kernels import _numpy, get_backend, resolve

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_numpy_is_asked_for_by_name_or_by_the_cpu():
    assert get_backend("numpy") is _numpy
    assert get_backend("auto", device="cpu") is _numpy
    assert resolve("numpy") == resolve("auto", device="cpu") == ("numpy", "cpu")


@pytest.mark.parametrize(("name", "device"), [("jax", None), ("numpy", "tpu"), ("numpy", "cuda")])
def test_bad_names_and_devices_are_config_errors(name, device):
    with pytest.raises(ConfigError):
        get_backend(name, device=device)


def test_auto_without_torch_installed_is_numpy_and_imports_no_torch():
    # A fresh interpreter in which torch cannot be found: auto falls back to numpy and
    # never tries to import torch.
    code = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'torch' else real(name, *a)\n"
        "from vpimage.kernels import get_backend, resolve\n"
        "assert resolve('auto') == ('numpy', 'cpu'), resolve('auto')\n"
        "assert get_backend('auto').__name__ == 'vpimage.kernels._numpy'\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed here")
@pytest.mark.parametrize("cuda", [True, False])
def test_auto_picks_torch_on_cuda_else_numpy(monkeypatch, cuda):
    from vpimage.kernels import _torch

    monkeypatch.setattr(_torch, "cuda_available", lambda: cuda)
    assert resolve("auto") == resolve("auto", device="auto") == (("torch", "cuda") if cuda else ("numpy", "cpu"))
    assert resolve("torch") == ("torch", "cuda" if cuda else "cpu")
    assert get_backend("auto") is (_torch if cuda else _numpy)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed here")
def test_cuda_is_refused_without_a_cuda_device(monkeypatch):
    from vpimage.kernels import _torch

    monkeypatch.setattr(_torch, "cuda_available", lambda: False)
    assert resolve("torch", device="cuda") == ("torch", "cuda")  # as asked, then refused on load
    with pytest.raises(BackendUnavailableError, match="no CUDA device"):
        get_backend("torch", device="cuda")


def test_torch_backend_is_given_or_refused_with_a_reason(monkeypatch):
    if not HAS_TORCH:
        with pytest.raises(BackendUnavailableError, match="torch backend"):
            get_backend("torch")
    else:
        module = get_backend("torch", device="cpu")
        assert set(_numpy.__all__) <= set(dir(module))
    # A torch that is present but fails to import counts as absent for auto.
    monkeypatch.setitem(registry.BACKENDS, "torch", "vpimage.kernels._no_such_module")
    assert resolve("auto") == ("numpy", "cpu")
    with pytest.raises(BackendUnavailableError, match="cannot be loaded") as info:
        get_backend("torch", device="cpu")
    assert "install vpimage's `torch` extra" in str(info.value)  # what brings it
