"""Evaluation: per-image DSEC metrics averaged, SGBM beside them on the same windows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stereo_snn.errors import ConfigError
from stereo_snn.stereo.data import open_sources
from stereo_snn.stereo.evaluate import evaluate_sources, results_table
from stereo_snn.stereo.infer import Predictor
from stereo_snn.stereo.metrics import dsec_metrics
from stereo_snn.stereo.network import load_model


def test_evaluate_with_sgbm_baseline(trained_run, sim_root, tmp_path):
    loaded = load_model(trained_run / "checkpoints" / "best.pt")
    predictor = Predictor(loaded.model, loaded.config, "cpu")
    sources = open_sources(sim_root)[2:]
    out = tmp_path / "metrics.json"
    result = evaluate_sources(predictor, sources, baseline="sgbm", out_json=out, progress=False, log=lambda s: None)
    assert json.loads(out.read_text())["methods"] == json.loads(json.dumps(result["methods"]))
    assert set(result["methods"]) == {"snn", "sgbm"} and result["kind"] == "dsec"
    src = sources[0]
    n = len([e for e in src.entries() if e.t_us - predictor.window_us >= src.time_range_us()[0]])
    assert len(result["per_image"]) + len(result["skipped"]) == len(src.entries()) and len(result["per_image"]) == n
    # the mean is the mean of the per-image values, which are the metric functions' own values
    row = result["per_image"][0]
    entry = next(e for e in src.entries() if e.index == row["index"])
    left, right = predictor.window(src, entry)
    pred = predictor.predict_events(left, right, src.height, src.width)
    assert row["snn"]["mae"] == pytest.approx(dsec_metrics(pred, src.disparity(entry))["mae"], rel=1e-6)
    for method in ("snn", "sgbm"):
        assert result["methods"][method]["mae"] == pytest.approx(np.mean([r[method]["mae"] for r in result["per_image"]]))
    table = results_table(result)
    assert "SNN" in table and "SGBM" in table and "MAE" in table
    with pytest.raises(ConfigError, match="baseline"):
        evaluate_sources(predictor, sources, baseline="bm", progress=False)


def test_evaluate_mvsec_recording(trained_run, tmp_path):
    from stereo_snn.events.mvsec import write_mvsec_recording
    from stereo_snn.events.simulator import SimConfig, simulate_stereo
    from stereo_snn.stereo.data import open_source

    rec = simulate_stereo(SimConfig.from_dict({"name": "sim_flying1", "height": 48, "width": 64,
                                               "duration_ms": 260.0, "seed": 31}))
    data = write_mvsec_recording(rec, tmp_path, "sim_flying")
    src = open_source(data)
    assert (src.height, src.width) == (48, 64) and src.focal_baseline == pytest.approx(rec.focal_baseline)
    loaded = load_model(trained_run / "checkpoints" / "best.pt")
    predictor = Predictor(loaded.model, loaded.config, "cpu")
    result = evaluate_sources(predictor, [src], progress=False, log=lambda s: None)
    assert result["kind"] == "mvsec" and result["per_image"]
    snn = result["methods"]["snn"]
    assert {"mean_depth_error_m", "one_pixel_accuracy", "mean_disparity_error"} <= set(snn)
    assert 0 <= snn["one_pixel_accuracy"] <= 100 and snn["mean_depth_error_m"] >= 0
