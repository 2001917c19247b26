"""One stacked membrane loop for a node's surrogate groups equals separate neuron runs."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.search import CellNeurons, NodeActivation
from stereo_snn.spiking import NeuronConfig, firing_rates, grouped_multi_step, make_neuron

BS = (3.0, 5.0, 2.0)


def _group(kind: str, channels: int = 3) -> list[torch.nn.Module]:
    cell = CellNeurons((kind,), NeuronConfig(), channels, search=False, tau=1.7)
    return [cell.make(kind, b) for b in BS]


def _inputs(seed: int, shape=(5, 2, 3, 4, 4)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(*shape, generator=g) * 0.9  # the membrane crosses 0.5 often
    return [base.clone().requires_grad_() for _ in BS]


def _separate(mods, xs):
    outs = []
    for m, x in zip(mods, xs):
        m.reset()
        outs.append(m(x))
    return torch.cat(outs, dim=1)


def _grads(mods, xs, run, create_graph=False):
    y = run(mods, xs)
    w = torch.linspace(0.5, 1.5, y[:, :2].numel()).view_as(y[:, :2])
    loss = sum(((y[:, 2 * i : 2 * i + 2] * w) * (i + 1)).sum() for i in range(len(xs)))
    params = [xs[0], xs[1], xs[2]] + ([mods[0].w] if hasattr(mods[0], "w") else [])
    return y, torch.autograd.grad(loss, params, create_graph=create_graph)


@pytest.mark.parametrize("kind", ["lif", "plif", "clif"])
def test_stacked_groups_equal_separate_runs(kind):
    mods = _group(kind)
    y_sep, g_sep = _grads(mods, _inputs(0), _separate)
    y_stk, g_stk = _grads(mods, _inputs(0), grouped_multi_step)
    assert 0 < float(y_sep.detach().mean()) < 1
    assert torch.equal(y_stk, y_sep)
    for a, b in zip(g_stk[:3], g_sep[:3]):  # per-group input gradients: each with its own b
        assert torch.equal(a, b)
    assert not torch.equal(g_sep[0], g_sep[1])  # the temperatures really differ
    if kind != "lif":  # the shared learnable tau: summed over groups (float summation order aside)
        assert torch.allclose(g_stk[3], g_sep[3], rtol=1e-5, atol=1e-7)


def test_stacked_groups_follow_dgs_mixtures_to_second_order():
    # float64: the stacked and separate runs then agree to ~1e-12 (in float32 the summation order
    # of the large reductions shows, and this signal is a difference of large terms)
    def run(fn):
        mods = [m.double() for m in _group("plif")]
        logits = []
        for i, m in enumerate(mods):
            lg = torch.tensor([0.1 * i, -0.2, 0.3], dtype=torch.float64, requires_grad=True)
            m.surrogate_function.set_mixture(torch.tensor([2.0, 3.0, 4.0 + i], dtype=torch.float64), lg)
            logits.append(lg)
        xs = [x.detach().double().requires_grad_() for x in _inputs(1)]
        _, g = _grads(mods, xs, fn, create_graph=True)
        inner = sum((v * v).sum() for v in g)
        return torch.autograd.grad(inner, logits)

    for a, b in zip(run(grouped_multi_step), run(_separate)):
        assert a.abs().sum() > 0
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)


def test_unstackable_groups_fall_back():
    xs = _inputs(2)
    mixed = [make_neuron(NeuronConfig(kind="lif", b=3.0)), make_neuron(NeuronConfig(kind="lif", tau=2.0, b=5.0))]
    assert grouped_multi_step(mixed, xs[:2]) is None  # different dynamics
    kinds = [make_neuron(NeuronConfig(kind="lif")), make_neuron(NeuronConfig(kind="plif"))]
    assert grouped_multi_step(kinds, xs[:2]) is None
    mods = _group("lif")
    handle = mods[1].register_forward_hook(lambda m, i, o: None)
    assert grouped_multi_step(mods, xs) is None  # a hooked module must see its own call
    handle.remove()
    assert grouped_multi_step(mods, xs) is not None


def test_node_activation_monitors_still_see_every_group_neuron():
    cell = CellNeurons(("lif", "plif"), NeuronConfig(), 3, search=True, hybrid=True)
    act = NodeActivation(cell, (3.0, 5.0, None))
    xs = _inputs(3)
    terms = [(xs[0], 3.0), (xs[1], 5.0), (xs[2], None)]
    plain = act(terms)
    rates = firing_rates(act, lambda: act(terms))
    assert len(rates) == 6 and all(0 < r < 1 for r in rates.values())
    monitored = act(terms)
    assert torch.equal(plain, monitored)


def test_node_activation_equals_the_per_group_reference():
    # the stacked path against the definition: each group's neuron on the sum with the other
    # groups' currents detached, o_1 + sum (o_g - o_g.detach()), mixed over kinds and with ReLU
    cell = CellNeurons(("lif", "plif"), NeuronConfig(), 3, search=True, hybrid=True)
    act = NodeActivation(cell, (3.0, 5.0, None))
    groups = (3.0, 5.0, None)
    currents = _inputs(4) + _inputs(5)[:1]
    tags = [3.0, 5.0, None, 3.0]

    def reference():
        q, p = cell.kind_probs(), cell.spike_prob()
        total = currents[0] + currents[1] + currents[2] + currents[3]
        spk = 0
        for ki, kind in enumerate(cell.kinds):
            o = None
            for g in groups:
                u = None
                for c, t in zip(currents, tags):
                    term = c if t == g else c.detach()
                    u = term if u is None else u + term
                m = act.neurons[f"{kind}__{'node' if g is None else f'b{g:g}'}"]
                m.reset()
                og = m(u)
                o = og if o is None else o + (og - og.detach())
            spk = spk + q[ki] * o
        return p * spk + (1 - p) * torch.relu(total)

    def grads(run):
        out = run()
        loss = (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum()
        return out, torch.autograd.grad(loss, currents + [cell.plif_w, cell.arch_type, cell.arch_hybrid])

    out_ref, g_ref = grads(reference)
    out_new, g_new = grads(lambda: act(list(zip(currents, tags))))
    assert torch.equal(out_new, out_ref)
    for a, b in zip(g_new, g_ref):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(g_ref[0], g_ref[1])  # b=3 and b=5 currents get different gradients
    assert torch.allclose(g_ref[0], g_ref[3])  # two currents of one group get the same gradient
