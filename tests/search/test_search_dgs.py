"""DGS: moves the surrogate temperature, records history, and helps where the default b is poor."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from stereo_snn.errors import ConfigError
from stereo_snn.search import DGSConfig, SpikingTrellis, SurrogateSearch, TrellisConfig
from stereo_snn.spiking import NeuronConfig, make_neuron, reset


def _data(n: int, seed: int, bs: int = 64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, n, 8, generator=g)
    y = (x[:, :, :4].mean((0, 2)) > x[:, :, 4:].mean((0, 2))).long()
    return [(x[:, j : j + bs], y[j : j + bs]) for j in range(0, n, bs)]


class _Tiny(nn.Module):
    """Linear -> LIF -> rate -> linear. Membranes start near 0.1 (far below threshold 0.5), where a
    sharp surrogate (b = 6) passes almost no gradient."""

    def __init__(self, b: float):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(8, 16)
        nn.init.normal_(self.fc.weight, 0, 0.02)
        nn.init.constant_(self.fc.bias, 0.1)
        self.lif = make_neuron(NeuronConfig(b=b))
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.lif(self.fc(x)).mean(0))


def _loss(m, b):
    return nn.functional.cross_entropy(m(b[0]), b[1])


def _train(b: float, dgs_cfg: DGSConfig | None):
    net = _Tiny(b)
    tr, va = _data(256, 1), _data(256, 2)
    dgs = SurrogateSearch(net, dgs_cfg) if dgs_cfg else None
    opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9)
    for epoch in range(8):
        if dgs:
            dgs.maybe_run(epoch, tr, va, _loss)
        for batch in tr:
            reset(net)
            opt.zero_grad()
            _loss(net, batch).backward()
            opt.step()
    with torch.no_grad():
        reset(net)
        return sum(float(_loss(net, b)) for b in va) / len(va), dgs


def test_dgs_moves_b_and_helps_when_default_b_is_poor():
    plain, _ = _train(6.0, None)
    searched, dgs = _train(6.0, DGSConfig(every=1, start=0, max_batches=4, lr=0.05, min_evidence=0.0))
    hist = dgs.history["lif.surrogate_function"]
    assert hist[0] == 6.0 and len(hist) == 9
    assert min(hist) < 6.0
    assert all(1.0 <= b <= 6.0 for b in hist)
    assert searched < plain - 0.02


def test_dgs_schedule_and_every_layer_of_a_trellis(make_spikes):
    torch.manual_seed(0)
    net = SpikingTrellis(_one_cell(steps=1))
    xs = [(make_spikes(2, 4, 1, 6, 6, seed=s), None) for s in range(2)]
    loss = lambda m, b: m(b[0]).mean()  # noqa: E731
    dgs = SurrogateSearch(net, DGSConfig(every=2, start=1, max_batches=1, deltas=(-1.0, 0.0, 1.0), b_max=3.5))
    assert not dgs.maybe_run(0, xs, xs, loss) and not dgs.maybe_run(2, xs, xs, loss)
    assert dgs.maybe_run(1, xs, xs, loss) and dgs.maybe_run(3, xs, xs, loss)
    assert len(dgs.surrogates) >= 4  # stem, two resamples, node groups
    assert all(len(h) == 3 for h in dgs.history.values())
    assert all(1.0 <= b <= 3.5 for b in dgs.current_b().values())
    assert not any(sg.in_mixture for _, sg in dgs.surrogates)


def test_dgs_tie_keeps_current_b_and_bad_settings():
    logits = torch.zeros(5)
    bs = torch.tensor([2.6, 2.8, 3.0, 3.2, 3.4])
    assert SurrogateSearch._winner(logits, bs, 3.0) == 2
    with pytest.raises(ConfigError, match="deltas"):
        DGSConfig(deltas=(0.0,))
    with pytest.raises(ConfigError, match="no Dspike"):
        SurrogateSearch(nn.Linear(2, 2))


def test_by_default_rounds_wait_until_the_weights_have_trained():
    cfg = DGSConfig(every=5)
    assert cfg.start is None and cfg.first_epoch() == 5 and cfg.first_epoch(warmup=8) == 8
    dgs = SurrogateSearch(_Tiny(3.0), DGSConfig(every=2, max_batches=1))
    tr = _data(64, 1)
    ran = [e for e in range(7) if dgs.maybe_run(e, tr, tr, _loss)]
    assert ran == [2, 4, 6]
    dgs = SurrogateSearch(_Tiny(3.0), DGSConfig(every=2, max_batches=1))
    assert [e for e in range(7) if dgs.maybe_run(e, tr, tr, _loss, warmup=3)] == [3, 5]
    assert DGSConfig(start=0).first_epoch(warmup=3) == 0  # an explicit start is kept


def test_a_round_gets_its_batches_from_a_small_dataset_by_iterating_it_again():
    calls = []

    def loss(m, b):
        calls.append(1)
        return _loss(m, b)

    dgs = SurrogateSearch(_Tiny(3.0), DGSConfig(max_batches=5))
    dgs.run(_data(128, 1), _data(128, 2), loss)  # two batches per pass
    assert len(calls) == 2 * 5  # a held-out and a training loss per pair
    calls.clear()
    dgs.run(iter(_data(128, 1)), iter(_data(128, 2)), loss)  # one-shot iterators: one pass only
    assert len(calls) == 2 * 2


def test_searched_temperatures_of_every_group_survive_derivation_and_rebuild(tmp_path):
    from stereo_snn.search import load_genotype, save_genotype
    from stereo_snn.search.genotype import ComponentGenotype, Genotype

    torch.manual_seed(0)
    net = SpikingTrellis(dataclasses.replace(_one_cell(steps=2), alphas="per_node"))  # a draw that keeps b3 and b5 ops
    for name, m in net.named_modules():  # what a DGS round leaves behind: each group at its own b
        if hasattr(m, "set_b"):
            m.set_b({"b3": 2.4, "b5": 5.6}.get(name.split("__")[-1].split(".")[0], 2.8))
    cell = net.derive().cells[0]
    assert cell.surrogate_b == pytest.approx(2.8) and cell.group_b == pytest.approx({"b3": 2.4, "b5": 5.6})
    back = load_genotype(save_genotype(tmp_path / "g.json", Genotype({"body": net.derive()}))).components["body"]
    assert back.cells[0].group_b == pytest.approx({"b3": 2.4, "b5": 5.6})
    assert _node_temperatures(SpikingTrellis.from_genotype(back)) == {"b3": {2.4}, "b5": {5.6}, "node": {2.8}}
    # a genotype written before group_b existed keeps the ops' nominal temperatures
    old = ComponentGenotype(back.config, back.path, (dataclasses.replace(back.cells[0], group_b={}),))
    assert _node_temperatures(SpikingTrellis.from_genotype(old)) == {"b3": {3.0}, "b5": {5.0}, "node": {2.8}}


def _one_cell(steps: int) -> TrellisConfig:
    return TrellisConfig(
        dim=2,
        in_channels=1,
        channels=2,
        layers=1,
        steps=steps,
        levels=1,
        moves=("same",),
        neuron_kinds=("lif",),
        hybrid=False,
    )


def _node_temperatures(fixed: SpikingTrellis) -> dict[str, set[float]]:
    """Surrogate temperatures (rounded) of the nodes' neurons of a one-cell network, by group."""
    out: dict[str, set[float]] = {}
    for act in fixed.cells["0"].node_acts:
        for key, m in act.neurons.items():
            out.setdefault(key.split("__")[-1], set()).add(round(float(m.surrogate_function.b), 4))
    return out


def test_with_min_evidence_b_moves_only_on_a_consistent_advantage():
    # the per-pair advantage over keeping b: candidate 3 consistently ahead, candidate 0 ahead on
    # average but not consistently; below the threshold b stays
    ev = torch.zeros(5, 2)
    ev[3] = torch.tensor([0.5, 4.0])
    ev[0] = torch.tensor([0.9, 1.0])
    bs = torch.tensor([2.6, 2.8, 3.0, 3.2, 3.4])
    dgs = SurrogateSearch(_Tiny(3.0), DGSConfig(min_evidence=2.0))
    assert dgs._supported(ev, bs, 3.0, 2.0) == 3
    assert dgs._supported(ev, bs, 3.0, 5.0) == 2
    # a sharp surrogate (b = 6) far from the membranes: the evidence is consistent, b comes down
    _, moved = _train(6.0, DGSConfig(every=1, start=0, max_batches=8, lr=0.05, min_evidence=2.0))
    assert min(moved.history["lif.surrogate_function"]) < 6.0
    with pytest.raises(ConfigError, match="min_evidence"):
        DGSConfig(min_evidence=-1.0)
