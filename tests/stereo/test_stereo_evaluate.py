"""Evaluation: per-image DSEC metrics averaged, SGBM beside them on the same windows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stereo_snn.errors import ConfigError
from stereo_snn.stereo.data import open_sources
from stereo_snn.stereo.evaluate import evaluate_sources, results_table
from stereo_snn.stereo.infer import Predictor
from stereo_snn.stereo.metrics import Regions, dsec_metrics, region_metrics
from stereo_snn.stereo.network import load_model


def test_evaluate_with_sgbm_baseline(trained_run, sim_root, tmp_path):
    loaded = load_model(trained_run / "checkpoints" / "best.pt")
    predictor = Predictor(loaded.model, loaded.config, "cpu")
    sources = open_sources(sim_root)[2:]
    out = tmp_path / "metrics.json"
    messages: list[str] = []
    result = evaluate_sources(predictor, sources, baseline="sgbm", out_json=out, progress=False, log=messages.append)
    assert json.loads(out.read_text())["methods"] == json.loads(json.dumps(result["methods"]))
    # the first ground-truth window starts before the first event: listed with its reason, not printed
    assert [s["reason"] for s in result["skipped"]] == ["window before the first event"] and messages == []
    assert set(result["methods"]) == {"snn", "sgbm"} and result["kind"] == "dsec"
    src = sources[0]
    n = len([e for e in src.entries() if e.t_us - predictor.window_us >= src.time_range_us()[0]])
    assert len(result["per_image"]) + len(result["skipped"]) == len(src.entries()) and len(result["per_image"]) == n
    # the mean is the mean of the per-image values, which are the metric functions' own values
    row = result["per_image"][0]
    entry = next(e for e in src.entries() if e.index == row["index"])
    left, right = predictor.window(src, entry)
    pred = predictor.predict_events(left, right, src.height, src.width)
    gt = src.disparity(entry)
    assert row["snn"]["mae"] == pytest.approx(dsec_metrics(pred, gt)["mae"], rel=1e-6)
    regions = region_metrics(pred, gt, gt > 0, Regions())
    assert row["snn"]["near_mae"] == pytest.approx(regions["near_mae"], rel=1e-6)
    assert row["snn"]["edge_pixels"] == regions["edge_pixels"] > 0  # the simulated objects have edges
    for method in ("snn", "sgbm"):
        means = result["methods"][method]
        assert means["mae"] == pytest.approx(np.mean([r[method]["mae"] for r in result["per_image"]]))
        edge = [r[method]["edge_mae"] for r in result["per_image"] if r[method]["edge_mae"] is not None]
        assert means["edge_mae"] == pytest.approx(np.mean(edge)) and means["edge_images"] == len(edge)
    assert result["regions"]["near_ratio"] == 1.5 and result["regions"]["edge_radius_px"] == 2
    table = results_table(result)
    assert "SNN" in table and "SGBM" in table and "near MAE" in table and "edge MAE" in table
    assert table.splitlines()[-1] == Regions().describe()
    with pytest.raises(ConfigError, match="baseline"):
        evaluate_sources(predictor, sources, baseline="bm", progress=False)


@pytest.fixture(scope="module")
def mvsec_root(tmp_path_factory):
    """Two simulated MVSEC-layout recordings (48x64, 260 ms, 3 depth frames each)."""
    from stereo_snn.events.mvsec import write_mvsec_recording
    from stereo_snn.events.simulator import SimConfig, simulate_stereo

    root = tmp_path_factory.mktemp("mvsec")
    recs = []
    for k in (1, 2):
        rec = simulate_stereo(
            SimConfig.from_dict(
                {"name": f"sim_flying{k}", "height": 48, "width": 64, "duration_ms": 260.0, "seed": 30 + k}
            )
        )
        write_mvsec_recording(rec, root, "sim_flying")
        recs.append(rec)
    return root, recs


def test_evaluate_mvsec_recording(trained_run, mvsec_root):
    from stereo_snn.stereo.data import open_source

    root, recs = mvsec_root
    src = open_source(root / "sim_flying1_data.hdf5")
    assert (src.height, src.width) == (48, 64) and src.focal_baseline == pytest.approx(recs[0].focal_baseline)
    loaded = load_model(trained_run / "checkpoints" / "best.pt")
    predictor = Predictor(loaded.model, loaded.config, "cpu")
    result = evaluate_sources(predictor, [src], progress=False, log=lambda s: None)
    assert result["kind"] == "mvsec" and result["per_image"]
    snn = result["methods"]["snn"]
    assert {"mean_depth_error_m", "one_pixel_accuracy", "mean_disparity_error"} <= set(snn)
    assert 0 <= snn["one_pixel_accuracy"] <= 100 and snn["mean_depth_error_m"] >= 0
    # the region metrics (disparity pixels) are there for MVSEC too
    assert snn["near_mae"] is not None and 1 <= snn["near_images"] <= len(result["per_image"])
    assert "near MAE" in results_table(result) and "MDE [cm]" in results_table(result)


def test_mvsec_protocol_selects_the_split_frames(mvsec_root):
    from stereo_snn.errors import DatasetError
    from stereo_snn.stereo.data import mvsec_protocol_sources

    root, _ = mvsec_root
    protocol = {
        "sequences": {1: "sim_flying1", 2: "sim_flying2"},
        "train_frames": {1: [1, 3], 2: [1, 3]},
        "test_frames": {1: [1, 3], 2: [1, 3]},
        "validation_frames": 1,
        "default_seed": 0,
    }
    train = mvsec_protocol_sources(root, 2, "train", protocol=protocol)
    assert [s.name for s in train] == ["sim_flying1"] and [e.gt_row for e in train[0].entries()] == [1, 2]
    val = mvsec_protocol_sources(root, 2, "val", protocol=protocol)
    test = mvsec_protocol_sources(root, 2, "test", protocol=protocol)
    rows = sorted(e.gt_row for e in val[0].entries() + test[0].entries())
    assert val[0].name == test[0].name == "sim_flying2" and rows == [1, 2] and len(val[0].entries()) == 1
    protocol["sequences"][3] = "missing_flying3"
    protocol["train_frames"][3] = protocol["test_frames"][3] = [1, 2]
    with pytest.raises(DatasetError, match="missing_flying3_data.hdf5"):
        mvsec_protocol_sources(root, 1, "train", protocol=protocol)
