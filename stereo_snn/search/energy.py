"""Measured energy: a real forward pass through spikingjelly's op counters, per layer.

Compute energy (MACs x 4.6 pJ + ACs x 0.9 pJ, Horowitz 2014, 45 nm fp32) is the headline;
spikingjelly's memory-access term (parameter and neuron-state traffic) is reported beside it,
labelled. :func:`ann_twin` gives the same network with every spiking neuron replaced by a ReLU,
for comparison.

What is counted (the same convention as the search's expected energy,
:meth:`~stereo_snn.search.SpikingTrellis.expected_energy`):

* synaptic operations, from spikingjelly's counters: a conv or linear layer on real values
  does MACs, on spikes one AC per weight a spike actually uses; every other counted
  operation outside the excluded modules below (pooling, element-wise adds) as spikingjelly
  counts it;
* batch norm: none, it is folded into the preceding convolution for inference;
* spiking neurons: one membrane update per neuron per time step, one AC each
  (:data:`~.activation.E_UPDATE_PJ`), instead of the adds and subtracts of spikingjelly's
  simulation of the neuron, which depend on how the neuron is implemented; a ReLU costs
  nothing (a compare);
* the sum of a node's input currents: none, the synaptic operations accumulate into the one
  membrane (:class:`~.activation.NodeActivation`).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from spikingjelly.activation_based import monitor
from spikingjelly.activation_based.op_counter import SimpleEnergyProfiler
from spikingjelly.activation_based.op_counter.base import call_model
from spikingjelly.activation_based.surrogate import SurrogateFunctionBase
from torch import nn

from ..spiking import SPIKING_TYPES, AnnActivation, firing_rates, is_spiking, reset
from .activation import E_AC_PJ, E_MAC_PJ, NodeActivation

__all__ = ["LayerEnergy", "EnergyReport", "energy_report", "ann_twin", "PJ_PER_MJ"]

PJ_PER_MJ = 1e9

#: modules whose inner operations the compute counters skip (see the module docstring)
NOT_COUNTED: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    NodeActivation,
    *SPIKING_TYPES,
)


@dataclass
class LayerEnergy:
    """One leaf module's counts from the measured forward: MACs, ACs (for a spiking neuron: its
    membrane updates), its output firing rate (spikes per neuron per step; None for non-spiking
    modules) and compute energy (mJ)."""

    name: str
    macs: int
    acs: int
    firing_rate: float | None
    energy_mj: float


@dataclass
class EnergyReport:
    """Energy of one forward pass of the given inputs (all samples of the batch together).

    ``acs`` includes the ``neuron_updates`` (one AC per spiking neuron per time step)."""

    layers: list[LayerEnergy]
    macs: int
    acs: int
    compute_mj: float
    memory_mj: float
    firing_rates: dict[str, float] = field(default_factory=dict)
    e_mac_pj: float = E_MAC_PJ
    e_ac_pj: float = E_AC_PJ
    memory_pj_per_byte: float = 24.96
    neuron_updates: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        return asdict(self)

    def table(self) -> str:
        """A readable per-layer table with the totals (compute headline, memory beside it)."""
        w = max([len(layer.name) for layer in self.layers] + [5])
        rows = [f"{'layer':<{w}}  {'MACs':>12}  {'ACs':>12}  {'rate':>6}  {'energy mJ':>11}"]
        for layer in self.layers:
            rate = "-" if layer.firing_rate is None else f"{layer.firing_rate:.3f}"
            rows.append(f"{layer.name:<{w}}  {layer.macs:>12d}  {layer.acs:>12d}  {rate:>6}  {layer.energy_mj:>11.4e}")
        rows.append(f"{'total':<{w}}  {self.macs:>12d}  {self.acs:>12d}  {'':>6}  {self.compute_mj:>11.4e}")
        rows.append(
            f"compute energy (MAC {self.e_mac_pj} pJ + AC {self.e_ac_pj} pJ, one AC per neuron update, "
            f"batch norm folded): {self.compute_mj:.4e} mJ; "
            f"memory-access term (spikingjelly, {self.memory_pj_per_byte} pJ/byte, not in the headline): "
            f"{self.memory_mj:.4e} mJ"
        )
        return "\n".join(rows)


def _strip_root(scope: str) -> str:
    return scope.split(".", 1)[1] if "." in scope else ""


def energy_report(model: nn.Module, inputs: Any, *, forward: Callable[[], Any] | None = None) -> EnergyReport:
    """Measure MACs, ACs, firing rates and energy with one real forward pass (eval mode, no grad),
    counted as the module docstring says.

    ``inputs`` is passed as ``model(inputs)`` (``model(*inputs)`` for a tuple/list) unless
    ``forward`` (a callable running the forward itself) is given.
    """
    was_training = model.training
    model.eval()
    reset(model)
    prof = SimpleEnergyProfiler()
    for counter in (prof.mac_counter, prof.ac_counter, prof.synop_counter):  # the memory term keeps them
        counter.ignore_modules.extend(NOT_COUNTED)
    prof.bind_model(model)
    run = forward if forward is not None else (lambda: call_model(model, inputs))
    try:
        with torch.no_grad(), prof, monitor.OutputMonitor(model, SPIKING_TYPES, lambda s: s.numel()) as steps:
            rates = firing_rates(model, run)
            updates = {name: sum(steps[name]) for name in steps.monitored_layers}
    finally:
        model.train(was_training)
        reset(model)
    report = prof.get_report()
    cost = report.config.cost_config
    macs = {_strip_root(k): sum(v.values()) for k, v in prof.mac_counter.get_counts().items() if k != "Global"}
    acs = {_strip_root(k): sum(v.values()) for k, v in prof.ac_counter.get_counts().items() if k != "Global"}
    for name, n in updates.items():
        acs[name] = acs.get(name, 0) + n  # one AC per update (E_UPDATE_PJ = E_AC_PJ)
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, SurrogateFunctionBase):
            continue
        if next(module.children(), None) is not None and not is_spiking(module):
            continue
        m, a = int(macs.get(name, 0)), int(acs.get(name, 0))
        if m == 0 and a == 0:
            continue
        rate = rates.get(name) if is_spiking(module) else None
        layers.append(LayerEnergy(name, m, a, rate, (m * cost.e_mac_pj + a * cost.e_ac_pj) / PJ_PER_MJ))
    n_updates = int(sum(updates.values()))
    return EnergyReport(
        layers,
        int(report.counts["mac"]),
        int(report.counts["ac"]) + n_updates,
        (report.energy_compute_pj + n_updates * cost.e_ac_pj) / PJ_PER_MJ,
        report.energy_memory_pj / PJ_PER_MJ,
        rates,
        cost.e_mac_pj,
        cost.e_ac_pj,
        cost.e_memory_pj_per_byte,
        n_updates,
    )


def ann_twin(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every spiking neuron replaced by a ReLU (:class:`AnnActivation`)."""
    twin = copy.deepcopy(model)
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if is_spiking(child):
                setattr(parent, name, AnnActivation())
    reset(twin, rebuilt=True)
    return twin
