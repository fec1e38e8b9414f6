"""Seeded fuzzing of valid files: nothing but vpimage's own errors escapes ``open`` and
iterating every frame (bit flips, truncations, deleted and altered tags)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from io_runs import build_run, write
from pydicom import dcmread

import vpimage.io
from vpimage.errors import VpimageError

SEED = 20260101
CASES_PER_BASE = 60
# (object, syntax): legacy, enhanced, secondary capture; native, big endian, deflated,
# RLE, JPEG lossless, JPEG-LS, JPEG 2000.
BASES = [("xa", "explicit-le"), ("enhanced-xa", "jpeg-ls"), ("sc", "rle"), ("xrf", "explicit-be"),
         ("enhanced-xrf", "j2k-lossless"), ("xa", "deflated"), ("xa", "jpeg-lossless")]
# Attributes whose deletion or alteration the readers must survive.
TAGS = ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
        "PhotometricInterpretation", "NumberOfFrames", "FrameTime", "FrameTimeVector", "ImagerPixelSpacing",
        "DistanceSourceToDetector", "DistanceSourceToPatient", "PixelSpacing", "ShutterShape",
        "RadiusOfCircularShutter", "CenterOfCircularShutter", "PositionerPrimaryAngle", "RescaleSlope",
        "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "PixelData", "CineRate"]
# Replacement values per value representation: zero, negative, huge, non-numeric, empty.
ALTERED = {
    "US": [0, 1, 3, 64, 65535],
    "UL": [0, 1, 2**32 - 1],
    "IS": ["0", "-1", "99999999", "abc", "", "2\\3"],
    "DS": ["0", "-1.5", "1e300", "abc", "", "NaN", "0\\0"],
    "CS": ["", "PALETTE COLOR", "XYZ", "RECTANGULAR"],
    "AT": [0x00000000, 0x00181063],
}


def _flip_bits(data: bytes, rng) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        position = int(rng.integers(132, len(out)))  # past the preamble and "DICM"
        out[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def _truncate(data: bytes, rng) -> bytes:
    return data[: int(rng.integers(132, len(data)))]


def _edit_tag(data: bytes, rng, delete: bool) -> bytes:
    ds = dcmread(io.BytesIO(data))
    present = [t for t in TAGS if t in ds]
    keyword = present[int(rng.integers(len(present)))]
    if delete:
        del ds[keyword]
    else:
        choices = ALTERED.get(ds[keyword].VR, [None])
        try:
            ds[keyword].value = [] if ds[keyword].VR == "SQ" else choices[int(rng.integers(len(choices)))]
        except (TypeError, ValueError, OverflowError):  # pydicom refuses the value: delete instead
            del ds[keyword]
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=True)
    except (TypeError, ValueError, OverflowError, OSError, AttributeError, KeyError):
        return data[:-1]  # pydicom refuses to write the edit: a truncation instead
    return buffer.getvalue()


def _mutants(path_bytes: bytes, rng):
    for case in range(CASES_PER_BASE):
        kind = ("flip", "truncate", "delete", "alter")[case % 4]
        if kind == "flip":
            yield kind, _flip_bits(path_bytes, rng)
        elif kind == "truncate":
            yield kind, _truncate(path_bytes, rng)
        else:
            yield kind, _edit_tag(path_bytes, rng, delete=kind == "delete")


@pytest.mark.filterwarnings("ignore")  # mutants warn about anything; only errors matter here
def test_only_vpimage_errors_escape(tmp_path):
    rng = np.random.default_rng(SEED)
    run = build_run(n=3, rows=32, columns=40, jittered=True)
    escaped, outcomes = [], {"ok": 0, "refused": 0}
    for obj, syntax in BASES:
        original = write(run, tmp_path, obj, syntax, name=f"{obj}-{syntax}").read_bytes()
        for index, (kind, data) in enumerate(_mutants(original, rng)):
            path = tmp_path / f"mutant-{obj}-{syntax}-{index}.dcm"
            path.write_bytes(data)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    study = vpimage.io.open(path)
                    for frame in study.iter_frames():
                        assert frame.shape == (study.rows, study.columns)
                outcomes["ok"] += 1
            except VpimageError as error:
                assert path.name in str(error)  # every refusal names the file
                outcomes["refused"] += 1
            except Exception as error:  # noqa: BLE001 - what the test is looking for
                escaped.append(f"{path.name} ({kind}): {type(error).__name__}: {error}"[:300])
            path.unlink()
    assert sum(outcomes.values()) + len(escaped) >= 300
    assert escaped == []
    assert outcomes["refused"] > 50 and outcomes["ok"] > 20  # the mutations hit both ways
