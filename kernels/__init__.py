"""Array kernels of vpimage, installed as ``vpimage.kernels``.

Pure functions on arrays (no I/O, no logging, no global state), one module per backend
with the same names and signatures, chosen by one registry::

    from vpimage.kernels import get_backend
    xp = get_backend("auto")          # the numpy backend unless torch is asked for
    excess = xp.attenuation(frames, white_level=4095.0)

Backend modules are imported only when asked for, so ``import vpimage`` never loads
torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vpimage.errors import BackendUnavailableError, ConfigError

__all__ = ["BACKENDS", "get_backend"]

# Backend name -> module implementing every kernel of ``_numpy.__all__``.
BACKENDS = {"numpy": "vpimage.kernels._numpy", "torch": "vpimage.kernels._torch"}


def get_backend(name: str = "auto", device: str | None = None) -> ModuleType:
    """The kernel module of one backend.

    Parameters
    ----------
    name : {"auto", "numpy", "torch"}
        ``"auto"`` gives the torch backend when ``device`` asks for CUDA, else numpy.
    device : {None, "auto", "cpu", "cuda"}, optional
        Where the torch backend computes; the numpy backend only runs on ``"cpu"``.

    Returns
    -------
    module
        Exposes the kernels of ``vpimage.kernels._numpy.__all__``.

    Raises
    ------
    ConfigError
        Unknown backend name, or a device the backend cannot use.
    BackendUnavailableError
        The backend's module or its requirements cannot be imported here.
    """
    if name not in ("auto", *BACKENDS):
        raise ConfigError(f"unknown backend {name!r}; choose auto, numpy or torch")
    if device not in (None, "auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if name == "auto":
        name = "torch" if device == "cuda" else "numpy"
    if name == "numpy" and device == "cuda":
        raise ConfigError("the numpy backend runs on the cpu only; use --backend torch for cuda")
    try:
        module = importlib.import_module(BACKENDS[name])
    except ImportError as error:
        raise BackendUnavailableError(f"the {name} backend cannot be loaded here: {error}") from error
    if not module.is_available():
        requires = ", ".join(module.REQUIRES)
        raise BackendUnavailableError(f"the {name} backend needs {requires}")
    if device == "cuda" and not module.cuda_available():
        raise BackendUnavailableError(f"the {name} backend finds no CUDA device here")
    return module
