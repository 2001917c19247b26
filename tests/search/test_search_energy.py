"""Measured energy report (spikingjelly op counters) and the ANN twin."""

from __future__ import annotations

import json

import pytest
import torch

from stereo_snn.search import E_AC_PJ, E_MAC_PJ, PJ_PER_MJ, SpikingTrellis, TrellisConfig, ann_twin, energy_report
from stereo_snn.spiking import AnnActivation, spiking_modules


def _fixed():
    torch.manual_seed(0)
    cfg = TrellisConfig(dim=2, in_channels=2, channels=2, layers=2, steps=2, levels=2)
    return SpikingTrellis.from_genotype(SpikingTrellis(cfg).derive())


def test_energy_report_counts_layers_and_rates(make_spikes):
    net = _fixed()
    x = torch.rand(2, 1, 2, 8, 8)  # real-valued input: the stem conv does MACs
    r = energy_report(net, x)
    assert r.macs > 0 and r.acs > 0 and r.compute_mj > 0 and r.memory_mj > 0
    assert 0 < sum(layer.energy_mj for layer in r.layers) <= r.compute_mj * (1 + 1e-9)
    stem = [layer for layer in r.layers if layer.name == "stem.seq.0"]
    assert stem and stem[0].macs > 0 and stem[0].acs == 0
    assert energy_report(net, (x > 0.5).float()).layers[0].macs == 0  # spike input: ACs only
    rated = [layer for layer in r.layers if layer.firing_rate is not None]
    assert rated and all(0.0 <= layer.firing_rate <= 1.0 for layer in rated)
    json.dumps(r.to_dict())
    table = r.table()
    assert "compute energy" in table and "memory-access term" in table and "stem.seq.0" in table
    assert net.training  # mode restored


def test_ann_twin_reports_more_energy_than_snn(make_spikes):
    net = _fixed()
    x = make_spikes(2, 1, 2, 8, 8)
    twin = ann_twin(net)
    assert spiking_modules(twin) == [] and any(isinstance(m, AnnActivation) for m in twin.modules())
    assert spiking_modules(net)  # the original is untouched
    snn, ann = energy_report(net, x), energy_report(twin, x)
    assert ann.compute_mj > snn.compute_mj
    assert ann.macs > snn.macs
    y = twin(x)
    assert y.shape == net(x).shape


def _hybrid_fixed(seed: int):
    """A fixed network with spiking and ANN cells, every candidate op, two levels."""
    from stereo_snn.search.ops import ALL_CANDIDATES

    torch.manual_seed(seed)
    cfg = TrellisConfig(dim=2, in_channels=2, channels=4, layers=3, steps=2, levels=2, candidates=ALL_CANDIDATES)
    return SpikingTrellis.from_genotype(SpikingTrellis(cfg).derive())


@pytest.mark.parametrize("seed", [0, 2])
def test_expected_energy_of_a_fixed_network_matches_the_measured_report(seed):
    # the same counting on both sides: synaptic ops at the real rates, one AC per neuron update,
    # batch norm folded; they differ only at the image border (the expected term counts every
    # kernel tap, the real network only the taps inside the image): within 5 % at 16x16
    net = _hybrid_fixed(seed)
    cells = [c.neurons.spiking for c in net.cells.values()]
    assert seed != 0 or (True in cells and False in cells)  # both kinds of cell are counted
    x = 8 * torch.rand(4, 2, 2, 16, 16, generator=torch.Generator().manual_seed(seed))  # T=4, B=2, lively input
    measured = energy_report(net, x)
    net.eval()
    with torch.no_grad():
        net(x)
    expected_mj = float(net.expected_energy()) * x.shape[1] / PJ_PER_MJ  # pJ per sample -> mJ per batch
    assert expected_mj == pytest.approx(measured.compute_mj, rel=0.05)


def test_measured_report_counts_one_ac_per_neuron_update_and_folds_batch_norm():
    net = _fixed()
    x = torch.rand(2, 1, 2, 8, 8)
    r = energy_report(net, x)
    outputs: list[int] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: outputs.append(o.numel())) for _, m in spiking_modules(net)]
    net.eval()
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    assert r.neuron_updates == sum(outputs) > 0
    neuron_rows = [layer for layer in r.layers if layer.firing_rate is not None]
    assert sum(layer.acs for layer in neuron_rows) == r.neuron_updates and all(layer.macs == 0 for layer in neuron_rows)
    assert not [layer for layer in r.layers if layer.name.endswith("seq.1")]  # the BatchNorm after each conv
    assert r.compute_mj == pytest.approx((r.macs * E_MAC_PJ + r.acs * E_AC_PJ) / PJ_PER_MJ)


class _Headed(torch.nn.Module):
    """A trellis and a conv head that reads its output, as an application puts them together."""

    def __init__(self, net: SpikingTrellis, named: bool = True):
        super().__init__()
        self.net = net
        self.head = torch.nn.Conv2d(net.out_channels, 5, kernel_size=3, padding=1)
        if named:
            net.read_by(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x).flatten(0, 1))


@pytest.mark.parametrize("last_spiking", [True, False])
def test_expected_energy_prices_the_head_that_reads_the_output_as_measured(last_spiking):
    # a spiking last cell drives the head with ACs at its firing rate, an ANN last cell with MACs;
    # both the measurement and (with read_by) the expected term count them
    import dataclasses

    torch.manual_seed(1)
    cfg = TrellisConfig(dim=2, in_channels=2, channels=4, layers=2, steps=2, levels=1)
    g = SpikingTrellis(cfg).derive()
    cells = list(g.cells)
    cells[-1] = dataclasses.replace(cells[-1], spiking=last_spiking)
    g = dataclasses.replace(g, cells=tuple(cells))
    x = 8 * torch.rand(4, 2, 2, 16, 16, generator=torch.Generator().manual_seed(3))
    model = _Headed(SpikingTrellis.from_genotype(g))
    assert model.net.output_spikes() is last_spiking
    measured = energy_report(model, x)
    model.eval()
    with torch.no_grad():
        model(x)
    expected_mj = float(model.net.expected_energy()) * x.shape[1] / PJ_PER_MJ
    assert expected_mj == pytest.approx(measured.compute_mj, rel=0.05)
    head = model.net.reader_macs((16, 16))
    assert head == 5 * model.net.out_channels * 9 * 16 * 16
    unnamed = _Headed(SpikingTrellis.from_genotype(g), named=False)
    unnamed.load_state_dict(model.state_dict())
    unnamed.eval()
    with torch.no_grad():
        unnamed(x)
    extra_pj = float(model.net.expected_energy() - unnamed.net.expected_energy())
    if last_spiking:
        assert 0 < extra_pj < 4 * head * E_AC_PJ  # ACs at the firing rate, below 1 per step
    else:
        assert extra_pj == pytest.approx(4 * head * E_MAC_PJ)  # MACs at every one of the 4 steps


def test_read_by_refuses_a_conv_that_cannot_read_the_output():
    from stereo_snn.errors import ConfigError

    net = SpikingTrellis(TrellisConfig(dim=2, in_channels=2, channels=4, layers=2, steps=2, levels=1))
    with pytest.raises(ConfigError, match="channels"):
        net.read_by(torch.nn.Conv2d(net.out_channels + 1, 1, 3))
    with pytest.raises(ConfigError, match="Conv3d"):
        net.read_by(torch.nn.Conv3d(net.out_channels, 1, 3))


def test_the_stem_is_priced_by_its_input_as_the_measurement_prices_it(make_spikes):
    # spikes drive ACs at their rate, real values MACs; `spikes` overrides the binary check (a
    # supernet fed by another supernet's relaxed output)
    from stereo_snn.search.activation import input_price

    s = make_spikes(2, 3, 2, 8, 8, p=0.25)
    assert input_price(s) == pytest.approx(float(s.mean()) * E_AC_PJ)
    assert input_price(0.5 * s) == E_MAC_PJ
    assert input_price(s, spikes=False) == E_MAC_PJ
    assert input_price(0.9 * s, spikes=True) == pytest.approx(0.9 * float(s.mean()) * E_AC_PJ)
    net = _fixed()
    with torch.no_grad():
        net(s)
        spiking = float(net.expected_energy())
        net(s, spikes=False)
        real = float(net.expected_energy())
    assert real - spiking == pytest.approx(net.stem.last_macs * 2 * (E_MAC_PJ - float(s.mean()) * E_AC_PJ), rel=1e-4)
