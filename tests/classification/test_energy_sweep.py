"""tools/energy_sweep.py on a tiny budget: one row per target, the multiplier recorded, a table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "energy_sweep.py"
TINY = [
    "model.time_steps=2",
    "model.layers=2",
    "model.channels=4",
    "model.neuron_kinds=[lif]",
    "search.epochs=1",
    "search.warmup_epochs=0",
    "search.batch_size=8",
    "search.max_batches=2",
    "search.dgs=false",
    "train.epochs=1",
    "train.batch_size=16",
    "train.max_batches=2",
    "train.dgs=false",
    "data.limit_train=64",
    "data.limit_test=32",
]


def test_energy_sweep_searches_retrains_and_measures_each_target(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("energy_sweep", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(tmp_path), "--targets", "none", "1e-6", "--images", "8", "--set", *TINY]) == 0
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["target_mj"] for r in rows] == [None, 1e-6]
    assert (
        rows[0]["multiplier"] is None and rows[1]["multiplier"] > 0
    )  # far over a target no cell can reach: lambda grows every step
    assert all(r["measured_mj"] > 0 and 0 <= r["test_top1"] <= 100 for r in rows)
    trace = json.loads((tmp_path / "target_1e-06" / "search" / "metrics.json").read_text())["energy_multiplier_trace"]
    assert len(trace) == 2 and trace[1] > trace[0] > 0
    out = capsys.readouterr().out
    assert "| target mJ/image |" in out and "| none |" in out and "| 1.00e-06 |" in out
