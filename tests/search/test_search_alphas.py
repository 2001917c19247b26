"""Op logits shared by every cell of a trellis (the default) or held per trellis node."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.errors import ConfigError
from stereo_snn.search import SpikingTrellis, TrellisConfig, num_edges, split_parameters
from stereo_snn.search.trellis import is_arch_name


def _cfg(**kw) -> TrellisConfig:
    base = dict(dim=2, in_channels=1, channels=2, layers=3, steps=2, levels=2, out_level=0)
    return TrellisConfig(**{**base, **kw})


def test_shared_alphas_are_one_parameter_of_the_trellis_and_an_arch_parameter():
    net = SpikingTrellis(_cfg())
    assert net.config.alphas == "shared"
    assert tuple(net.arch_alpha.shape) == (num_edges(2), len(net.config.candidates))
    assert not any(hasattr(c, "arch_alpha") for c in net.cells.values())
    names = [n for n, _ in net.named_parameters() if n.endswith("arch_alpha")]
    assert names == ["arch_alpha"] and is_arch_name(names[0])
    _, arch = split_parameters(net)
    assert sum(p is net.arch_alpha for p in arch) == 1


def test_per_node_alphas_give_every_cell_its_own():
    net = SpikingTrellis(_cfg(alphas="per_node"))
    assert not hasattr(net, "arch_alpha")
    assert all(tuple(c.arch_alpha.shape) == (num_edges(2), 3) for c in net.cells.values())
    assert all(net.cell_alphas(c) is c.arch_alpha for c in net.cells.values())


@pytest.mark.parametrize("alphas", ["shared", "per_node"])
def test_every_cell_on_a_path_sends_gradient_to_its_op_logits(alphas, make_spikes):
    net = SpikingTrellis(_cfg(alphas=alphas))
    net(make_spikes(2, 2, 1, 8, 8)).sum().backward()
    used = {id(net.cell_alphas(c)): net.cell_alphas(c) for c in net.cells.values()}
    assert len(used) == (1 if alphas == "shared" else len(net.cells))
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in used.values())


def test_shared_alphas_derive_the_same_cell_everywhere_with_each_cells_own_neurons():
    net = SpikingTrellis(_cfg())
    with torch.no_grad():
        net.arch_alpha.zero_()
        net.arch_alpha[:, net.config.candidates.index("conv_3x3_b5")] = 4.0
        net.arch_alpha[0, net.config.candidates.index("conv_3x3_b3")] = 6.0  # edge node 0 <- c(k-2)
        for k, cell in enumerate(net.cells.values()):  # alternate the neuron kind and the spiking choice
            cell.neurons.arch_type.copy_(torch.tensor([3.0, 0.0] if k % 2 else [0.0, 3.0]))
            cell.neurons.arch_hybrid.copy_(torch.tensor([2.0, 0.0] if k % 2 else [0.0, 2.0]))
    g = net.derive()
    assert len({c.edges for c in g.cells}) == 1
    assert g.cells[0].edges[0] == ((0, "conv_3x3_b3"), (1, "conv_3x3_b5"))
    for l, (d, c) in enumerate(zip(g.path, g.cells)):
        k = list(net.cells).index(f"{l}_{d}")
        assert (c.neuron, c.spiking) == (("lif", True) if k % 2 else ("plif", False))
    assert len({(c.neuron, c.spiking) for c in g.cells}) == 2
    fixed = SpikingTrellis.from_genotype(g)
    assert not any("arch_" in n for n, _ in fixed.named_parameters())


def test_per_node_alphas_derive_each_cell_from_its_own():
    net = SpikingTrellis(_cfg(alphas="per_node"))
    with torch.no_grad():
        for k, cell in enumerate(net.cells.values()):
            cell.arch_alpha.zero_()
            cell.arch_alpha[:, 1 + k % 2] = 5.0  # conv_3x3_b3 or conv_3x3_b5, alternating
    g = net.derive()
    for l, (d, c) in enumerate(zip(g.path, g.cells)):
        k = list(net.cells).index(f"{l}_{d}")
        want = net.config.candidates[1 + k % 2]
        assert {op for node in c.edges for _, op in node} == {want}


def test_alphas_setting_default_old_files_and_bad_values():
    cfg = _cfg()
    assert cfg.alphas == "shared"
    assert TrellisConfig.from_dict(cfg.to_dict()) == cfg
    old = {k: v for k, v in cfg.to_dict().items() if k != "alphas"}  # written before the setting existed
    assert TrellisConfig.from_dict(old).alphas == "per_node"
    with pytest.raises(ConfigError, match="alphas 'tied'"):
        _cfg(alphas="tied")
    with pytest.raises(ConfigError, match="where.*alphas"):
        TrellisConfig.from_dict({**cfg.to_dict(), "alphas": "tied"}, where="where")
