"""Bilevel search on a tiny task: weights move, energy weight -> cheaper and more spiking architecture."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stereo_snn.errors import ConfigError
from stereo_snn.search import BilevelConfig, Searcher, SpikingTrellis, TrellisConfig, energy_report


def _data(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Spikes dense in the top (class 1) or bottom (class 0) half of an 8x8 frame, T=2."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (torch.rand(2, n, 1, 8, 8, generator=g) < 0.1).float()
    dense = (torch.rand(2, n, 1, 4, 8, generator=g) < 0.6).float()
    for i in range(n):
        rows = slice(0, 4) if y[i] == 1 else slice(4, 8)
        x[:, i, :, rows, :] = dense[:, i]
    return [(x[:, j : j + 8], y[j : j + 8]) for j in range(0, n, 8)]


class _Classifier(nn.Module):
    def __init__(self, cfg: TrellisConfig):
        super().__init__()
        self.body = SpikingTrellis(cfg)
        self.head = nn.Linear(self.body.out_channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(0, 3, 4)))


def _loss(model: nn.Module, batch) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


CFG = TrellisConfig(dim=2, in_channels=1, channels=2, layers=2, steps=2, levels=2, out_level=0)


def _search(energy_weight: float):
    torch.manual_seed(0)
    model = _Classifier(CFG)
    before = {n: p.detach().clone() for n, p in model.body.named_parameters() if "arch_" in n or "plif_w" in n}
    logs: list[str] = []
    searcher = Searcher(
        model,
        _loss,
        BilevelConfig(epochs=4, warmup_epochs=1, lr=0.05, arch_lr=0.05, energy_weight=energy_weight),
        {"body": model.body},
        log=logs.append,
    )
    g = searcher.run(_data(24, 1), _data(24, 2))
    return model, before, g, logs, searcher


@pytest.fixture(scope="module")
def searches():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {lam: _search(lam) for lam in (0.0, 5.0)}
    finally:
        torch.set_num_threads(threads)


def test_search_runs_and_architecture_weights_move(searches):
    model, before, g, logs, searcher = searches[0.0]
    after = dict(model.body.named_parameters())
    for name in ("arch_beta", "arch_alpha", "cells.0_1.neurons.arch_type", "cells.1_0.neurons.arch_hybrid"):
        assert not torch.allclose(before[name], after[name].detach()), name
    assert set(g.components) == {"body"} and len(g.components["body"].path) == 2
    assert len(searcher.history) == 4 and "val_loss" not in searcher.history[0] and "val_loss" in searcher.history[1]
    assert [r["epoch"] for r in searcher.history] == [1, 2, 3, 4]  # counted from 1, like training epochs
    assert searcher.history[-1]["loss"] < searcher.history[0]["loss"]
    assert any(line.startswith("epoch 3/4:") for line in logs) and any("path" in line for line in logs)
    assert g.settings["search"]["energy_weight"] == 0.0


def test_tau_search_changes_learnable_tau(searches):
    model, before, *_ = searches[0.0]
    after = dict(model.body.named_parameters())
    moved = [n for n in before if "plif_w" in n and not torch.allclose(before[n], after[n].detach())]
    assert moved


def test_raised_energy_weight_gives_cheaper_derived_architecture(searches):
    x = _data(8, 5)[0][0]
    measured = {}
    for lam, (_, _, g, _, _) in searches.items():
        net = SpikingTrellis.from_genotype(g.components["body"])
        measured[lam] = energy_report(net, x).compute_mj
    assert measured[5.0] < 0.8 * measured[0.0]
    ops = lambda g: [op for c in g.components["body"].cells for node in c.edges for _, op in node]  # noqa: E731
    assert ops(searches[5.0][2]).count("skip_connect") > ops(searches[0.0][2]).count("skip_connect")


def test_hybrid_choice_responds_to_energy_weight(searches):
    def p_spk(model):
        return sum(float(c.neurons.spike_prob().detach()) for c in model.body.cells.values()) / len(model.body.cells)

    # the energy term favours spiking cells (less so since neuron updates are counted: 2-channel toy)
    assert p_spk(searches[5.0][0]) > p_spk(searches[0.0][0]) + 0.04
    spiking = lambda g: sum(c.spiking for c in g.components["body"].cells)  # noqa: E731
    assert spiking(searches[5.0][2]) >= spiking(searches[0.0][2])


def test_energy_target_multiplier_rises_over_the_target_and_falls_under_it():
    torch.manual_seed(0)
    model = _Classifier(CFG)
    cfg = BilevelConfig(epochs=1, warmup_epochs=0, energy_target_mj=1e-12, energy_dual_lr=0.5)
    s = Searcher(model, _loss, cfg, {"body": model.body})
    assert s.multiplier == 0.0  # starts at energy_weight
    _loss(model, _data(8, 1)[0])
    e = float(s.energy_pj().detach())
    assert float(s.energy_penalty().detach()) == 0.0  # lambda 0: no pull yet
    s.config.energy_target_mj = 1e-3
    assert s.update_multiplier(3e-3 * 1e9) == pytest.approx(1.0)  # E twice over the target: + 0.5 * 2
    assert s.update_multiplier(2e-3 * 1e9) == pytest.approx(1.5)  # still over: grows
    s.config.energy_target_mj = 4e-3
    assert s.update_multiplier(2e-3 * 1e9) == pytest.approx(1.25)  # at half the target: shrinks by 0.5 * 0.5
    assert s.update_multiplier(0.0) == pytest.approx(0.75)
    assert [s.update_multiplier(0.0) for _ in range(3)] == [0.25, 0.0, 0.0]  # clamped at 0
    assert s.multiplier_trace == [1.0, 1.5, 1.25, 0.75, 0.25, 0.0, 0.0]
    # the Lagrangian term lambda * (E / target - 1)
    s.multiplier, s.config.energy_target_mj = 2.0, e / 1e9 / 2
    assert float(s.energy_penalty().detach()) == pytest.approx(2.0, rel=1e-5)
    # through the architecture steps: the trace records lambda after each one, the history its mean
    s.config.energy_target_mj, s.multiplier, s.multiplier_trace = 1e-12, 0.0, []
    out = s.step(*_data(16, 1), epoch=0)
    assert out["energy_multiplier"] == s.multiplier_trace[-1] > 0
    with pytest.raises(ConfigError, match="energy_weight"):
        BilevelConfig(energy_weight=-1)
    with pytest.raises(ConfigError, match="energy_dual_lr"):
        BilevelConfig(energy_dual_lr=-1)
    fixed = SpikingTrellis.from_genotype(model.body.derive())
    with pytest.raises(ConfigError, match="supernet"):
        Searcher(model, _loss, BilevelConfig(), {"body": fixed})


def _expected_after(target_mj: float | None, steps: int = 4, constraint: str = "max") -> float:
    torch.manual_seed(0)
    model = _Classifier(CFG)
    cfg = BilevelConfig(
        epochs=1,
        warmup_epochs=0,
        lr=0.05,
        arch_lr=0.05,
        energy_target_mj=target_mj,
        energy_dual_lr=2.0,
        energy_constraint=constraint,
    )
    s = Searcher(model, _loss, cfg, {"body": model.body}, log=lambda line: None)
    train, val = _data(8 * steps, 1), _data(8 * steps, 2)
    for tb, vb in zip(train, val):
        s.step(tb, vb, epoch=0)
    _loss(model, val[0])
    return float(s.energy_pj().detach()) / 1e9


def test_a_lower_energy_target_gives_a_lower_expected_energy():
    free = _expected_after(None)
    assert _expected_after(10 * free) == pytest.approx(free)  # a target that never binds: lambda stays 0
    assert _expected_after(0.5 * free) < 0.85 * free


def test_an_equality_target_also_pulls_the_energy_up_to_it():
    # `max` leaves an energy under the target alone; `equal` lets lambda turn negative and
    # spends energy up to the target
    free = _expected_after(None)
    assert _expected_after(2 * free) == pytest.approx(free)
    assert _expected_after(2 * free, constraint="equal") > 1.15 * free
    assert _expected_after(0.5 * free, constraint="equal") < 0.85 * free
    model = _Classifier(CFG)
    s = Searcher(model, _loss, BilevelConfig(energy_target_mj=1e-3, energy_constraint="equal"), {"body": model.body})
    assert [s.update_multiplier(e * 1e9) for e in (2e-3, 0.5e-3, 0.0)] == pytest.approx([0.5, 0.25, -0.25])
    with pytest.raises(ConfigError, match="energy_constraint 'near': must be one of max, equal"):
        BilevelConfig(energy_constraint="near")


def test_searcher_runs_dgs_and_records_settings(tmp_path):
    from stereo_snn.search import DGSConfig, SurrogateSearch, load_genotype, save_genotype

    torch.manual_seed(0)
    cfg = TrellisConfig(dim=2, in_channels=1, channels=2, layers=1, steps=1, levels=1, moves=("same",))
    model = _Classifier(cfg)
    dgs = SurrogateSearch(model, DGSConfig(every=1, start=0, max_batches=1))
    s = Searcher(
        model,
        _loss,
        BilevelConfig(epochs=1, warmup_epochs=0, max_batches=1),
        {"body": model.body},
        dgs=dgs,
        log=lambda line: None,
    )
    g = s.run(_data(8, 1), _data(8, 2))
    assert all(len(h) == 2 for h in dgs.history.values())
    assert g.settings["dgs"]["deltas"] == [-0.4, -0.2, 0.0, 0.2, 0.4]
    assert set(g.settings["surrogate_b_history"]) == set(dgs.history)
    back = load_genotype(save_genotype(tmp_path / "g.json", g))
    assert back.components == g.components and back.settings["search"]["max_batches"] == 1


@pytest.mark.parametrize("count", [0, -3])
def test_a_search_without_batches_is_refused_before_it_writes_a_genotype(count):
    with pytest.raises(ConfigError, match=f"search max_batches {count}: must be an integer >= 1"):
        BilevelConfig(max_batches=count)


def test_energy_fit_derives_within_the_target_and_leaves_the_supernet_as_it_was():
    torch.manual_seed(0)
    model = _Classifier(CFG)
    batch = _data(8, 2)[0]
    cells = model.body.path_cells()
    assert len(cells) == CFG.layers and all(c.neurons.hybrid for c in cells)
    with torch.no_grad():  # the first cell leans ANN, the second spiking
        cells[0].neurons.arch_hybrid.copy_(torch.tensor([0.0, 0.2]))
        cells[1].neurons.arch_hybrid.copy_(torch.tensor([0.2, 0.0]))
    logits = [c.neurons.arch_hybrid.detach().clone() for c in cells]
    buffers = {k: b.clone() for k, b in model.named_buffers()}

    def fit(target_mj: float, constraint: str):
        cfg = BilevelConfig(energy_target_mj=target_mj, energy_constraint=constraint, energy_fit=True)
        s = Searcher(model, _loss, cfg, {"body": model.body}, log=lambda line: None)
        with s.fit_to_target(batch) as out:
            spiking = [c.spiking for c in s.derive().components["body"].cells]
        return out, spiking

    learnt, spiking = fit(1.0, "max")  # a target far above: the learnt choices
    assert spiking == [False, True] and learnt["changes"] == [] and learnt["after_mj"] == learnt["before_mj"]
    low, spiking = fit(1e-9, "max")  # below every choice: every cell spiking
    assert spiking == [True, True] and low["changes"] == ["body cell 0 spiking"]
    assert low["after_mj"] < learnt["before_mj"]
    high, spiking = fit(1.0, "equal")  # spend up to the target: every cell ANN
    assert spiking == [False, False] and high["changes"] == ["body cell 1 ANN"]
    assert high["after_mj"] > learnt["before_mj"]
    between = (low["after_mj"] + learnt["before_mj"]) / 2  # under the learnt choices: the ANN cell turns spiking
    mid, spiking = fit(between, "equal")
    assert spiking == [True, True] and mid["after_mj"] <= between
    for c, logit in zip(cells, logits):  # the supernet keeps its learnt logits and statistics
        assert torch.equal(c.neurons.arch_hybrid.detach(), logit)
    assert all(torch.equal(b, buffers[k]) for k, b in model.named_buffers())
    with pytest.raises(ConfigError, match="energy_fit: needs an energy target"):
        BilevelConfig(energy_fit=True)


def test_a_search_with_energy_fit_records_the_fit_in_the_genotype():
    torch.manual_seed(0)
    model = _Classifier(CFG)
    logs: list[str] = []
    cfg = BilevelConfig(epochs=1, warmup_epochs=0, max_batches=1, energy_target_mj=1e-9, energy_fit=True)
    g = Searcher(model, _loss, cfg, {"body": model.body}, log=logs.append).run(_data(8, 1), _data(8, 2))
    assert all(c.spiking for c in g.components["body"].cells)  # under any target it can reach: all spiking
    fit = g.settings["energy_fit"]
    assert fit["after_mj"] <= fit["before_mj"] and any("derived within the energy target" in line for line in logs)
