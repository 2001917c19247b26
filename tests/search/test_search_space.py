"""Ops, cells, supernet and fixed network: shapes, gradients through every op (2D and 3D), levels."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.errors import ConfigError
from stereo_snn.search import ALL_CANDIDATES, OPS, CellNeurons, NodeActivation, SpikingTrellis, TrellisConfig, make_op
from stereo_snn.spiking import NeuronConfig


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", ALL_CANDIDATES)
def test_every_op_keeps_shape_and_passes_gradient(name, dim, make_spikes):
    op = make_op(name, 3, dim)
    shape = (2, 2, 3) + (6,) * dim
    x = make_spikes(*shape).requires_grad_()
    y = op(x)
    assert y.shape == x.shape
    y.pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for p in op.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    if name != "skip_connect":
        k = 5 if name == "conv_5x5" else 3
        assert op.last_macs == 3 * 3 * k**dim * 6**dim


def test_grouped_membrane_routes_each_ops_temperature():
    # two currents at one membrane; group b=1 vs b=5: forward identical, gradients per group
    cell = CellNeurons(("lif",), NeuronConfig(), 1, search=False)
    act = NodeActivation(cell, (1.0, 5.0))
    a = torch.full((1, 1, 1), 0.2, requires_grad=True)
    b = torch.full((1, 1, 1), 0.2, requires_grad=True)
    out = act([(a, 1.0), (b, 5.0)])
    assert float(out.detach()) == 0.0  # u = 0.4 < 0.5
    out.sum().backward()
    x = torch.tensor(-0.1)
    ref = lambda t: t / (2 * torch.tanh(torch.tensor(t / 2))) * (1 - torch.tanh(t * x) ** 2)  # noqa: E731
    assert float(a.grad) == pytest.approx(float(ref(1.0)), rel=1e-5)
    assert float(b.grad) == pytest.approx(float(ref(5.0)), rel=1e-5)


def _tiny(dim: int, **kw) -> TrellisConfig:
    base = dict(dim=dim, in_channels=2, channels=2, layers=3, steps=2, levels=3)
    base.update(kw)
    return TrellisConfig(**base)


@pytest.mark.parametrize("dim,size", [(2, (8, 8)), (3, (4, 8, 8))])
def test_supernet_forward_backward_reaches_every_arch_parameter(dim, size, make_spikes):
    net = SpikingTrellis(_tiny(dim, candidates=ALL_CANDIDATES))
    x = make_spikes(2, 2, 2, *size)
    y = net(x)
    assert y.shape == (2, 2, net.out_channels) + size
    loss = y.mean() + 1e-6 * net.expected_energy()
    loss.backward()
    assert net.arch_parameters()
    for p in net.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert net.expected_energy() > 0


def test_levels_and_output_level_sizes(make_spikes):
    net = SpikingTrellis(_tiny(2, layers=3, out_level=1, stem_stride=3, moves=("down", "same")))
    assert net.valid == [[0, 1], [0, 1], [1]]
    y = net(make_spikes(1, 1, 2, 13, 10))
    assert y.shape == (1, 1, net.out_channels, 3, 2)  # ceil(13/3)=5 -> 3 ; ceil(10/3)=4 -> 2
    assert net.out_channels == 2 * 2 * 2


def test_fixed_network_builds_only_the_kept_ops(make_spikes):
    net = SpikingTrellis(_tiny(2))
    g = net.derive()
    fixed = SpikingTrellis.from_genotype(g)
    assert not fixed.is_supernet and fixed.arch_parameters() == []
    n_ops = sum(len(node) for node in fixed.cells["0"].node_ops)
    assert n_ops == 2 + 2  # two nodes x two kept edges
    y = fixed(make_spikes(2, 1, 2, 8, 8))
    assert y.shape[2] == fixed.out_channels
    assert sum(p.numel() for p in fixed.parameters()) < sum(p.numel() for p in net.parameters())


def test_unreachable_output_level_and_bad_input_raise():
    with pytest.raises(ConfigError, match="out_level"):
        SpikingTrellis(_tiny(2, layers=1, out_level=2))
    net = SpikingTrellis(_tiny(2, layers=1))
    with pytest.raises(ConfigError, match="input shape"):
        net(torch.zeros(1, 1, 3, 8, 8))
    with pytest.raises(ConfigError, match="unknown op"):
        _tiny(2, candidates=("skip_connect", "conv_9x9"))
    assert set(OPS) >= {"skip_connect", "conv_3x3_b3", "conv_3x3_b5", "conv_5x5", "dil_conv_3x3"}


def test_ann_twin_of_a_supernet_and_genotype_config_mismatch(make_spikes):
    from stereo_snn.search import ann_twin
    from stereo_snn.spiking import spiking_modules

    net = SpikingTrellis(_tiny(2, layers=2))
    twin = ann_twin(net)
    assert spiking_modules(twin) == []
    y = twin(make_spikes(2, 1, 2, 8, 8))
    assert y.shape[2] == net.out_channels and not set(torch.unique(y.detach()).tolist()) <= {0.0, 1.0}
    g = net.derive()
    with pytest.raises(ConfigError, match="different config"):
        SpikingTrellis(_tiny(2, layers=2, channels=4), g)


def test_node_state_does_not_leak_between_calls(make_spikes):
    torch.manual_seed(0)
    net = SpikingTrellis.from_genotype(SpikingTrellis(_tiny(2, layers=2)).derive())
    x = make_spikes(2, 1, 2, 8, 8)
    a = net(x)
    b = net(x)  # no reset in between: every activation starts each sequence from rest
    assert torch.equal(a, b)
