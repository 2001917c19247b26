"""`stereo-snn experiment ablations` end to end on tiny simulated sequences, and the shipped
stereo ablation presets: every variant's overrides are real settings."""

from __future__ import annotations

import json

import pytest

from stereo_snn import cli
from stereo_snn.errors import ConfigError
from stereo_snn.experiment import load_plan
from stereo_snn.stereo.ablations import PLANS_DIR, StereoAblation

PLAN = """
base: tiny
seeds: [0]
data: {{path: {root}, val_count: 1, search_max_batches: 1}}
search_set: [search.epochs=1, search.warmup_epochs=0]
train_set: [train.epochs=1]
random: {{count: 2, tolerance: 0.5, max_draws: 400}}
questions:
  random: {{title: searched vs random, random: true}}
"""


def test_tiny_stereo_ablation_writes_json_table_and_figures(tmp_path, sim_root, capsys):
    plan = tmp_path / "tiny.yaml"
    plan.write_text(PLAN.format(root=sim_root))
    out = tmp_path / "out"
    assert cli.main(["experiment", "ablations", "--preset", str(plan), "--out", str(out), "--device", "cpu"]) == 0
    assert "validation MAE (px)" in capsys.readouterr().out
    data = json.loads((out / "ablations.json").read_text())
    trained = [r for r in data["runs"].values() if r["kind"] == "train"]
    assert len(trained) == 3 and all(r["metric"] >= 0 and r["energy_mj"] > 0 for r in trained)
    (sample,) = [r for r in data["runs"].values() if r["kind"] == "random"]
    assert all(abs(e / sample["reference_untrained_mj"] - 1) <= 0.5 for e in sample["untrained_mj"])
    assert (out / "figures" / "random.png").is_file() and (out / "ablations.md").is_file()


def test_fixed_lif_is_a_setting_of_every_searched_component(tiny_cfg):
    from stereo_snn.stereo.network import trellis_configs

    default = trellis_configs(tiny_cfg, tiny_cfg.input_channels)
    fixed = trellis_configs(tiny_cfg.replace(**{"network.neuron_kinds": ["lif"]}), tiny_cfg.input_channels)
    assert all(c.neuron_kinds == ("lif", "plif") for c in default.values())  # the old behaviour
    assert all(c.neuron_kinds == ("lif",) for c in fixed.values())


@pytest.mark.parametrize("name", sorted(p.stem for p in PLANS_DIR.glob("*.yaml")))
def test_shipped_presets_name_real_settings(tmp_path, name):
    plan = load_plan(PLANS_DIR / f"{name}.yaml")
    app = StereoAblation(plan, tmp_path)
    for q in plan.questions:
        for v in q.variants:
            app.settings([*plan.set, *v.set, *plan.search_set, *plan.train_set], "search", plan.seeds[0])


def test_plan_data_needs_one_source(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text("data: {val_count: 1}\nquestions: {a: {random: true}}\n")
    with pytest.raises(ConfigError, match="simulate: N or path: FOLDER"):
        StereoAblation(load_plan(plan), tmp_path)
