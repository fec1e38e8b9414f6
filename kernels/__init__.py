"""Array kernels of vpimage, installed as ``vpimage.kernels``.

Pure functions on arrays (no I/O, no logging, no global state), one module per backend
with the same names and signatures, chosen by one registry::

    from vpimage.kernels import get_backend
    xp = get_backend("auto")          # torch on a CUDA device when there is one, else numpy
    excess = xp.attenuation(frames, white_level=4095.0)

Backend modules are imported only when asked for, so ``import vpimage`` never loads
torch (``"auto"`` imports it to ask for a CUDA device, and only when it is installed).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from vpimage.errors import BackendUnavailableError, ConfigError

__all__ = ["BACKENDS", "get_backend", "resolve"]

# Backend name -> module implementing every kernel of ``_numpy.__all__``.
BACKENDS = {"numpy": "vpimage.kernels._numpy", "torch": "vpimage.kernels._torch"}


def _cuda_torch() -> bool:
    """Whether the torch backend loads here and sees a CUDA device (torch not imported when absent)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        module = importlib.import_module(BACKENDS["torch"])
    except ImportError:
        return False
    return module.is_available() and module.cuda_available()


def resolve(name: str = "auto", device: str | None = None) -> tuple[str, str]:
    """The backend and device that ``name`` and ``device`` stand for here.

    Parameters
    ----------
    name : {"auto", "numpy", "torch"}
        ``"auto"``: torch when torch is installed and sees a CUDA device (and ``device``
        does not ask for the cpu), else numpy.
    device : {None, "auto", "cpu", "cuda"}, optional
        ``None`` and ``"auto"``: CUDA for the torch backend when there is a CUDA device,
        else the cpu.

    Returns
    -------
    (backend, device) : tuple of str
        ``backend`` in ``("numpy", "torch")``, ``device`` in ``("cpu", "cuda")``; what
        :func:`get_backend` loads and where it computes (summary.json records both).

    Raises
    ------
    ConfigError
        Unknown backend or device name, or the numpy backend on cuda.
    """
    if name not in ("auto", *BACKENDS):
        raise ConfigError(f"unknown backend {name!r}; choose auto, numpy or torch")
    if device not in (None, "auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if name == "numpy" and device == "cuda":
        raise ConfigError("the numpy backend runs on the cpu only; use --backend torch for cuda")
    if name == "numpy" or (name == "auto" and device == "cpu"):
        return "numpy", "cpu"
    if device in ("cpu", "cuda"):
        return "torch", device
    cuda = _cuda_torch()
    if name == "auto":
        return ("torch", "cuda") if cuda else ("numpy", "cpu")
    return "torch", "cuda" if cuda else "cpu"


def get_backend(name: str = "auto", device: str | None = None) -> ModuleType:
    """The kernel module of one backend.

    Parameters
    ----------
    name : {"auto", "numpy", "torch"}
        See :func:`resolve`: ``"auto"`` gives the torch backend on a CUDA device when
        there is one, else numpy.
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
        The backend's module or its requirements cannot be imported here, or no CUDA
        device for ``device="cuda"``.
    """
    name, device = resolve(name, device)
    try:
        module = importlib.import_module(BACKENDS[name])
    except ImportError as error:
        hint = f" (install vpimage's `{name}` extra: see the README's Install)" if name != "numpy" else ""
        raise BackendUnavailableError(f"the {name} backend cannot be loaded here: {error}{hint}") from error
    if not module.is_available():
        requires = ", ".join(module.REQUIRES)
        raise BackendUnavailableError(f"the {name} backend needs {requires}")
    if device == "cuda" and not module.cuda_available():
        raise BackendUnavailableError(f"the {name} backend finds no CUDA device here")
    return module
