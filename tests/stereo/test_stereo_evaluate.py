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
