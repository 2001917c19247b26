"""The memory-saving search modes: partial channels, sampled ops, checkpointed cells, autocast."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from stereo_snn.errors import ConfigError
from stereo_snn.search import (
    BilevelConfig,
    DGSConfig,
    MemoryConfig,
    Searcher,
    SpikingTrellis,
    SurrogateSearch,
    TrellisConfig,
    split_parameters,
)
from stereo_snn.search.cell import Signal, channel_shuffle, pick_op
from stereo_snn.spiking import reset

CFG = TrellisConfig(dim=2, in_channels=2, channels=4, layers=2, steps=2, levels=2)


class _Net(nn.Module):
    def __init__(self, memory: MemoryConfig | None = None):
        super().__init__()
        self.body = SpikingTrellis(CFG, memory=memory)
        self.head = nn.Linear(self.body.out_channels, 2)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(0, 3, 4)))


def _loss(model, batch):
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


def _batch(make_spikes, seed):
    return make_spikes(3, 4, 2, 8, 8, seed=seed), torch.tensor([0, 1, 1, 0])


def _first_cell(net):
    return next(iter(net.body.cells.values()))


def test_partial_channels_of_one_is_the_full_mixed_op(make_spikes):
    cell = _first_cell(_Net(MemoryConfig(partial_channels=1)))
    x = make_spikes(3, 2, 4, 6, 6)
    row = torch.softmax(torch.randn(3), 0)
    terms, energy = cell.mixed_edge(0, row, Signal(x, 0.9))
    mixed = sum(t for t, _ in terms)
    expected = sum(row[k] * op(x) for k, op in enumerate(cell.edges[0]))
    assert torch.equal(mixed, expected)
    macs = sum(float(row[k]) * op.last_macs * 3 * 0.9 for k, op in enumerate(cell.edges[0]))
    assert float(energy) == pytest.approx(macs)


def test_partial_channels_send_one_in_k_channels_through_the_ops_and_bypass_the_rest(make_spikes):
    cell = _first_cell(_Net(MemoryConfig(partial_channels=2)))
    seen = []
    for op in cell.edges[0]:
        op.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[2]))
    x = make_spikes(3, 2, 4, 6, 6)
    row = torch.softmax(torch.randn(3), 0)
    terms, energy = cell.mixed_edge(0, row, Signal(x, 0.9))
    assert seen == [2, 2, 2]  # every op sees C/K channels
    mixed = sum(t for t, _ in terms)
    # the shuffle puts the ops' part on channels 0, 2 and the bypassed input channels 2, 3 on 1, 3
    assert torch.equal(mixed[:, :, 1], x[:, :, 2]) and torch.equal(mixed[:, :, 3], x[:, :, 3])
    ops_part = sum(row[k] * op(x[:, :, :2]) for k, op in enumerate(cell.edges[0]))
    assert torch.allclose(mixed[:, :, 0::2], ops_part)
    full_width = sum(float(row[k]) * op.last_macs * 4 * 3 * 0.9 for k, op in enumerate(cell.edges[0]))
    assert float(energy) == pytest.approx(full_width)  # priced as the full-width op


def test_channel_shuffle_interleaves_the_blocks():
    x = torch.arange(6.0).view(1, 1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert torch.equal(channel_shuffle(x, 1), x)


def test_a_sampled_edge_runs_one_op_with_weight_one_and_a_gradient_for_every_op_weight(make_spikes):
    cell = _first_cell(_Net(MemoryConfig(sample_ops=True)))
    calls = []
    for k, op in enumerate(cell.edges[0]):
        op.register_forward_hook(lambda m, a, o, k=k: calls.append(k))
    logits = torch.randn(3, requires_grad=True)
    row = torch.softmax(logits, 0)
    terms, energy = cell.mixed_edge(0, row, Signal(make_spikes(3, 2, 4, 6, 6), 0.9))
    assert len(calls) == 1 and len(terms) == 1
    k, w = pick_op(row, 1.0, noise=False)
    assert float(w.detach()) == pytest.approx(1.0) and k == int(row.argmax())
    (terms[0][0].sum() + energy).backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad != 0).all()
    cell.eval()
    calls.clear()
    cell.mixed_edge(0, row.detach(), Signal(make_spikes(3, 2, 4, 6, 6), 0.9))
    assert calls == [int(row.argmax())]  # eval: the strongest op, no noise


@pytest.mark.parametrize(
    "memory, amp",
    [
        (MemoryConfig(partial_channels=2), False),
        (MemoryConfig(sample_ops=True, gumbel_tau=0.5), False),
        (MemoryConfig(checkpoint_cells=True), False),
        (MemoryConfig(partial_channels=2, sample_ops=True, checkpoint_cells=True), True),
    ],
    ids=["partial", "sample", "checkpoint", "all+amp"],
)
def test_each_memory_mode_gives_a_working_search_step(make_spikes, memory, amp):
    model = _Net(memory)
    searcher = Searcher(
        model,
        _loss,
        BilevelConfig(epochs=1, warmup_epochs=0, energy_weight=0.5, amp=amp),
        {"body": model.body},
        log=lambda s: None,
    )
    before = [p.detach().clone() for p in searcher.arch]
    out = searcher.step(_batch(make_spikes, 1), _batch(make_spikes, 2), epoch=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values())
    for p in searcher.arch + searcher.weights:
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()
    alphas = [p for n, p in model.named_parameters() if n.endswith("arch_alpha")]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in alphas)
    assert any(not torch.equal(p, b) for p, b in zip(searcher.arch, before))
    genotype = searcher.derive()
    assert len(genotype.components["body"].cells) == CFG.layers
    fixed = SpikingTrellis.from_genotype(genotype.components["body"])  # the full-width derived network
    assert fixed(_batch(make_spikes, 3)[0]).shape[2] == model.body.out_channels


@pytest.mark.parametrize("sample", [False, True])
def test_checkpointed_cells_give_the_same_loss_gradients_and_batchnorm_statistics(make_spikes, sample):
    torch.manual_seed(0)
    plain = _Net(MemoryConfig(sample_ops=sample))
    ckpt = _Net(MemoryConfig(sample_ops=sample, checkpoint_cells=True))
    ckpt.load_state_dict(plain.state_dict())
    results = []
    for net in (plain, ckpt):
        torch.manual_seed(1)  # the same Gumbel samples
        reset(net)
        loss = _loss(net, _batch(make_spikes, 1)) + 1e-6 * net.body.expected_energy()
        params = list(net.parameters())
        grads = torch.autograd.grad(loss, params, allow_unused=True)  # as the Searcher does
        results.append((loss.detach(), grads, copy.deepcopy(net.state_dict())))
    (l0, g0, s0), (l1, g1, s1) = results
    assert torch.equal(l0, l1)
    for a, b in zip(g0, g1):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)
    for k in s0:  # running statistics updated once, as without checkpointing
        assert torch.equal(s0[k], s1[k]), k


def test_the_default_supernet_is_unchanged_by_the_memory_settings(make_spikes):
    torch.manual_seed(0)
    a = _Net()
    b = _Net(MemoryConfig())
    b.load_state_dict(a.state_dict())
    x = _batch(make_spikes, 1)[0]
    assert torch.equal(a(x), b(x))
    assert [p.shape for p in split_parameters(a)[0]] == [p.shape for p in split_parameters(b)[0]]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"partial_channels": 0}, "partial_channels 0"),
        ({"partial_channels": True}, "partial_channels True"),
        ({"sample_ops": "yes"}, "sample_ops"),
        ({"gumbel_tau": 0}, "gumbel_tau"),
    ],
)
def test_bad_memory_settings_are_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        MemoryConfig(**kw)


def test_partial_channels_must_divide_the_node_channels():
    with pytest.raises(ConfigError, match="partial_channels 3: must divide the 4 node channels"):
        SpikingTrellis(CFG, memory=MemoryConfig(partial_channels=3))


def test_a_dgs_round_through_checkpointed_cells_chooses_as_without(make_spikes):
    torch.manual_seed(0)
    plain = _Net()
    ckpt = _Net(MemoryConfig(checkpoint_cells=True))
    ckpt.load_state_dict(plain.state_dict())
    chosen = []
    for net in (plain, ckpt):
        dgs = SurrogateSearch(net, DGSConfig(max_batches=2))
        batches = [_batch(make_spikes, s) for s in range(4)]
        chosen.append(dgs.run(batches[:2], batches[2:], _loss))  # second-order gradients through the cells
    assert chosen[0] == chosen[1]
