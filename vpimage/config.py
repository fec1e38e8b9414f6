"""The run configuration: every threshold of an analysis, from a TOML file and CLI overrides.

A TOML file holds any of the sections below, each with any of its keys; what it leaves out
keeps its default, and an unknown section or key is an error::

    [alerts]                 # AlertThresholds (CONTRACT.md "Alert levels")
    warn_mm = 5.0
    stop_mm = 2.0
    hidden_stop_mm = 3.5
    warn_depth_fraction = 0.75
    hold_s = 0.5
    [alerts.leak_levels]     # the level each leak class raises: "ok", "warn" or "stop"
    disc_superior = "warn"
    [leaks]                  # LeakRules: how cement outside the body is classified
    [segmentation]           # SegmentationConfig: the engine's cement segmentation
    [reliability]            # ReliabilityConfig: when a frame is unreliable
    [speed]                  # SpeedConfig: the front speed estimate
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import sys
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Mapping

from vpimage._paths import path_argument
from vpimage.alerts import AlertLevel, AlertThresholds
from vpimage.errors import ArgumentError, ConfigError
from vpimage.measures import LeakRules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ReliabilityConfig", "RunConfig", "SegmentationConfig", "SpeedConfig"]


# Lengths (``*_mm`` fields) past a metre outgrow any detector's field; farther, they would
# overflow when turned into pixels.
_MAX_LENGTH_MM = 1000.0


def _check_numbers(config, ranges: Mapping[str, tuple[float, float]], positive: tuple[str, ...] = ()) -> None:
    """Every number field of a dataclass must be finite and in its closed range from
    ``ranges`` (when not named there, ``[0, 1000]`` for a length in mm, else ``[0, inf)``),
    and above 0 when named in ``positive``."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi = ranges.get(f.name, (0, _MAX_LENGTH_MM if f.name.endswith("_mm") else math.inf))
            if not (math.isfinite(value) and lo <= value <= hi) or (f.name in positive and value <= 0):
                strict = f.name in positive
                if hi == math.inf:
                    where = f"{'>' if strict else '>='} {lo:g}"
                else:
                    where = f"in {'(' if strict else '['}{lo:g}, {hi:g}]"
                raise ArgumentError(f"`{f.name}` must be a finite number {where}; got {value!r}")


# Closed ranges of the fields that have more than ">= 0": fractions, and widths (px) and
# lengths (mm) past which a filter or a grid would outgrow any fluoroscopy frame.
_SEGMENTATION_RANGES = {
    "min_temporal_alpha": (0, 1),
    "growth_contrast_ratio": (0, 1),
    "bridge_contrast_ratio": (0, 1),
    "bridge_edge_share": (0, 1),
    "display_gain_tolerance": (0, 1),
    "display_gain_kept_tolerance": (0, 1),
    "max_smooth_px": (0, 20),
    "smooth_px": (0, 20),
    "field_margin_px": (0, 100),
    "needle_margin_px": (0, 100),
    "registration_error_px": (0, 5),
    "registration_grid_mm": (0, 5),
    # Past these no cement would ever count on any study, and every frame would read ok
    # (the defaults, and ceilings far above them, still seeing the phantom's cement):
    "cement_contrast": (0, 1),  # 0.15; 1 is ~2 mm of cement on the phantom
    "min_local_snr": (0, 20),  # 4
    "display_log_range": (0, 20),  # 11; e**20 is far beyond any detector's range
    # Counts in px and frames, whose size and length vary with the detector and the rate:
    "min_area_px": (0, 2000),  # 20; 2000 px: 20 mm2 at 0.1 mm/px, 180 at 0.3
    "min_run": (1, 30),  # 1 frame; 30: 1 s at 30 fps, 10 s at 3 fps
    "baseline_frames_max": (1, 300),  # 10; 300: 10 s at 30 fps (each frame is kept until the baseline is made)
    # Nearer the body, a leak's start could go unseen: 30 mm; the floor leaves a leak's first
    # millimetres in view (the first frame of any leak stops).
    "leak_search_margin_mm": (5, 200),
}


@dataclass(frozen=True)
class SegmentationConfig:
    """Parameters of the engine's cement segmentation.

    Attributes
    ----------
    cement_contrast : float
        Least rise of attenuation over the pre-injection baseline that is cement
        (log-intensity units, dimensionless).
    min_area_px : int
        A new blob away from the cement so far must be this large, px: the first cement
        counts at once, later blobs from half this size when seen in two frames in a row.
        Attenuation that fell below the baseline over a blob this large makes a frame
        ``baseline_mismatch`` (cement only adds attenuation).
    baseline_frames_max : int
        Most frames the automatic pre-injection baseline may use.
    baseline_frames_min : int
        Pre-injection frames a baseline should average. Cement is looked for from the
        second usable frame on (a frame with cement must not join the baseline); when it
        shows against fewer frames than this (a run that begins as the injection does, or
        whose frames between could not be used), the baseline is those, and a warning says
        so.
    display_log_range : float
        Attenuation (natural-log units) that the full stored pixel range spans when frames
        are stored log-encoded, as fluoroscopy systems (and the phantom) store them; 0 for
        frames linear in the detected intensity. The phantom's range spans 7 units, so on
        it the engine's attenuation is 11/7 of the line integral and every contrast
        threshold here is in those units (0.15 is about 0.3 mm of cement).
    median_px : int
        Median filter (1, 3 or 5 px square) of the excess attenuation before
        thresholding: less noise, cement edges kept in place.
    leak_median_px : {0, 1, 3, 5}
        Beyond the body's outline, the excess through a median this wide (px), without the
        recursive filter, may extend the cement too, above its own noise: a leak's first
        cement is a channel a pixel or two wide that a wider median or the recursive filter
        (chosen for the cement cloud inside) erases in its first frames. 0: not used;
        unused too when the study's own filter is no wider.
    max_smooth_px : float
        Widest Gaussian added after the median when the study's noise needs it (the
        engine picks the narrowest that leaves the cement contrast ``min_snr`` times the
        measured noise), px, at most 20.
    smooth_px : float
        Gaussian smoothing of the baseline before its edge strength is taken, px, at most 20.
    min_temporal_alpha : float
        Strongest recursive (EMA) filter of the excess the engine may choose when the
        study is noisy: the weight of the newest frame, (0, 1]; 1 forbids temporal
        filtering (which delays thin cement by a frame or two).
    growth_contrast_ratio : float
        Next to the cement so far, pixels with at least this fraction of
        ``cement_contrast`` count as cement (the advancing front is thin), (0, 1].
    bridge_contrast_ratio : float
        Cement next to the cement so far joins it across pixels with at least this
        fraction of ``cement_contrast`` (those pixels themselves do not count), (0, 1].
    bridge_edge_share : float
        The share of the steep-edge threshold raise that those bridging pixels take away
        from the needle, [0, 1] (near the needle they take all of it): a leak's first
        cement beyond the cortex joins the body's cement across the cortex's edge at once
        instead of waiting a second frame as a new blob.
    min_run : int
        Frames in a row a pixel must look like cement before it counts (then it stays).
    field_margin_px : int
        Margin inside the edge of the exposed field that is never cement, px, at most 100.
    registration_error_px : float
        Residual misregistration assumed on steep baseline edges; the cement threshold
        rises by this times the baseline gradient there, px, at most 5.
    min_local_snr : float
        Where the image is noisier than the cement contrast allows (the steel needle's
        shadow lets few quanta through), the threshold rises toward this many times the
        local noise of one spatially filtered frame, measured per attenuation level on
        the pre-injection frames: by the amount that exceeds the cement contrast, times
        the share of that noise the recursive (temporal) filter keeps; without that
        filter, to exactly this many times the noise (dimensionless).
    registration_body_margin_mm : float
        Motion is measured on bone at least this far from the vertebral body (where
        cement and leaks appear), mm. Farther bone is mostly the insides of the
        neighbouring vertebrae, too few edges to fix the motion: at 12 mm the phantom's
        motion was measured up to 0.7 px wrong (AP and collimated lateral views), at 6 mm
        up to 0.32 px.
    registration_margin_mm : float
        Largest motion followed; motion is measured this far inside the field's edge, mm.
    registration_grid_mm : float
        Motion is measured on means of pixel blocks about this wide (whole blocks of
        2, 3, ... px when the pixels are smaller): the bone edges it follows are
        coarser, and the fit stays sub-pixel at the frame's own pixel size, mm, at most 5.
    leak_search_margin_mm : float
        Cement is looked for in the vertebral body and this far around it (and the
        whole field when the body is unknown): cement farther out is not seen, mm, 5-200.
    adjacent_blob_mm : float
        A new cement-sized blob (``min_area_px``) this close to the cement so far counts in
        its first frame; farther away a new blob must be seen in two frames in a row, with a
        quarter of it above sharp bone's misregistration residual (see ``sharp_edge_margin_mm``). Cement
        crossing a cortex (a leak's first frame through an endplate) shows beyond it before
        the threshold the cortex's steep edges raise lets the join through; 0: never, mm.
    sharp_edge_margin_mm : float
        Farther than this from the body, the steep-edge raise is at least what moving the
        baseline by ``registration_error_px`` changes after the denoiser's filter. The
        smoothed gradient underestimates that up to twofold where a median keeps bone
        sharp (a neighbouring vertebra's endplate), and a sub-pixel breathing offset then
        leaves false cement there. Nearer the body the smoothed gradient's raise alone:
        a leak's first cement crosses the body's own cortex (a new blob farther than
        ``adjacent_blob_mm`` from the cement needs a quarter of it above the residual
        anywhere), mm.
    needle_min_excess : float
        In the baseline, what rises this much over its local background is the steel
        needle (bone edges rise far less): new cement may not start on it nor bridge along
        it, attenuation units.
    needle_margin_px : int
        The needle found so is widened by this much: its edges flicker with every breath
        and are not taken for cement, px, at most 100.
    display_gain_tolerance : float
        A frame whose bone shows a contrast more than this fraction away from the
        baseline's (a change of the display's gain or window: dense bone would read as
        cement) is read at the baseline's contrast, its attenuation divided by its gain
        (over the gain the frames averaged into the baseline read on it); within it the
        gain is left at 1 (the phantom's noise moves it by up to 0.021), dimensionless, at
        most 1.
    display_gain_kept_tolerance : float
        A gain more than this fraction from 1, on the same side, in a frame and the frame
        before it (against the same reference) is a display changed and kept: it is taken
        out as one past ``display_gain_tolerance`` is (the phantom's noise moved the gain of
        two frames running by up to 0.016), dimensionless, at most
        ``display_gain_tolerance``.
    """

    cement_contrast: float = 0.15
    min_area_px: int = 20
    baseline_frames_max: int = 10
    baseline_frames_min: int = 3
    display_log_range: float = 11.0
    median_px: int = 3
    leak_median_px: int = 3
    max_smooth_px: float = 4.0
    smooth_px: float = 1.0
    min_temporal_alpha: float = 0.25
    growth_contrast_ratio: float = 0.8
    bridge_contrast_ratio: float = 0.5
    bridge_edge_share: float = 0.0
    min_run: int = 1
    field_margin_px: int = 6
    needle_min_excess: float = 1.0
    needle_margin_px: int = 2
    registration_error_px: float = 0.3
    min_local_snr: float = 4.0
    registration_body_margin_mm: float = 6.0
    registration_margin_mm: float = 15.0
    registration_grid_mm: float = 0.5
    leak_search_margin_mm: float = 30.0
    adjacent_blob_mm: float = 2.0
    sharp_edge_margin_mm: float = 2.0
    display_gain_tolerance: float = 0.05
    display_gain_kept_tolerance: float = 0.03

    def __post_init__(self):
        _check_numbers(self, _SEGMENTATION_RANGES, positive=("min_temporal_alpha", "growth_contrast_ratio",
                                                             "bridge_contrast_ratio", "cement_contrast",
                                                             "min_local_snr"))
        if not 1 <= self.baseline_frames_min <= self.baseline_frames_max:
            raise ArgumentError(
                f"need 1 <= `baseline_frames_min` <= `baseline_frames_max`; got "
                f"{self.baseline_frames_min!r}, {self.baseline_frames_max!r}"
            )
        if self.display_gain_kept_tolerance > self.display_gain_tolerance:
            raise ArgumentError(
                f"need `display_gain_kept_tolerance` <= `display_gain_tolerance`; got "
                f"{self.display_gain_kept_tolerance!r}, {self.display_gain_tolerance!r}"
            )
        if self.median_px not in (1, 3, 5):
            raise ArgumentError(f"`median_px` must be 1, 3 or 5; got {self.median_px!r}")
        if self.leak_median_px not in (0, 1, 3, 5):
            raise ArgumentError(f"`leak_median_px` must be 0, 1, 3 or 5; got {self.leak_median_px!r}")


_RELIABILITY_RANGES = {
    "max_saturated_fraction": (0, 1),
    "max_outlier_rise": (0, 1),
    "min_registration_score": (-1, 1),
    "max_magnification_change": (0, 1),
    "collimator_min_edge_share": (0, 1),
    "min_stop_px": (0, 20),
}


@dataclass(frozen=True)
class ReliabilityConfig:
    """When a frame is ``unreliable``.

    Attributes
    ----------
    max_motion_mm : float
        Larger motion since the frame before (a sudden jump), mm.
    min_snr : float
        Lower contrast-to-noise of the cement region, dimensionless.
    max_saturated_fraction : float
        Larger fraction of saturated or empty pixels in the field of view, 0..1.
    max_outlier_rise : float
        Larger rise, over the pre-injection frames' median, of the share of the bone's
        pixels (those motion is measured on) that stand more than 10 noise standard
        deviations out of their 3 x 3 neighbourhood (``image_artefacts``): corrupt pixel
        data (bytes out of place, a garbled tile) or a sharp new object in the field. The
        phantom's anatomy gives a share of 0.1-1.5 %, and over 90 of its runs (every
        scenario; low and high dose, tilt, MONOCHROME1, collimation, exposure changes,
        needle withdrawal) no frame rose by more than 0.25 points; a frame whose low bytes
        were shifted by a pixel rose by 8. Checked only with the body's corners (else the
        bone holds the body and its cement), 0..1.
    min_registration_score : float
        Lower correlation of the motion-compensated frame with the baseline over the
        bone it is registered on (the motion is not explained), -1..1.
    max_magnification_change : float
        Larger magnification of a frame against the baseline, along its rows and its columns
        alike (a zoom mode, the detector or the table moved: ``magnification_changed``), as
        a fraction (0.005: half a per cent). The registration measures translations only;
        a frame whose score falls is fitted an affine motion (see ``vpimage.engine._registration``,
        ``Registration.magnified``), 0..1.
    blind_threshold_ratio : float
        Pixels whose cement threshold the image's noise or edges raise by at least this
        many times the cement contrast are blind: thin cement there goes unseen (the
        steel needle's shadow), dimensionless.
    hidden_front_reach_mm : float
        How far cement may run unseen into blind pixels beyond the cement seen, mm. When
        such cement could lie within ``alerts.stop_mm`` of the posterior wall, a frame
        whose front seen is within ``alerts.hidden_stop_mm`` stops, and one that would not
        ``stop`` otherwise warns if it meets ``warn`` (with ``front_hidden`` after the
        reasons), else is unreliable (``front_hidden``).
    collimator_min_step : float
        Rise of attenuation over the reference that marks a collimator blade closed in
        during the run (or anything else entering the beam from the field's edge), on the
        blocks motion is measured on; a lead blade lets a few per cent of the quanta
        through (about 3.5), bone moving in at the field's edge darkens it by about 1 (dense
        bone from where the reference did not show it, such as the next vertebra's
        endplate, by up to 3: taken for a blade), attenuation units.
    collimator_min_edge_share : float
        Share of the field's edge (a band three blocks wide) that must darken by
        ``collimator_min_step`` before a frame is searched for blades, 0..1.
    collimator_clearance_mm : float
        A frame whose blades (penumbra included) come within this of the vertebral body is
        unreliable (``body_collimated``): cement at the wall or leaving the body could be
        under them, mm.
    min_stop_px : float
        The stop distance (``alerts.stop_mm``) must span at least this many pixels at the
        study's pixel size; with larger pixels every frame carries the doubt
        ``pixels_too_coarse`` (the front is placed to a pixel, and may lie up to a pixel
        nearer the wall than it reads), px, at most 20; 0 never.
    """

    max_motion_mm: float = 5.0
    min_snr: float = 3.0
    max_saturated_fraction: float = 0.2
    max_outlier_rise: float = 0.02
    min_registration_score: float = 0.5
    max_magnification_change: float = 0.005
    blind_threshold_ratio: float = 1.0
    hidden_front_reach_mm: float = 3.0
    collimator_min_step: float = 1.5
    collimator_min_edge_share: float = 0.05
    collimator_clearance_mm: float = 5.0
    min_stop_px: float = 2.0

    def __post_init__(self):
        _check_numbers(self, _RELIABILITY_RANGES, positive=("collimator_min_step",))


@dataclass(frozen=True)
class SpeedConfig:
    """The front speed estimate.

    Attributes
    ----------
    window_s : float
        Sliding window of the robust (Theil-Sen) slope of front_to_wall_mm, s; at most
        the last 64 frames of it (:class:`vpimage.measures.FrontSpeedEstimator`).
    """

    window_s: float = 1.0

    def __post_init__(self):
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise ArgumentError(f"`window_s` must be a finite number > 0; got {self.window_s!r}")


# Larger integers do not become floats (an OverflowError, deep in a check); no threshold needs them.
_LARGEST_INTEGER = 2**53

# TOML section -> its dataclass, in the order of RunConfig's fields.
_SECTIONS = {
    "alerts": AlertThresholds,
    "leaks": LeakRules,
    "segmentation": SegmentationConfig,
    "reliability": ReliabilityConfig,
    "speed": SpeedConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """Every threshold of one analysis, validated; build it with :meth:`from_toml`,
    :meth:`from_mapping` or :meth:`defaults`, change it with :meth:`with_overrides`.

    Raises
    ------
    ConfigError
        A section is not of its type.
    """

    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    leaks: LeakRules = field(default_factory=LeakRules)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    reliability: ReliabilityConfig = field(default_factory=ReliabilityConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)

    def __post_init__(self):
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"[{name}] must be a {kind.__name__}; got {type(getattr(self, name)).__name__}")

    @classmethod
    def defaults(cls) -> "RunConfig":
        """The configuration of CONTRACT.md's defaults."""
        return cls()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "configuration") -> "RunConfig":
        """Build from nested ``{section: {key: value}}`` (a parsed TOML document).

        Parameters
        ----------
        data : mapping
            Sections and keys to set; the rest keep their defaults.
        source : str
            Where ``data`` came from, for error messages (e.g. the file name).

        Raises
        ------
        ConfigError
            An unknown section or key, a value of the wrong type, or one out of range;
            the message names ``source`` and the key.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: must be a table of sections; got {type(data).__name__}")
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise ConfigError(f"{source}: unknown section [{unknown[0]}]; known: {', '.join(_SECTIONS)}")
        return cls(**{name: _build_section(name, data.get(name, {}), source) for name in _SECTIONS})

    @classmethod
    def from_toml(cls, path: str | PathLike, overrides: Mapping[str, Any] | None = None) -> "RunConfig":
        """Read a TOML file, then apply ``overrides`` (see :meth:`with_overrides`).

        Raises
        ------
        ConfigError
            The file cannot be read or parsed, or a key or value is bad (the message names
            the file and the key).
        """
        path = path_argument(path)  # (an int would be read as an open file descriptor)
        try:
            with open(path, "rb") as stream:
                text = stream.read()
            # (A UTF-8 byte-order mark, as Windows editors write, is no TOML: it is dropped.)
            data = tomllib.loads(text.removeprefix(codecs.BOM_UTF8).decode("utf-8"))
        except OSError as error:
            raise ConfigError(f"{path}: cannot read configuration: {error.strerror or error}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        config = cls.from_mapping(data, source=str(path))
        return config.with_overrides(overrides) if overrides else config

    def with_overrides(self, overrides: Mapping[str, Any]) -> "RunConfig":
        """A copy with dotted keys replaced: ``{"alerts.hold_s": 1.0,
        "alerts.leak_levels.disc_superior": "warn"}`` (command-line flags).

        Raises
        ------
        ConfigError
            ``overrides`` is no mapping of dotted names, or an unknown key or a bad value.
        """
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"overrides: must be a mapping of dotted keys to values; got {type(overrides).__name__}")
        data = self.to_dict()
        for dotted, value in overrides.items():
            if not isinstance(dotted, str):
                raise ConfigError(f"overrides: a key must be a dotted name like 'alerts.hold_s'; got {dotted!r}")
            *parents, key = dotted.split(".")
            table = data
            for part in parents:
                if not isinstance(table.get(part), dict):
                    raise ConfigError(f"override {dotted}: unknown key {part!r}")
                table = table[part]
            table[key] = value
        return RunConfig.from_mapping(data, source="overrides")

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain ``{section: {key: value}}``, as :meth:`from_mapping` reads it."""
        data = {}
        for name in _SECTIONS:
            section = dataclasses.asdict(getattr(self, name)) if name != "alerts" else _alerts_dict(self.alerts)
            data[name] = section
        return data

    def to_toml(self) -> str:
        """The configuration as a TOML document that :meth:`from_toml` reads back."""
        lines: list[str] = []
        for name, section in self.to_dict().items():
            tables = {key: value for key, value in section.items() if isinstance(value, dict)}
            lines.append(f"[{name}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in section.items() if key not in tables]
            for key, table in tables.items():
                lines.append(f"[{name}.{key}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            lines.append("")
        return "\n".join(lines)


def _alerts_dict(alerts: AlertThresholds) -> dict[str, Any]:
    data = {f.name: getattr(alerts, f.name) for f in dataclasses.fields(alerts)}
    data["leak_levels"] = {name: AlertLevel(level).value for name, level in alerts.leak_levels.items()}
    return data


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _build_section(name: str, values: Any, source: str):
    kind = _SECTIONS[name]
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: [{name}] must be a table; got {type(values).__name__}")
    defaults = kind()
    fields = {f.name for f in dataclasses.fields(kind)}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown key {name}.{key}; known: {', '.join(sorted(fields))}")
        _check_type(f"{name}.{key}", getattr(defaults, key), value, source)
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: [{name}] {error}") from None


def _check_type(key: str, default: Any, value: Any, source: str) -> None:
    """A value must have its default's type (an int is welcome where a float is expected)."""
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, Mapping):
        ok, expected = isinstance(value, Mapping), "a table"
    else:
        ok, expected = isinstance(value, type(default)), f"a {type(default).__name__}"
    if ok and isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST_INTEGER:
        ok, expected = False, f"{expected} of at most {_LARGEST_INTEGER:.3g} in size"  # (TOML integers have no bound)
    if not ok:
        raise ConfigError(f"{source}: {key} must be {expected}; got {value!r}")
