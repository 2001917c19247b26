"""The events benchmark runs end to end on tiny sizes and reports consistent figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stereo_snn.bench.events import main, synthetic_events
from stereo_snn.cli import main as cli_main
from stereo_snn.errors import ConfigError


def test_bench_events_tiny_run_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    args = ["--events", "3000", "--window-events", "2000", "--height", "24", "--width", "32", "--bins", "4"]
    assert main([*args, "--repeats", "1", "--ref-repeats", "1", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "speed-up" in text and "DSEC window" in text
    result = json.loads(out.read_text())
    assert [v["layout"] for v in result["voxel"]] == ["uniform", "edges"]
    for v in result["voxel"]:
        assert v["max_abs_diff"] < 1e-5  # numba and reference agree on the benchmark events
        assert v["speedup"] == pytest.approx(v["torch_reference_s"] / v["numba_s"])
    load = result["load"]
    assert 1500 < load["events_left"] < 2500 and 1500 < load["events_right"] < 2500
    assert load["total_s"] == pytest.approx(load["slice_s"] + load["rectify_s"] + load["voxel_s"], rel=1e-6)
    cpu_parts = load["slice_cpu_s"] + load["rectify_cpu_s"] + load["voxel_cpu_s"]
    assert load["total_cpu_s"] == pytest.approx(cpu_parts, rel=1e-6) and load["end_to_end_cpu_s"] >= 0
    assert result["threading_layer"] in ("omp", "tbb", "workqueue") and "threading layer" in text


def test_bench_events_through_cli(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "events", "--events", "500", "--height", "16", "--width", "16", "--bins", "3"]
    assert cli_main([*argv, "--repeats", "1", "--ref-repeats", "1", "--no-load", "--layouts", "edges"]) == 0
    assert "(edges)" in capsys.readouterr().out


@pytest.mark.parametrize("layout", ["uniform", "edges"])
def test_synthetic_events_layouts(layout) -> None:
    ev = synthetic_events(5000, 30, 40, seed=1, layout=layout)
    assert len(ev) == 5000 and np.all(np.diff(ev.t) >= 0)
    assert ev.x.min() >= 0 and ev.x.max() <= 39 and ev.y.min() >= 0 and ev.y.max() <= 29


def test_synthetic_events_raw_coordinates_and_bad_layout() -> None:
    raw = synthetic_events(100, 30, 40, seed=1, float_coords=False)
    assert raw.x.dtype == np.uint16
    with pytest.raises(ConfigError, match="layout"):
        synthetic_events(10, 30, 40, seed=1, layout="spiral")
