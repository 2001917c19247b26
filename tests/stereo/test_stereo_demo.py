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
