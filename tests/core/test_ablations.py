"""The shared ablation runner and the random-architecture sampler, on a fake application
(genotypes are real, the "training" is arithmetic), so every rule is checked in milliseconds."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from stereo_snn.errors import ConfigError, OutputError
from stereo_snn.experiment import load_plan, markdown_table, pareto_front, run_ablations, select_questions
from stereo_snn.search import Genotype, TrellisConfig, genotype_from_dict, genotype_to_dict
from stereo_snn.search.sampling import random_component, random_genotype, sample_at_energy

SPACE = TrellisConfig(
    dim=2, in_channels=1, channels=4, layers=4, steps=3, levels=3, moves=("down", "same"), out_level=2
)


def _cost(g: Genotype) -> float:
    """A stand-in energy: convs cost 1, ANN cells double their cell's cost."""
    total = 0.0
    for comp in g.components.values():
        for cell in comp.cells:
            convs = sum(op != "skip_connect" for node in cell.edges for _, op in node)
            total += convs * (1.0 if cell.spiking else 2.0)
    return total + 1.0


def _reference() -> Genotype:
    return Genotype({"backbone": random_component(SPACE, random.Random(0))})


class FakeApp:
    name = "fake"
    metric = "score"
    higher_is_better = True
    energy_unit = "mJ per thing"

    def __init__(self):
        self.calls = {"search": 0, "train": 0, "energy": 0}

    def settings(self, overrides, command, seed):
        # search settings ignore train.* keys, as the real applications' searches do
        keep = [o for o in overrides if command == "train" or not o.startswith("train.")]
        return {"overrides": sorted(keep), "seed": seed, "command": command}

    def search(self, overrides, seed, out):
        self.calls["search"] += 1
        rng = random.Random(f"{sorted(overrides)}{seed}")
        comp = random_component(SPACE, rng)
        return Genotype({"backbone": comp})

    def train(self, genotype_path, overrides, seed, out):
        self.calls["train"] += 1
        g = genotype_from_dict(json.loads(Path(genotype_path).read_text()))
        return {"metric": 50.0 + _cost(g) + seed, "energy_mj": _cost(g)}

    def untrained_energy(self, genotype, overrides, seed):
        self.calls["energy"] += 1
        return _cost(genotype)


PLAN = """
seeds: [0, 1]
set: [common=1]
train_set: [train.epochs=1]
random: {count: 2, tolerance: 0.25, max_draws: 500}
questions:
  random: {title: searched vs random, random: true}
  dgs:
    title: DGS on vs off
    variants: {"on": [], "off": [dgs=false]}
  hybrid:
    title: hybrid
    variants: {hybrid: [], all ANN: {set: [hybrid=false], cells: ann}}
  energy: {title: sweep, sweep: {key: search.energy_weight, values: [0, 1.5]}}
"""


@pytest.fixture()
def plan_file(tmp_path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_random_genotypes_stay_in_the_search_space_and_round_trip():
    rng = random.Random(1)
    for _ in range(50):
        g = random_genotype(_reference(), rng)
        comp = g.components["backbone"]
        assert comp.config == SPACE and comp.path[-1] == SPACE.out_level
        steps = [b - a for a, b in zip((0, *comp.path), comp.path)]
        assert set(steps) <= {0, 1}  # moves down / same only
        for cell in comp.cells:
            assert all(len(node) == 2 and node[0][0] != node[1][0] for node in cell.edges)
            assert cell.neuron in SPACE.neuron_kinds
        genotype_from_dict(genotype_to_dict(g))  # passes every file check


def test_random_cells_draw_every_neuron_choice_of_the_search_including_each_tau_candidate():
    space = TrellisConfig(
        dim=2,
        in_channels=1,
        channels=4,
        layers=3,
        steps=1,
        levels=2,
        neuron_kinds=("lif", "plif"),
        tau_candidates=(1.25, 4.0),
    )
    rng = random.Random(3)
    drawn = Counter((c.neuron, c.tau) for _ in range(200) for c in random_component(space, rng).cells)
    assert set(drawn) == {("lif", 1.25), ("lif", 4.0), ("plif", space.learn_tau_init)}
    assert min(drawn.values()) > 150  # about a third each of 600 cells


def test_max_skip_is_respected_by_random_cells():
    space = TrellisConfig(dim=2, in_channels=1, channels=4, layers=3, steps=3, levels=2, max_skip=0)
    rng = random.Random(2)
    cells = [c for _ in range(20) for c in random_component(space, rng).cells]
    assert all(op != "skip_connect" for c in cells for node in c.edges for _, op in node)


def test_sampler_keeps_only_architectures_inside_the_energy_window():
    ref = _reference()
    found = sample_at_energy(ref, _cost, count=4, tolerance=0.1, max_draws=2000, rng=random.Random(3))
    assert len(found.genotypes) == 4 and found.draws >= 4
    assert found.reference_mj == _cost(ref)
    assert all(abs(_cost(g) / found.reference_mj - 1) <= 0.1 for g in found.genotypes)
    assert list(found.energies_mj) == [_cost(g) for g in found.genotypes]


def test_sampler_fails_with_a_clear_error_after_max_draws():
    ref = _reference()
    with pytest.raises(ConfigError, match=r"only 0 of 30 random architectures .* within 10%"):
        sample_at_energy(
            ref, lambda g: 1.0 if g is ref else 100.0, count=2, tolerance=0.1, max_draws=30, rng=random.Random(0)
        )


def test_ablation_writes_json_table_figures_and_shares_identical_runs(plan_file, tmp_path):
    app = FakeApp()
    out = tmp_path / "out"
    summary = run_ablations(app, load_plan(plan_file), out, log=lambda s: None)
    data = json.loads((out / "ablations.json").read_text())
    kinds = [r["kind"] for r in data["runs"].values()]
    # per seed: searches default, dgs=false, hybrid=false, energy_weight 0 and 1.5 (5);
    # trainings: those but hybrid=false (only searched for the all-ANN cells) + all-ANN + 2 random (7)
    assert kinds.count("search") == 10 and kinds.count("train") == 14 and kinds.count("random") == 2
    assert app.calls == {"search": 10, "train": 14, "energy": app.calls["energy"]}
    assert all(r["status"] == "done" for r in data["runs"].values())
    table = (out / "ablations.md").read_text()
    assert "## searched vs random" in table and "| all ANN | 2 |" in table and "search.energy_weight=1.5" in table
    assert "draws per seed" in table
    for key in ("random", "dgs", "hybrid", "energy"):
        assert (out / "figures" / f"{key}.png").stat().st_size > 1000
    rq = next(q for q in summary["questions"] if q["key"] == "random")
    assert [v["name"] for v in rq["variants"]] == ["searched", "random"]
    assert rq["variants"][1]["metric"]["n"] == 4 and len(rq["searched_vs_random"]) == 2
    # the all-ANN variant retrains every cell of its search's genotype as an ANN cell
    ann = [r for r in data["runs"].values() if r.get("cells") == "ann"]
    assert len(ann) == 2
    for r in ann:
        g = genotype_from_dict(json.loads((out / r["genotype"]).read_text()))
        assert not any(c.spiking for c in g.components["backbone"].cells)


def test_resume_skips_finished_runs_and_refuses_a_full_folder(tmp_path):
    plan_file = tmp_path / "small.yaml"  # searched vs 2 random, DGS on / off
    plan_file.write_text(PLAN.split("  hybrid:")[0])
    out = tmp_path / "out"
    run_ablations(FakeApp(), load_plan(plan_file, seeds=[0]), out, log=lambda s: None)
    with pytest.raises(OutputError, match="--resume"):
        run_ablations(FakeApp(), load_plan(plan_file, seeds=[0]), out, log=lambda s: None)
    again = FakeApp()
    run_ablations(again, load_plan(plan_file, seeds=[0]), out, resume=True, log=lambda s: None)
    assert again.calls == {"search": 0, "train": 0, "energy": 0}
    more = FakeApp()  # a new seed on resume runs only that seed's runs
    run_ablations(more, load_plan(plan_file, seeds=[0, 1]), out, resume=True, log=lambda s: None)
    assert more.calls["search"] == 2 and more.calls["train"] == 4
    fresh = FakeApp()
    run_ablations(fresh, load_plan(plan_file, seeds=[0]), out, overwrite=True, log=lambda s: None)
    assert fresh.calls["search"] == 2
    assert len(json.loads((out / "ablations.json").read_text())["runs"]) == 7


def test_questions_option_runs_only_the_named_questions(plan_file, tmp_path):
    plan = select_questions(load_plan(plan_file, seeds=[0]), ["dgs", "random"])
    assert [q.key for q in plan.questions] == ["random", "dgs"]  # the preset's order
    app = FakeApp()
    summary = run_ablations(app, plan, tmp_path / "out", log=lambda s: None)
    assert [q["key"] for q in summary["questions"]] == ["random", "dgs"]
    assert app.calls["search"] == 2
    with pytest.raises(ConfigError, match=r"unknown question 'colour' \(the preset has: random, dgs, hybrid, energy\)"):
        select_questions(load_plan(plan_file), ["random", "colour"])


def test_pareto_front_respects_the_metric_direction():
    pts = [(1.0, 80.0), (2.0, 90.0), (3.0, 85.0), (0.5, 70.0)]
    assert pareto_front(pts, higher_is_better=True) == [3, 0, 1]
    assert pareto_front(pts, higher_is_better=False) == [3]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("questions: {}", "questions"),
        ("questions: {a: {variants: {x: [nokey]}}}", "KEY=VALUE"),
        ("questions: {a: {variants: {x: {set: [], cells: relu}}}}", "cells"),
        ("questions: {a: {sweep: {key: k}}}", "sweep"),
        ("questions: {a: {sweep: {key: k, values: [1], sets: [x=1]}}}", "unknown key 'sets'"),
        ("questions: {a: {sweep: {key: k, values: [1], set: [x]}}}", "sweep.set"),
        ("seeds: []\nquestions: {a: {random: true}}", "seeds"),
        ("random: {tolerance: 2}\nquestions: {a: {random: true}}", "tolerance"),
        ("colour: red\nquestions: {a: {random: true}}", "unknown setting 'colour'"),
    ],
)
def test_bad_plans_are_refused_naming_the_file_and_setting(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem) as err:
        load_plan(path)
    assert str(path) in str(err.value)


def test_table_reports_mean_and_spread():
    summary = {
        "application": "fake",
        "metric": "score",
        "higher_is_better": True,
        "energy_unit": "mJ",
        "seeds": [0, 1],
        "random": {"count": 5, "tolerance": 0.1, "max_draws": 10},
        "questions": [
            {
                "key": "q",
                "title": "Q",
                "variants": [
                    {
                        "name": "v",
                        "runs": [],
                        "metric": {"n": 2, "mean": 90.0, "std": 1.0, "min": 89.0, "max": 91.0, "median": 90.0},
                        "energy_mj": {"n": 2, "mean": 0.5, "std": 0.1, "min": 0.4, "max": 0.6, "median": 0.5},
                    }
                ],
            }
        ],
    }
    assert "| v | 2 | 90 ± 1 (89–91) | 0.5 ± 0.1 (0.4–0.6) |" in markdown_table(summary)


def test_init_energy_wakes_the_neurons_of_an_untrained_network_and_keeps_its_settings():
    import torch

    from stereo_snn.search import SpikingTrellis, energy_report
    from stereo_snn.search.sampling import init_energy

    torch.manual_seed(0)
    space = TrellisConfig(dim=2, in_channels=1, channels=4, layers=2, steps=2, levels=2, hybrid=False)
    net = SpikingTrellis.from_genotype(random_component(space, random.Random(4)))
    x = torch.rand(2, 4, 1, 8, 8)
    silent = energy_report(net, x).compute_mj
    awake = init_energy(net, x)
    assert awake > silent
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(m.momentum == 0.1 for m in bns) and net.training


def test_a_sweep_gives_every_value_its_own_variant_and_the_sweeps_common_overrides(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("questions: {e: {sweep: {key: search.t, values: [0.5, 2], set: [search.mode=equal]}}}")
    (question,) = load_plan(path).questions
    assert [(v.name, v.set) for v in question.variants] == [
        ("search.t=0.5", ("search.t=0.5", "search.mode=equal")),
        ("search.t=2", ("search.t=2", "search.mode=equal")),
    ]
