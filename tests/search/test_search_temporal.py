"""Temporal search: each cell chooses its neuron kind and, for lif, its time constant."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.errors import ConfigError
from stereo_snn.search import SpikingTrellis, TrellisConfig
from stereo_snn.search.activation import CellNeurons, NodeActivation
from stereo_snn.spiking import NeuronConfig, neuron_tau

CFG = dict(dim=2, in_channels=1, channels=2, layers=1, steps=1, levels=1, moves=("same",), hybrid=False)


def test_a_supernet_cell_chooses_among_kinds_and_lif_time_constants():
    cell = CellNeurons(("lif", "plif"), NeuronConfig(), 2, search=True, tau_candidates=(1.25, 4.0))
    assert cell.choices == (("lif", 1.25), ("lif", 4.0), ("plif", None))
    assert cell.arch_type.shape == (3,)
    act = NodeActivation(cell)
    assert sorted(act.neurons) == ["lif_t1p25__node", "lif_t4__node", "plif__node"]
    assert neuron_tau(act.neurons["lif_t4__node"]) == 4.0
    fixed = CellNeurons(("lif",), NeuronConfig(), 2, search=False, tau_candidates=(1.25, 4.0))
    assert fixed.choices == (("lif", None),)  # a derived cell has its one neuron
    with pytest.raises(ConfigError, match="tau_candidates"):
        CellNeurons(("lif",), NeuronConfig(), 2, search=True, tau_candidates=(1.0,))


def test_the_searched_time_constant_is_derived_and_rebuilt():
    torch.manual_seed(0)
    cfg = TrellisConfig(neuron_kinds=("lif",), tau_candidates=(1.25, 4.0), **CFG)
    net = SpikingTrellis(cfg)
    for cell in net.cells.values():
        with torch.no_grad():
            cell.neurons.arch_type.copy_(torch.tensor([0.0, 1.0]))
    g = net.derive()
    assert all(c.neuron == "lif" and c.tau == 4.0 for c in g.cells)
    fixed = SpikingTrellis.from_genotype(g)
    taus = {neuron_tau(m) for k, m in fixed.cells["0"].node_acts[0].neurons.items()}
    assert taus == {4.0}
    assert TrellisConfig.from_dict(cfg.to_dict()) == cfg
    old = {k: v for k, v in cfg.to_dict().items() if k != "tau_candidates"}  # configs written before
    assert TrellisConfig.from_dict(old).tau_candidates == ()
    with pytest.raises(ConfigError, match="tau_candidates"):
        TrellisConfig(tau_candidates=(0.5,), **CFG)


def test_architecture_steps_move_the_choice_to_the_time_constant_the_task_needs():
    # the class is in a current at t=0; the readout sees only the last step's spikes. Only a
    # slow membrane (tau 4: 75 % kept per step) still holds it then; tau 1.25 keeps 20 %.
    torch.manual_seed(0)
    cell = CellNeurons(("lif",), NeuronConfig(), 1, search=True, tau_candidates=(1.25, 4.0))
    act = NodeActivation(cell)
    y = torch.tensor([0.0, 1.0] * 8)
    x = torch.zeros(4, 16, 1)
    x[0, :, 0] = 0.1 + 0.35 * y
    x[3, :, 0] = 0.35
    head = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam([cell.arch_type, *head.parameters()], lr=0.05)
    start = cell.kind_probs().detach().clone()
    for _ in range(30):
        opt.zero_grad()
        out = act([(x, None)])[-1]
        torch.nn.functional.binary_cross_entropy_with_logits(head(out).squeeze(1), y).backward()
        opt.step()
    probs = cell.kind_probs().detach()
    assert cell.choices[int(probs.argmax())] == ("lif", 4.0)
    assert probs[1] - start[1] > 0.05
