"""Measured energy report (spikingjelly op counters) and the ANN twin."""

from __future__ import annotations

import json

import torch

from stereo_snn.search import SpikingTrellis, TrellisConfig, ann_twin, energy_report
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
