"""Shared phantom runs for the synth tests: each distinct run is simulated once per session."""

from __future__ import annotations

from functools import lru_cache

import pytest

from vpimage.synth._phantom import SynthOptions, simulate

#: Small but complete runs: the default clip timing (60 frames at 5 fps), 160 px images.
SMALL = {"size_px": 160, "frames": 60, "fps": 5.0}


@lru_cache(maxsize=None)
def _cached(scenario: str, seed: int, options: SynthOptions):
    return simulate(scenario, seed=seed, options=options)


def run_phantom(scenario: str, seed: int = 0, **options):
    """``simulate`` with ``SMALL`` defaults overridden by ``options``, cached by arguments.

    Callers must not modify the arrays of the result they get.
    """
    return _cached(scenario, seed, SynthOptions(**{**SMALL, **options}))


@pytest.fixture
def phantom():
    return run_phantom
