"""The backend registry: one place picks the kernel module."""

import importlib.util

import pytest

from vpimage.errors import BackendUnavailableError, ConfigError
from vpimage.kernels import _numpy, get_backend


def test_auto_on_cpu_is_numpy():
    assert get_backend() is _numpy
    assert get_backend("auto", device="cpu") is _numpy
    assert get_backend("numpy") is _numpy


@pytest.mark.parametrize(("name", "device"), [("jax", None), ("numpy", "tpu"), ("numpy", "cuda")])
def test_bad_names_and_devices_are_config_errors(name, device):
    with pytest.raises(ConfigError):
        get_backend(name, device=device)


def test_torch_backend_is_given_or_refused_with_a_reason():
    if importlib.util.find_spec("vpimage.kernels._torch") is None:
        with pytest.raises(BackendUnavailableError, match="torch backend"):
            get_backend("torch")
    else:
        module = get_backend("torch", device="cpu")
        assert set(_numpy.__all__) <= set(dir(module))
