"""RunConfig: defaults, TOML round trip, overrides, and errors that name the key."""

import pytest

from vpimage.alerts import AlertLevel, AlertThresholds
from vpimage.config import ReliabilityConfig, RunConfig, SegmentationConfig, SpeedConfig
from vpimage.errors import ArgumentError, ConfigError
from vpimage.measures import LeakRules


def test_defaults_are_the_contract():
    config = RunConfig.defaults()
    assert config.alerts == AlertThresholds()
    assert (config.alerts.warn_mm, config.alerts.stop_mm, config.alerts.hold_s) == (5.0, 2.0, 0.5)
    assert config.leaks == LeakRules() and config.speed == SpeedConfig()


def test_partial_file_keeps_defaults(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[alerts]\nwarn_mm = 6\n[alerts.leak_levels]\ndisc_superior = "warn"\n[segmentation]\nmin_area_px = 5\n')
    config = RunConfig.from_toml(path)
    assert config.alerts.warn_mm == 6.0 and isinstance(config.alerts.warn_mm, float)
    assert config.alerts.stop_mm == 2.0
    assert config.alerts.leak_levels["disc_superior"] is AlertLevel.WARN
    assert config.alerts.leak_levels["posterior"] is AlertLevel.STOP
    assert config.segmentation == SegmentationConfig(min_area_px=5)


def test_round_trip_through_toml(tmp_path):
    config = RunConfig(
        alerts=AlertThresholds(warn_mm=4.5, stop_mm=1.5, hold_s=1.0, leak_levels={"disc_inferior": "ok"}),
        leaks=LeakRules(margin_mm=0.25),
        segmentation=SegmentationConfig(cement_contrast=0.2, min_area_px=12),
        reliability=ReliabilityConfig(max_motion_mm=2.0),
        speed=SpeedConfig(window_s=0.75),
    )
    path = tmp_path / "round.toml"
    path.write_text(config.to_toml())
    assert RunConfig.from_toml(path) == config
    assert RunConfig.from_mapping(config.to_dict()) == config


def test_overrides_apply_after_file(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text("[alerts]\nhold_s = 1.0\nwarn_mm = 6.0\n")
    config = RunConfig.from_toml(path, {"alerts.hold_s": 0.25, "alerts.leak_levels.venous": "warn"})
    assert config.alerts.hold_s == 0.25 and config.alerts.warn_mm == 6.0
    assert config.alerts.leak_levels["venous"] is AlertLevel.WARN
    with pytest.raises(ConfigError, match="bogus"):
        config.with_overrides({"bogus.hold_s": 1})
    with pytest.raises(ConfigError, match="alerts.hold"):
        config.with_overrides({"alerts.hold": 1})


@pytest.mark.parametrize("overrides", [None, [("alerts.hold_s", 1.0)], {5: 1.0}])
def test_overrides_that_are_no_mapping_of_dotted_names_are_refused(overrides):
    with pytest.raises(ConfigError, match="overrides: "):
        RunConfig.defaults().with_overrides(overrides)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[alerts]\nwarn_m = 5.0\n", "unknown key alerts.warn_m"),
        ("[alert]\nwarn_mm = 5.0\n", r"unknown section \[alert\]"),
        ('[alerts]\nwarn_mm = "five"\n', "alerts.warn_mm must be a number"),
        ("[alerts]\nwarn_mm = true\n", "alerts.warn_mm must be a number"),
        ("[segmentation]\nmin_area_px = 2.5\n", "segmentation.min_area_px must be an integer"),
        ("[alerts]\nwarn_mm = 1.0\n", "warn_mm"),  # below stop_mm
        ("[alerts]\nhold_s = -1\n", "hold_s"),
        ('[alerts.leak_levels]\nspinal = "stop"\n', "spinal"),
        ('[alerts.leak_levels]\nvenous = "maybe"\n', "venous"),
        ("[speed]\nwindow_s = 0\n", "window_s"),
        ("[reliability]\nmax_saturated_fraction = 2.0\n", "max_saturated_fraction"),
        ("[reliability]\ncollimator_min_edge_share = 1.5\n", "collimator_min_edge_share"),
        ("[reliability]\ncollimator_min_step = 0\n", "collimator_min_step"),
        ("[leaks]\nmin_area_mm2 = -1.0\n", "min_area_mm2"),
        ("[segmentation]\nbridge_edge_share = 1.5\n", "bridge_edge_share"),
        ("[segmentation]\nleak_median_px = 2\n", "leak_median_px"),
        # Past what any frame holds: each once crashed inside OpenCV or the block means.
        ("[segmentation]\nsmooth_px = 1e9\n", r"`smooth_px` must be a finite number in \[0, 20\]"),
        ("[segmentation]\nregistration_grid_mm = 1e9\n", r"`registration_grid_mm` must be .* in \[0, 5\]"),
        ("[segmentation]\nregistration_error_px = 1e300\n", "registration_error_px"),
        ("[segmentation]\nfield_margin_px = 100000\n", r"field_margin_px` must be .* in \[0, 100\]"),
        ("[segmentation]\nneedle_margin_px = 1000000000\n", "needle_margin_px"),
        # A length past a metre: each of these overflowed when turned into pixels (OverflowError, exit 1).
        ("[segmentation]\nregistration_margin_mm = 1e308\n", r"`registration_margin_mm` must be .* in \[0, 1000\]"),
        ("[segmentation]\nadjacent_blob_mm = 1e308\n", r"`adjacent_blob_mm` must be .* in \[0, 1000\]"),
        ("[reliability]\nhidden_front_reach_mm = 1e308\n", r"`hidden_front_reach_mm` must be .* in \[0, 1000\]"),
        # The documented ranges of the ratios: (0, 1].
        ("[segmentation]\ngrowth_contrast_ratio = 5\n", r"`growth_contrast_ratio` must be .* in \(0, 1\]"),
        ("[segmentation]\nbridge_contrast_ratio = 0\n", r"`bridge_contrast_ratio` must be .* in \(0, 1\]"),
        ("[reliability]\nmin_registration_score = 2\n", r"in \[-1, 1\]"),
        # A gain kept over two frames is taken out within the single frame's tolerance, not beyond it.
        ("[segmentation]\ndisplay_gain_kept_tolerance = 0.06\n", "`display_gain_kept_tolerance` <= `display_gain_tolerance`"),
        ("[alerts]\nwarn_mm = 1" + "0" * 400 + "\n", "alerts.warn_mm must be a number of at most 9.01e\\+15 in size"),
        ("[segmentation]\nmin_area_px = -1" + "0" * 30 + "\n", "segmentation.min_area_px must be an integer of at most"),
        ("alerts = 3\n", r"\[alerts\] must be a table"),
        ("[alerts\n", "not valid TOML"),
    ],
)
def test_bad_file_raises_config_error_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        RunConfig.from_toml(path)
    assert str(path) in str(info.value)


def test_a_negative_registration_score_is_in_its_documented_range():
    # A correlation runs from -1 to 1: a site may accept any motion fit at all.
    config = RunConfig.defaults().with_overrides({"reliability.min_registration_score": -0.5})
    assert config.reliability.min_registration_score == -0.5


def test_a_file_not_in_utf8_raises_config_error_naming_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# r\xe9glages\n[alerts]\nwarn_mm = 6.0\n")  # TOML is UTF-8
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        RunConfig.from_toml(path)
    assert str(path) in str(info.value)


def test_config_pickles_for_worker_processes():
    import pickle

    config = RunConfig.defaults().with_overrides({"alerts.leak_levels.disc_superior": "warn"})
    assert pickle.loads(pickle.dumps(config)) == config


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        RunConfig.from_toml(tmp_path / "absent.toml")


def test_section_type_checked():
    with pytest.raises(ConfigError, match=r"\[alerts\]"):
        RunConfig(alerts={"warn_mm": 5.0})


@pytest.mark.parametrize(("key", "value", "where"), [
    # Each value in [0, inf) was accepted, and on posterior_approach every frame then read ok
    # where the truth stops: no cement could ever count.
    ("cement_contrast", 5.0, r"\(0, 1\]"),
    ("cement_contrast", 0.0, r"\(0, 1\]"),
    ("min_local_snr", 1e9, r"\(0, 20\]"),
    ("display_log_range", 1e9, r"\[0, 20\]"),
    ("min_area_px", 100000, r"\[0, 2000\]"),
    ("min_run", 100, r"\[1, 30\]"),
    ("baseline_frames_max", 640, r"\[1, 300\]"),
])
def test_a_segmentation_value_past_which_no_cement_counts_is_refused(tmp_path, key, value, where):
    path = tmp_path / "blind.toml"
    path.write_text(f"[segmentation]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=f"`{key}` must be a finite number in {where}; got {value}") as info:
        RunConfig.from_toml(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("text", "words"), [
    # On venous_leak each read every frame ok: the leak was never looked for, or never counted.
    ("[segmentation]\nleak_search_margin_mm = 0.0\n", r"`leak_search_margin_mm` must be a finite number in \[5, 200\]"),
    ("[leaks]\nmargin_mm = 1e6\n", r"`margin_mm` must be a finite number in \[0, 5\] mm"),
    ("[leaks]\nautomatic_corner_margin_mm = 50\n", r"`automatic_corner_margin_mm` must be a finite number in \[0, 5\]"),
])
def test_a_leak_setting_past_which_no_leak_counts_is_refused(tmp_path, text, words):
    path = tmp_path / "blind.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        RunConfig.from_toml(path)


def test_the_ceilings_themselves_are_read():
    ceilings = {"cement_contrast": 1.0, "min_local_snr": 20.0, "display_log_range": 20.0, "min_area_px": 2000,
                "min_run": 30, "baseline_frames_max": 300}
    config = RunConfig.defaults().with_overrides({f"segmentation.{k}": v for k, v in ceilings.items()})
    assert {k: getattr(config.segmentation, k) for k in ceilings} == ceilings
    reach = RunConfig.defaults().with_overrides({"reliability.hidden_front_reach_mm": 1000.0}).reliability
    assert reach.hidden_front_reach_mm == 1000.0  # (a length's ceiling, a metre)


def test_a_file_with_a_utf8_byte_order_mark_is_read(tmp_path):
    # As Windows editors save it; it was refused as "Invalid statement (at line 1, column 1)".
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[alerts]\nwarn_mm = 6.0\n")
    assert RunConfig.from_toml(path).alerts.warn_mm == 6.0


@pytest.mark.parametrize("value", [3, None])
def test_a_config_path_that_is_no_path_is_refused(value):
    # 3 was opened as file descriptor 3 (whatever that was), and then closed.
    with pytest.raises(ArgumentError, match="`path` must be a str or PathLike"):
        RunConfig.from_toml(value)
