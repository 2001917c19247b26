"""`stereo-snn classify experiment ablations` end to end on the digits with tiny settings, and
the shipped ablation presets: every variant's overrides are real settings."""

from __future__ import annotations

import json

import pytest

from classification.ablations import PLANS_DIR, ClassifyAblation
from stereo_snn import cli
from stereo_snn.experiment import load_plan

TINY = [
    "threads=1",
    "model.time_steps=1",
    "model.layers=2",
    "model.channels=4",
    "model.levels=2",
    "search.epochs=1",
    "search.warmup_epochs=0",
    "search.batch_size=8",
    "search.max_batches=1",
    "search.dgs=false",
    "train.epochs=1",
    "train.batch_size=16",
    "train.max_batches=2",
    "train.dgs=false",
    "data.limit_train=32",
    "data.limit_test=16",
    "energy.images=4",
]

PLAN = """
base: digits
seeds: [0]
random: {count: 2, tolerance: 0.5, max_draws: 400}
questions:
  random: {title: searched vs random, random: true}
  hybrid:
    title: hybrid vs all-ANN cells
    variants: {hybrid: [], all ANN: {set: [model.hybrid=false], cells: ann}}
"""


def test_tiny_digits_ablation_writes_json_table_and_figures(tmp_path, capsys):
    plan = tmp_path / "tiny.yaml"
    plan.write_text(PLAN)
    out = tmp_path / "out"
    args = ["classify", "experiment", "ablations", "--preset", str(plan), "--out", str(out)]
    for item in TINY:
        args += ["--set", item]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "## searched vs random" in printed and "test top-1 (%)" in printed
    runs = json.loads((out / "ablations.json").read_text())["runs"].values()
    trained = [r for r in runs if r["kind"] == "train"]
    assert len(trained) == 4  # searched, 2 random, all-ANN cells
    assert all(0 <= r["metric"] <= 100 and r["energy_mj"] > 0 for r in trained)
    ann = next(r for r in trained if r["cells"] == "ann")
    assert ann["energy_mj"] > min(r["energy_mj"] for r in trained if r["cells"] == "searched")
    assert (out / "figures" / "random.png").is_file() and (out / "figures" / "hybrid.png").is_file()
    assert "draws per seed" in (out / "ablations.md").read_text()
    # a second run into the same folder is refused in one line
    assert cli.main(args) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(p.stem for p in PLANS_DIR.glob("*.yaml")))
def test_shipped_presets_name_real_settings(name):
    plan = load_plan(PLANS_DIR / f"{name}.yaml")
    app = ClassifyAblation(plan)
    for q in plan.questions:
        for v in q.variants:
            for command, extra in (("search", plan.search_set), ("train", plan.train_set)):
                app.settings([*plan.set, *v.set, *extra], command, plan.seeds[0])


def test_a_search_setting_does_not_make_a_retraining_different():
    app = ClassifyAblation(load_plan(PLANS_DIR / "digits.yaml"))
    assert app.settings(["search.energy_weight=1.0"], "train", 0) == app.settings([], "train", 0)
    assert app.settings(["search.energy_weight=1.0"], "search", 0) != app.settings([], "search", 0)
    assert app.settings(["train.epochs=2"], "search", 0) == app.settings([], "search", 0)
