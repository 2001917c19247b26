"""Searcher.step computes only the gradients each half needs: the same updates as full backward passes."""

from __future__ import annotations

import copy

import torch
from torch import nn

from stereo_snn.search import BilevelConfig, Searcher, SpikingTrellis, TrellisConfig, split_parameters
from stereo_snn.spiking import reset


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = SpikingTrellis(TrellisConfig(dim=2, in_channels=1, channels=2, layers=2, steps=2, levels=2))
        self.head = nn.Linear(self.body.out_channels, 2)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(0, 3, 4)))


def _loss(model, batch):
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


def test_step_matches_full_backward_reference(make_spikes):
    torch.manual_seed(0)
    model = _Net()
    ref = copy.deepcopy(model)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = BilevelConfig(epochs=1, warmup_epochs=0, energy_weight=0.5, arch_lr=0.05, lr=0.05)
    batches = [(make_spikes(2, 4, 1, 6, 6, seed=s), torch.tensor([0, 1, 1, 0])) for s in range(4)]
    searcher = Searcher(model, _loss, cfg, {"body": model.body}, log=lambda s: None)

    # the reference: plain backward() over everything, as a textbook first-order step
    weights, arch = split_parameters(ref)
    w_opt = torch.optim.SGD(weights, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    a_opt = torch.optim.Adam(arch, lr=cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay)
    e_ref = None
    for tb, vb in zip(batches[:2], batches[2:]):
        out = searcher.step(tb, vb, epoch=0)
        reset(ref)
        a_opt.zero_grad(set_to_none=True)
        val = _loss(ref, vb)
        e = ref.body.expected_energy()
        e_ref = e.detach() if e_ref is None else e_ref
        (val + cfg.energy_weight * e / e_ref).backward()
        a_opt.step()
        reset(ref)
        w_opt.zero_grad(set_to_none=True)
        loss = _loss(ref, tb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(weights, cfg.grad_clip)
        w_opt.step()
        assert out["loss"] == float(loss.detach()) and out["val_loss"] == float(val.detach())
    moved = 0
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(p, q), name
        moved += int(not torch.equal(p, start[name]))
    assert moved > 0
