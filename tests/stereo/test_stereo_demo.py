"""The demo end to end on a tiny setting: PNGs, the side-by-side picture, metrics, energy."""

from __future__ import annotations

import json

import cv2

from stereo_snn.cli import main


def test_demo_runs_end_to_end(trained_run, tmp_path, capsys):
    ckpt = str(trained_run / "checkpoints" / "best.pt")
    out = tmp_path / "demo"
    assert main(["demo", "--checkpoint", ckpt, "--out", str(out), "--duration-ms", "300", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "SGBM" in printed and "ANN twin" in printed and "near MAE" in printed and "edge MAE" in printed
    assert "skipped 1 (window before the first event)" in printed and "outside the recording" not in printed
    pngs = sorted((out / "disparity").glob("*/*.png"))
    assert pngs and cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED).shape == (48, 64)  # the model's training size
    picture = cv2.imread(str(out / "demo.png"))
    assert picture is not None and picture.shape[1] > picture.shape[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["methods"]["snn"]["mae"] is not None and metrics["methods"]["sgbm"]["mae"] is not None
    assert metrics["methods"]["snn"]["near_mae"] is not None
    energy = json.loads((out / "energy.json").read_text())
    assert energy["ratio_compute"] > 1


def test_demo_sequence_with_a_preset_is_a_realistic_scene_at_the_models_size(tmp_path):
    from stereo_snn.stereo.data import DSECSource
    from stereo_snn.stereo.demo import _demo_sequence, error_scale

    seq = _demo_sequence(tmp_path, seed=7, size=(260, 346), duration_ms=150.0, progress=False, preset="mvsec")
    source = DSECSource(seq)  # the demo writes the DSEC layout whatever the preset's own format
    assert (source.height, source.width) == (260, 346)
    assert abs(source.focal_baseline - 226.0 * 0.1) < 1e-3  # the mvsec preset's camera, not the defaults
    gt = source.disparity(source.entries()[-1])
    assert gt.shape == (260, 346) and 0 < gt.max() <= 63.0  # the preset's disparity range
    assert _demo_sequence(tmp_path, seed=7, size=(260, 346), duration_ms=150.0, progress=False, preset="mvsec") == seq
    assert error_scale(gt + 3.0, gt) == 3.0 and error_scale(gt, gt * 0) == 1.0
