"""Neurons and the Dspike surrogate: SpikeDHS update on hand-computed values, gradient formula, reset."""

from __future__ import annotations

import math

import pytest
import torch

from stereo_snn.errors import ConfigError
from stereo_snn.spiking import (
    AnnActivation,
    ChannelLIFNode,
    Dspike,
    NeuronConfig,
    firing_rates,
    make_neuron,
    neuron_tau,
    reset,
    spiking_modules,
)


def test_lif_reproduces_spikedhs_update_by_hand():
    n = make_neuron(NeuronConfig())
    x = torch.tensor([0.3, 0.3, 0.1, 0.6, 0.2]).view(5, 1, 1)
    out = n(x).flatten().tolist()
    # u1=.3 ; u2=.06+.3=.36 ; u3=.072+.1=.172 ; u4=.0344+.6=.6344 -> spike, reset ; u5=0+.2
    assert out == [0.0, 0.0, 0.0, 1.0, 0.0]
    u, o, ref = 0.0, 0.0, []
    for i in x.flatten().tolist():
        u = 0.2 * u * (1 - o) + i
        o = float(u >= 0.5)
        ref.append(o)
    assert out == ref
    assert float(n.v.flatten()[0]) == pytest.approx(0.2)


def test_dspike_gradient_matches_formula():
    b = 3.0
    x = torch.linspace(-0.8, 0.8, 33, requires_grad=True)
    y = Dspike(b)(x)
    assert torch.equal(y, (x >= 0).float())
    y.sum().backward()
    xs = x.detach()
    ref = b / (2 * math.tanh(b / 2)) * (1 - torch.tanh(b * xs) ** 2) * (xs.abs() < 0.5)
    assert torch.allclose(x.grad, ref, atol=1e-6)
    assert x.grad[0] == 0 and x.grad[16] == pytest.approx(b / (2 * math.tanh(b / 2)))


def test_dspike_mixture_backward_and_second_order():
    sg = Dspike(2.0)
    logits = torch.zeros(2, requires_grad=True)
    sg.set_mixture(torch.tensor([1.0, 5.0]), logits)
    x = torch.linspace(-0.4, 0.4, 9, requires_grad=True)
    (g,) = torch.autograd.grad(sg(x).sum(), x, create_graph=True)
    d1, d5 = Dspike(1.0), Dspike(5.0)
    x1, x5 = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    d1(x1).sum().backward()
    d5(x5).sum().backward()
    assert torch.allclose(g, 0.5 * x1.grad + 0.5 * x5.grad, atol=1e-6)
    (ga,) = torch.autograd.grad(g.sum(), logits)
    assert ga.abs().sum() > 0 and ga.sum().abs() < 1e-5  # softmax gradient sums to zero
    sg.clear_mixture()
    assert not sg.in_mixture


def test_each_neuron_has_its_own_surrogate_and_b_in_state_dict():
    a, b = make_neuron(NeuronConfig(b=2.0)), make_neuron(NeuronConfig(b=2.0))
    assert a.surrogate_function is not b.surrogate_function
    assert "surrogate_function.b" in a.state_dict()


@pytest.mark.parametrize("kind", ["lif", "plif", "clif", "ann"])
def test_kinds_multistep_shapes_and_tau(kind):
    n = make_neuron(NeuronConfig(kind=kind, tau=2.0), channels=3)
    y = n(torch.rand(4, 2, 3, 5, 5))
    assert y.shape == (4, 2, 3, 5, 5)
    if kind == "ann":
        assert isinstance(n, AnnActivation) and neuron_tau(n) is None
    else:
        assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
        tau = neuron_tau(n)
        assert (tau == pytest.approx([2.0] * 3)) if kind == "clif" else tau == pytest.approx(2.0)


def test_clif_learns_per_channel_tau():
    n = ChannelLIFNode(2, init_tau=2.0, v_threshold=0.5, surrogate_function=Dspike())
    x = torch.rand(4, 3, 2, 6) * 0.6
    x[:, :, 1] = 0.0  # channel 1 gets no input: its tau gets no gradient
    n(x).sum().backward()
    assert n.w.grad[0] != 0 and n.w.grad[1] == 0


def test_reset_clears_state_and_rebuilt_invalidates_cache():
    net = torch.nn.Sequential(make_neuron(NeuronConfig()))
    first = net(torch.full((2, 1, 1), 0.3)).sum()
    assert net[0].v.abs().sum() > 0
    reset(net)
    assert float(net[0].v if isinstance(net[0].v, float) else net[0].v.abs().sum()) == 0
    net.append(make_neuron(NeuronConfig()))
    net(torch.full((2, 1, 1), 0.3))
    reset(net, rebuilt=True)
    assert all(float(m.v if isinstance(m.v, float) else m.v.abs().sum()) == 0 for m in net)
    assert first == 0


def test_firing_rates_and_spiking_modules():
    net = torch.nn.Sequential(make_neuron(NeuronConfig()), AnnActivation())
    rates = firing_rates(net, lambda: net(torch.full((4, 1, 10), 0.6)))
    assert rates == {"0": 1.0}
    assert [n for n, _ in spiking_modules(net)] == ["0"]


def test_bad_neuron_settings_raise_config_error():
    with pytest.raises(ConfigError, match="tau"):
        NeuronConfig(tau=1.0)
    with pytest.raises(ConfigError, match="kind"):
        NeuronConfig(kind="izhikevich")
    with pytest.raises(ConfigError, match="channel count"):
        make_neuron(NeuronConfig(kind="clif"))
