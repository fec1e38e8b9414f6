"""sample_dicom/ is what its committed script makes, and each study shows its scenario."""

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from vpimage.synth import simulate

ROOT = Path(__file__).resolve().parents[1] / "sample_dicom"


def _load_samples_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLES = _load_samples_module()


def _stored_frames(folder: Path) -> np.ndarray:
    """The study's pixels as plain pydicom decodes them, [frames, rows, cols]."""
    single = folder / "study.dcm"
    if single.exists():
        return pydicom.dcmread(single).pixel_array
    files = sorted((folder / "study").glob("*.dcm"))
    datasets = sorted((pydicom.dcmread(f) for f in files), key=lambda ds: int(ds.InstanceNumber))
    return np.stack([ds.pixel_array for ds in datasets])


def test_samples_stay_small():
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file())
    assert total <= 20 * 2**20


@pytest.mark.parametrize("scenario", sorted(SAMPLES.SAMPLES))
def test_sample_is_regenerated_by_its_script(scenario):
    _, _, options = SAMPLES.SAMPLES[scenario]
    result = simulate(scenario, seed=SAMPLES.SEED, options=options)
    stored = _stored_frames(ROOT / scenario)
    assert stored.shape == result.run.frames.shape
    # Lossless encodings: the same pixels (a level of floating-point slack on other CPUs).
    difference = np.abs(stored.astype(np.int32) - result.run.frames.astype(np.int32))
    assert difference.max() <= 1 and np.mean(difference > 0) < 1e-4
    truth = json.loads((ROOT / scenario / "truth.json").read_text())
    assert truth["scenario"] == scenario
    assert truth.keys() == result.truth.keys()  # the truth format synth writes today
    assert truth["events"] == result.truth["events"]
    assert len(truth["frames"]) == stored.shape[0]
    np.testing.assert_allclose(
        [f["cement_area_mm2"] for f in truth["frames"]],
        [f["cement_area_mm2"] for f in result.truth["frames"]],
        atol=1e-6,
    )
    masks = np.load(ROOT / scenario / truth["masks_file"])["masks"]
    assert masks.shape == stored.shape and masks.dtype == bool
    wall = json.loads((ROOT / scenario / "WALL.json").read_text())
    assert wall == {"frame": 0, "vertebral_body": truth["vertebral_body"]}


@pytest.mark.parametrize("scenario", sorted(SAMPLES.SAMPLES))
def test_sample_truth_shows_its_scenario(scenario):
    truth = json.loads((ROOT / scenario / "truth.json").read_text())
    fronts = [f["front_to_wall_mm"] for f in truth["frames"] if f["front_to_wall_mm"] is not None]
    leaks = {c for f in truth["frames"] for c in f["leak_classes"]}
    levels = [e["level"] for e in truth["events"]]
    expected_leak = {
        "no_leak": set(), "posterior_approach": set(), "posterior_breach": {"posterior"},
        "venous_leak": {"venous"}, "disc_leak": {"disc_superior", "disc_inferior"}, "anterior_leak": {"anterior"},
    }[scenario]
    if scenario == "disc_leak":
        assert len(leaks) == 1 and leaks <= expected_leak
    else:
        assert leaks == expected_leak
    if scenario == "no_leak":
        assert min(fronts) >= 8.0 and levels == ["ok"]
    elif scenario == "posterior_approach":
        assert 0.0 < min(fronts) <= 3.0 and levels[-1] == "stop"
    elif scenario == "posterior_breach":
        assert min(fronts) < 0.0 and levels[-1] == "stop"
    else:
        assert levels[-1] == "stop"
