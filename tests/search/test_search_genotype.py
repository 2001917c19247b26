"""Decoding from hand-set weights (cells and Viterbi), genotype JSON round trip, malformed files."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest
import torch

from stereo_snn.errors import ConfigError, GenotypeError
from stereo_snn.search import (
    CellGenotype,
    ComponentGenotype,
    Genotype,
    SpikingTrellis,
    TrellisConfig,
    decode_cell,
    genotype_to_dict,
    load_genotype,
    save_genotype,
    viterbi,
)
from stereo_snn.search.config import MOVES
from stereo_snn.search.sampling import random_path
from stereo_snn.search.trellis import path_counts

CANDS = ("skip_connect", "conv_3x3_b3", "conv_3x3_b5")


def test_decode_cell_follows_hand_set_alphas():
    a = torch.zeros(5, 3)  # steps=2: node0 <- {0,1}, node1 <- {0,1,2}
    a[0] = torch.tensor([9.0, 0.0, 0.0])  # strong skip only: weakest non-skip
    a[1] = torch.tensor([0.0, 0.0, 3.0])
    a[2] = torch.tensor([0.0, 2.0, 0.0])
    a[3] = torch.tensor([5.0, 0.0, 1.0])  # argmax skip, but its non-skip (b5) is moderately strong
    a[4] = torch.tensor([0.0, 4.0, 0.0])
    edges = decode_cell(a, CANDS, 2)
    assert edges[0] == ((0, "skip_connect"), (1, "conv_3x3_b5"))  # node 0 has only two inputs: both kept
    assert edges[1] == ((0, "conv_3x3_b3"), (2, "conv_3x3_b3"))  # edge 1 (b5 ~0.02) loses to edges 0 and 2


def test_decode_cell_ranks_by_non_skip_not_by_skip():
    a = torch.zeros(5, 3)
    a[2] = torch.tensor([0.0, 1.0, 0.0])
    a[3] = torch.tensor([8.0, 0.0, 0.0])  # very strong skip, weak convs -> not kept
    a[4] = torch.tensor([0.0, 0.0, 2.0])
    assert decode_cell(a, CANDS, 2)[1] == ((0, "conv_3x3_b3"), (2, "conv_3x3_b5"))


def test_decode_cell_max_skip_replaces_the_closest_skips_by_their_best_other_op():
    a = torch.zeros(5, 3)  # steps=2: node0 <- {0,1}, node1 <- {0,1,2}
    a[0] = torch.tensor([3.0, 0.0, 2.5])  # skip, b5 close behind
    a[1] = torch.tensor([6.0, 1.0, 0.0])  # skip by far
    a[2] = torch.tensor([4.0, 1.0, 0.0])  # weakest non-skip of node 1: not kept
    a[3] = torch.tensor([2.0, 1.0, 0.0])  # skip, b3 in between
    a[4] = torch.tensor([5.0, 3.0, 0.0])
    free = decode_cell(a, CANDS, 2)
    assert [op for node in free for _, op in node].count("skip_connect") == 4  # all skips: computes nothing
    assert decode_cell(a, CANDS, 2, max_skip=4) == free
    # one skip left: the one whose best other op is furthest behind (edge 1, margin ~0.99)
    capped = decode_cell(a, CANDS, 2, max_skip=1)
    assert capped == (((0, "conv_3x3_b5"), (1, "skip_connect")), ((1, "conv_3x3_b3"), (2, "conv_3x3_b3")))
    assert [e for node in decode_cell(a, CANDS, 2, max_skip=0) for e in node] == [
        (0, "conv_3x3_b5"),
        (1, "conv_3x3_b3"),
        (1, "conv_3x3_b3"),
        (2, "conv_3x3_b3"),
    ]
    # the edges kept never change, only their ops
    assert [[i for i, _ in node] for node in capped] == [[i for i, _ in node] for node in free]
    with pytest.raises(ConfigError, match="max_skip"):
        decode_cell(a, CANDS, 2, max_skip=-1)
    with pytest.raises(ConfigError, match="max_skip"):
        TrellisConfig(dim=2, in_channels=2, channels=4, layers=1, max_skip=-1)


def test_viterbi_picks_the_most_probable_path_not_the_greedy_one():
    moves = ("down", "same", "up")
    neg = -math.inf
    lp = torch.full((3, 3, 3), neg)
    # layer 0 out of the stem (level 0): down 0.6 -> level 1, same 0.4 -> level 0
    lp[0, 0, 0], lp[0, 0, 1] = math.log(0.6), math.log(0.4)
    # layer 1: from level 1 only weak ways back; from level 0 a sure path
    lp[1, 1, 0], lp[1, 1, 1], lp[1, 1, 2] = math.log(0.8), math.log(0.1), math.log(0.1)
    lp[1, 0, 1] = 0.0
    # layer 2 must end at level 0
    lp[2, 0, 1] = 0.0
    lp[2, 1, 2] = 0.0
    lp[2, 2, 2] = 0.0
    # greedy: 0->1 (0.6) then 1->1/0 (0.1) => 0.06 ; best: 0->0 (0.4) ->0 (1) ->0 (1) => 0.4
    assert viterbi(lp, moves, 0) == [0, 0, 0]
    lp[0, 0, 1] = math.log(0.05)
    lp[1, 1, 2] = math.log(0.9)
    assert viterbi(lp, moves, 0) == [1, 0, 0]


def _all_paths(cfg: TrellisConfig) -> list[tuple[int, ...]]:
    deltas = [MOVES[m] for m in cfg.moves]
    paths = [()]
    for _ in range(cfg.layers):
        paths = [p + (s,) for p in paths for d in deltas if 0 <= (s := (p[-1] if p else 0) + d) < cfg.levels]
    return [p for p in paths if p[-1] == cfg.out_level]


@pytest.mark.parametrize(
    "levels, layers, out_level, moves",
    [(2, 3, 1, ("down", "same")), (3, 4, 0, ("down", "same", "up")), (4, 6, 3, ("down", "same", "up"))],
)
def test_before_any_learning_every_path_is_equally_likely(levels, layers, out_level, moves):
    cfg = TrellisConfig(
        dim=2, in_channels=1, channels=2, layers=layers, steps=1, levels=levels, out_level=out_level, moves=moves
    )
    net = SpikingTrellis(cfg)
    with torch.no_grad():
        net.arch_beta.zero_()
    probs = net.move_probs()
    paths = _all_paths(cfg)
    assert sum(path_counts(cfg)[0].values()) == len(paths) > 2
    for path in paths:
        p, prev = 1.0, 0
        for l, d in enumerate(path):
            p *= float(probs.detach()[l, prev, cfg.moves.index(next(m for m in cfg.moves if prev + MOVES[m] == d))])
            prev = d
        assert p == pytest.approx(1 / len(paths))
    rng = random.Random(0)  # random architectures draw their paths from the same uniform prior
    drawn = Counter(random_path(cfg, rng) for _ in range(4000))
    assert set(drawn) == set(paths)
    assert max(abs(n / 4000 - 1 / len(paths)) for n in drawn.values()) < 0.03


def test_the_derived_path_follows_the_learnt_evidence_not_the_trellis_shape():
    # with zero logits per node, going down at once would hold half the mass (one choice on the
    # way) against a quarter for each path that stays first (two choices)
    cfg = TrellisConfig(
        dim=2, in_channels=1, channels=2, layers=3, steps=1, levels=2, out_level=1, moves=("down", "same")
    )
    net = SpikingTrellis(cfg)
    down, same = cfg.moves.index("down"), cfg.moves.index("same")
    with torch.no_grad():
        net.arch_beta.zero_()
        net.arch_beta[0, 0, same] = 0.01  # a little evidence for staying at full resolution
    assert net.derive().path[0] == 0
    with torch.no_grad():
        net.arch_beta[0, 0, same], net.arch_beta[0, 0, down] = -0.3, 0.3  # clear evidence for going down
        net.arch_beta[1, 0, same] = 0.5
    assert net.derive().path == (1, 1, 1)  # p 0.55 against 0.45 * 0.62 for the best path that stays


@pytest.mark.parametrize("alphas", ["shared", "per_node"])
def test_supernet_derive_uses_hand_set_betas(alphas):
    cfg = TrellisConfig(dim=2, in_channels=1, channels=2, layers=3, steps=1, levels=3, alphas=alphas)
    net = SpikingTrellis(cfg)
    with torch.no_grad():
        net.arch_beta.zero_()
        net.arch_beta[0, 0, cfg.moves.index("down")] = 5.0
        net.arch_beta[1, 1, cfg.moves.index("down")] = 9.0  # masked: level 2 cannot return to 0 in time
        net.arch_beta[1, 1, cfg.moves.index("same")] = 5.0
        alpha = net.cell_alphas(net.cells["0_1"])  # the shared set, or this cell's own
        alpha.zero_()
        alpha[:, 2] = 4.0
        net.cells["0_1"].neurons.arch_type.copy_(torch.tensor([0.0, 3.0]))
        net.cells["0_1"].neurons.arch_hybrid.copy_(torch.tensor([0.0, 2.0]))
    g = net.derive()
    assert g.path == (1, 1, 0)
    c0 = g.cells[0]
    assert c0.edges == (((0, "conv_3x3_b5"), (1, "conv_3x3_b5")),)
    assert c0.neuron == "plif" and c0.spiking is False and c0.tau == pytest.approx(cfg.learn_tau_init)


def _genotype() -> Genotype:
    net = SpikingTrellis(
        TrellisConfig(dim=3, in_channels=2, channels=2, layers=2, steps=2, levels=2, neuron_kinds=("clif",))
    )
    return Genotype({"matching": net.derive()}, settings={"seed": 3})


def test_round_trip_and_fixed_net_from_file(tmp_path, make_spikes):
    g = _genotype()
    path = save_genotype(tmp_path / "g.json", g)
    back = load_genotype(path)
    assert back == g
    net = SpikingTrellis.from_genotype(back.components["matching"])
    y = net(make_spikes(2, 1, 2, 4, 4, 4))
    assert y.shape[2] == net.out_channels
    assert isinstance(back.components["matching"].cells[0].tau, tuple)  # clif: per-channel taus


def _mutations():
    yield "format", lambda d: d.update(format="other"), "format"
    yield "version", lambda d: d.update(version=99), "version"
    yield (
        "op",
        lambda d: d["components"]["matching"]["cells"][1]["edges"][0][0].__setitem__(1, "conv_9x9"),
        r"components\.matching\.cells\[1\]\.edges\[0\]\[0\]\[1\]: unknown op",
    )
    yield (
        "index",
        lambda d: d["components"]["matching"]["cells"][0]["edges"][0][0].__setitem__(0, 7),
        r"cells\[0\]\.edges\[0\]\[0\]\[0\]",
    )
    yield "path", lambda d: d["components"]["matching"].update(path=[0, 3]), r"path\[1\]"
    yield "cells", lambda d: d["components"]["matching"]["cells"].pop(), r"matching\.cells"
    yield "neuron", lambda d: d["components"]["matching"]["cells"][0].update(neuron="hh"), r"cells\[0\]\.neuron"
    yield "tau", lambda d: d["components"]["matching"]["cells"][0].update(tau=[2.0]), r"cells\[0\]\.tau"
    yield "b", lambda d: d["components"]["matching"]["cells"][0].pop("surrogate_b"), r"surrogate_b: missing"
    yield "spiking", lambda d: d["components"]["matching"]["cells"][0].update(spiking="yes"), r"spiking: expected bool"
    yield "config", lambda d: d["components"]["matching"]["config"].update(dim=4), r"matching\.config.*dim"
    yield "config key", lambda d: d["components"]["matching"]["config"].pop("layers"), r"config\.layers: missing"


@pytest.mark.parametrize("name,mutate,pattern", list(_mutations()), ids=[m[0] for m in _mutations()])
def test_malformed_files_name_the_field(tmp_path, name, mutate, pattern):
    d = genotype_to_dict(_genotype())
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(GenotypeError, match=pattern) as info:
        load_genotype(p)
    assert str(p) in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(GenotypeError, match="not found"):
        load_genotype(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        load_genotype(tmp_path / "x.json")


def test_fixed_genotype_cell_spiking_false_builds_ann_cell(make_spikes):
    cfg = TrellisConfig(dim=2, in_channels=1, channels=2, layers=1, steps=1, levels=1, moves=("same",))
    cg = CellGenotype(edges=(((1, "conv_5x5"),),), neuron="lif", tau=1.25, surrogate_b=3.0, spiking=False)
    net = SpikingTrellis.from_genotype(ComponentGenotype(cfg, (0,), (cg,)))
    y = net(make_spikes(2, 1, 1, 6, 6))
    assert (y >= 0).all() and not set(torch.unique(y).tolist()) <= {0.0, 1.0}


def test_component_lookup_names_missing_or_incompatible_component():
    g = _genotype()
    assert g.component("matching", dim=3) is g.components["matching"]
    with pytest.raises(GenotypeError, match=r"components\.feature: missing \(the genotype has matching\)"):
        g.component("feature")
    with pytest.raises(GenotypeError, match=r"components\.matching\.config\.dim: 3, this network needs 2"):
        g.component("matching", dim=2)
