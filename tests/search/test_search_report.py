"""The "long enough to decide" report: margins of every decision against the noise of N Adam steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from stereo_snn.search import BilevelConfig, Searcher, SpikingTrellis, TrellisConfig, noise_margin, search_report

CFG = TrellisConfig(dim=2, in_channels=1, channels=2, layers=2, steps=2, levels=2, out_level=0)


def _batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(2, n, 1, 6, 6, generator=g) < 0.3).float()
    y = (x[:, :, :, :3].mean(dim=(0, 2, 3, 4)) > x[:, :, :, 3:].mean(dim=(0, 2, 3, 4))).long()
    return [(x[:, j : j + 4], y[j : j + 4]) for j in range(0, n, 4)]


def test_noise_margin_grows_with_the_square_root_of_the_steps():
    assert noise_margin(0.01, 72) == pytest.approx(2 * math.sqrt(2) * math.sqrt(1e-6 + 1e-4 * 72))
    assert noise_margin(0.01, 288) / noise_margin(0.01, 72) == pytest.approx(2.0, rel=1e-3)
    assert noise_margin(0.01, 0) == pytest.approx(2 * math.sqrt(2) * 1e-3)  # only the initial spread


def test_a_too_short_search_warns_once_and_records_the_summary():
    torch.manual_seed(0)
    net = SpikingTrellis(CFG)
    logs: list[str] = []
    searcher = Searcher(
        net,
        lambda m, b: nn.functional.cross_entropy(m(b[0]).mean(dim=(0, 3, 4))[:, :2], b[1]),  # 2 channels as logits
        BilevelConfig(epochs=2, warmup_epochs=1, lr=0.05, arch_lr=0.05),
        {"body": net},
        log=logs.append,
    )
    g = searcher.run(_batches(4, 1), _batches(4, 2))
    assert searcher.arch_steps == 1  # one batch pair after the warm-up epoch: 2 * arch_lr at most
    warnings = [line for line in logs if line.startswith("warning:")]
    assert len(warnings) == 1 and "too short to decide" in warnings[0] and "after 1 architecture step at" in warnings[0]
    summary = g.settings["search_report"]
    assert summary["long_enough"] is False and summary["within_noise"] == summary["decisions"] > 0
    assert summary["noise_margin"] == pytest.approx(noise_margin(0.05, 1), abs=1e-6)


def test_a_clear_winner_passes_and_every_shared_edge_and_move_is_reported():
    net = SpikingTrellis(CFG)
    with torch.no_grad():
        net.arch_alpha.zero_()
        net.arch_alpha[:, CFG.candidates.index("conv_3x3_b5")] = 5.0
        net.arch_beta.zero_()
        net.arch_beta[:, :, CFG.moves.index("same")] = 5.0
        for cell in net.cells.values():
            cell.neurons.arch_type.copy_(torch.tensor([5.0, 0.0]))
            cell.neurons.arch_hybrid.copy_(torch.tensor([5.0, 0.0]))
    report = search_report({"body": net}, arch_lr=0.05, arch_steps=100)
    assert not report.within_noise() and report.summary()["long_enough"]
    assert report.headline().startswith("search decided: all")
    ops = [d for d in report.decisions if d.kind == "op"]
    assert len(ops) == 5 and all(d.where.startswith("shared cell node") for d in ops)  # one row per edge
    assert sum(d.decides for d in ops) == 4  # two kept inputs per node
    assert all(d.chosen == "conv_3x3_b5" and d.margin == pytest.approx(5.0) for d in ops)
    assert all(d.moved == pytest.approx(5.0 * 2 / 3) and d.p_chosen > 0.97 for d in ops)
    moves = [d for d in report.decisions if d.kind == "move"]
    assert [d.chosen for d in moves] == ["same"] and moves[0].margin == pytest.approx(5.0)  # layer 1 must end at 0
    assert {d.kind for d in report.decisions} == {"op", "move", "neuron", "spiking"}
    d = report.to_dict()
    assert d["summary"]["decisions"] == 4 + 1 + 2 + 2 and len(d["decisions"]) == len(report.decisions)


def test_one_undecided_row_among_clear_ones_warns_and_per_node_rows_are_per_cell():
    net = SpikingTrellis(TrellisConfig(**{**CFG.to_dict(), "alphas": "per_node", "hybrid": False}))
    with torch.no_grad():
        net.arch_beta.zero_()
        net.arch_beta[:, :, CFG.moves.index("same")] = 5.0
        for cell in net.cells.values():
            cell.arch_alpha.zero_()
            cell.arch_alpha[:, 1] = 5.0
            cell.neurons.arch_type.copy_(torch.tensor([5.0, 0.0]))
        net.cells["1_0"].arch_alpha[0, 2] = 4.99  # node 0 <- c(k-2) in the last cell: a near tie
    report = search_report({"body": net}, arch_lr=0.01, arch_steps=50)
    ops = [d for d in report.decisions if d.kind == "op"]
    assert len(ops) == 2 * 5 and {d.where.split(" node")[0] for d in ops} == {"layer 0 level 0", "layer 1 level 0"}
    (tie,) = report.within_noise()
    assert tie.where == "layer 1 level 0 node 0 <- c(k-2)" and tie.margin == pytest.approx(0.01, abs=1e-5)
    assert report.headline().startswith("warning: search too short to decide: 1 of ")


def test_a_viterbi_move_against_its_row_counts_by_the_size_of_its_margin():
    cfg = TrellisConfig(dim=2, in_channels=1, channels=2, layers=4, steps=1, levels=3, out_level=0)
    net = SpikingTrellis(cfg)
    same = cfg.moves.index("same")
    with torch.no_grad():
        net.beta_prior.zero_()  # learnt logits alone, so that the probabilities below are those of the rows
        net.arch_beta.zero_()
        net.arch_beta[0, 0, cfg.moves.index("down")] = 1.0  # the first move prefers down (p 0.73) ...
        net.arch_beta[1, 0, same] = net.arch_beta[2, 0, same] = 10.0  # ... but staying at 0 is then sure,
        # while from level 1 three moves are equally likely: the best path stays (0.27 > 0.73 / 3)
    report = search_report({"body": net}, arch_lr=0.001, arch_steps=10)
    first = next(d for d in report.decisions if d.kind == "move")
    assert net.derive().path == (0, 0, 0, 0)
    assert first.chosen == "same" and first.runner_up == "down" and first.margin == pytest.approx(-1.0)
    assert first not in report.within_noise()
