"""`stereo-snn simulate --preset`: native sizes in the right file layout, read back by the
project's DSEC / MVSEC readers; settings out of bounds refused with one line."""

from __future__ import annotations

import numpy as np
import pytest

from stereo_snn.cli import main
from stereo_snn.errors import ConfigError
from stereo_snn.events import DSECSequence
from stereo_snn.events.mvsec import MVSECRecording
from stereo_snn.events.simulator import PRESETS, SimConfig, load_preset


def test_presets_hold_native_sizes_and_layouts():
    assert set(PRESETS) >= {"dsec", "mvsec"}
    fmt, dsec = load_preset("dsec")
    assert fmt == "dsec" and (dsec["height"], dsec["width"]) == (480, 640) and 120 <= dsec["max_disparity"] <= 128
    fmt, mvsec = load_preset("mvsec")
    assert fmt == "mvsec" and (mvsec["height"], mvsec["width"]) == (260, 346) and 60 <= mvsec["max_disparity"] <= 64
    with pytest.raises(ConfigError, match="moon"):
        load_preset("moon")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_config(name):
    SimConfig.from_dict(load_preset(name)[1])


def test_dsec_preset_writes_a_native_dsec_sequence(tmp_path, capsys):
    out = tmp_path / "d"
    assert (
        main(
            [
                "simulate",
                "--preset",
                "dsec",
                "--out",
                str(out),
                "--duration-ms",
                "12",
                "--seed",
                "3",
                "--objects",
                "4",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "640x480" in capsys.readouterr().out
    with DSECSequence(out / "sim") as seq:
        assert (seq.height, seq.width) == (480, 640)
        gt = seq.disparity(0)
        assert gt.shape == (480, 640) and 0 < gt.max() <= 126.0
        assert seq.calibration.fx == pytest.approx(569.0) and seq.calibration.baseline_m == pytest.approx(0.6)
        ev = seq.events("left", 0, 12_001, rectify=False)
        assert len(ev) > 1000 and ev.x.max() < 640 and ev.y.max() < 480


def test_mvsec_preset_writes_native_mvsec_files_and_flags_override(tmp_path):
    out = tmp_path / "m"
    assert (
        main(
            [
                "simulate",
                "--preset",
                "mvsec",
                "--out",
                str(out),
                "--duration-ms",
                "12",
                "--seed",
                "1",
                "--objects",
                "4",
                "--max-disparity",
                "40",
                "--no-progress",
            ]
        )
        == 0
    )
    folder = out / "sim"
    assert (folder / "sim_data.hdf5").is_file() and (folder / "sim_left_x_map.txt").is_file()
    rec = MVSECRecording(folder / "sim_data.hdf5", folder / "sim_gt.hdf5", maps_dir=folder)
    try:
        assert rec.sensor_size == (260, 346) and rec.rectify_map("left").shape == (260, 346, 2)
        gt = rec.disparity(0)
        assert gt.shape == (260, 346) and 0 < np.nanmax(gt) <= 40.0 + 1e-3
        assert rec.focal_baseline == pytest.approx(226.0 * 0.1)
    finally:
        rec.close()


@pytest.mark.parametrize(
    "extra, word",
    [
        (["--noise-rate", "1e9"], "noise_rate_hz"),
        (["--fx", "inf"], "fx"),
        (["--fx", "nan"], "fx"),
        (["--seed", "-1"], "seed"),
        (["--hot-pixels", "0.5"], "hot_pixel_fraction"),
        (["--hot-pixel-rate", "1e7"], "hot_pixel_rate_hz"),
        (["--duration-ms", "1e12"], "duration_ms"),
        (["--render-rate", "fast"], "render_rate_hz"),
        (["--width", "100000"], "width"),
        (["--objects", "5000"], "num_objects"),
        (["--thin-fraction", "2"], "thin_fraction"),
        (["--layouts", "moon"], "moon"),
        (["--motions", ""], "motions"),
        (["--preset", "kitti"], "kitti"),
    ],
)
def test_out_of_bounds_settings_are_refused_in_one_line(tmp_path, capsys, extra, word):
    assert main(["simulate", "--no-progress", "--out", str(tmp_path / "x"), *extra]) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
