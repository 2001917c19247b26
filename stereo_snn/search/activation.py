"""Node activations: currents summed at one membrane, per-cell neuron-type and hybrid choices.

:class:`CellNeurons` holds what a cell decides about its neurons: in a supernet the logits over
neuron kinds (temporal search) and over (spiking, ann) (hybrid search); in a fixed network the
chosen kind and whether the cell spikes. Learnable time constants (plif: one per cell, clif:
one per channel) are shared by every neuron of the cell, so "tau per layer" is one number (or
one vector) per cell.

:class:`NodeActivation` turns a list of ``(current, group)`` terms into the node's output. The
surrogate temperature only shapes the backward, so the neuron runs once per surrogate group
on the same summed membrane input, group ``g`` seeing the other groups' currents detached;
the forwards coincide and the output ``o_1 + sum_{g>1} (o_g - o_g.detach())`` routes to each
op's current exactly the gradient a neuron with that op's temperature would give. The group
runs share ONE membrane loop (:func:`~stereo_snn.spiking.grouped_multi_step`: the group inputs
stacked along the batch, one surrogate per slice), which gives the same values and gradients as
separate runs at a fraction of the per-operation overhead.

Every activation also records, from its last call, the energy price of one synaptic operation
driven by its output (pJ): ``p_spk * rate.detach() * E_AC + p_ann * E_MAC`` (differentiable in
the architecture logits; the probabilities enter through :func:`derived_value`), and the energy of its own membrane updates (pJ per sample):
``p_spk * E_UPDATE * T * neurons`` (ANN cells: 0, a ReLU is a compare). Both feed the
expected-energy term, which counts as the measured report does (:mod:`.energy`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..spiking import SPIKING_KINDS, NeuronConfig, carrying, grouped_multi_step, is_spiking, make_neuron, state_fits

__all__ = [
    "E_AC_PJ",
    "E_MAC_PJ",
    "E_UPDATE_PJ",
    "CellNeurons",
    "NodeActivation",
    "choice_key",
    "group_key",
    "neuron_choices",
    "neuron_steps",
    "derived_value",
]

E_AC_PJ = 0.9  # accumulate, 45 nm fp32 (Horowitz 2014), picojoules
E_MAC_PJ = 4.6  # multiply-accumulate, picojoules
#: one membrane update (charge, leak, threshold compare, reset) of one spiking neuron in one time
#: step, counted as one accumulate (the convention of the expected and the measured energy alike;
#: the leak by a power-of-two shift, the compare and the reset folded in), picojoules
E_UPDATE_PJ = E_AC_PJ


def derived_value(soft: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """``chosen`` in the forward, the gradient of ``soft`` in the backward (straight-through).

    The expected energy weighs every choice this way: its value is the energy of the network
    that derivation would pick now (argmax op, top-2 edges, spiking when ``p_spk >= 0.5``,
    the Viterbi path), so that an energy target holds for the derived network, while the
    gradient reaches every architecture logit through the relaxed probabilities (evaluated
    at the derived choice)."""
    return chosen.to(device=soft.device, dtype=soft.dtype) + (soft - soft.detach())


def input_price(x: torch.Tensor, spikes: bool | None = None) -> float:
    """The price (pJ) of one synaptic op driven by a network's input ``x``, by the measurement's
    rule (spikingjelly's counters): spikes drive an AC per weight a spike uses, ``rate *
    E_AC_PJ`` per op (the rate: the mean of ``x``); anything else a MAC per op. ``spikes``
    None: whether ``x`` is binary."""
    if spikes is None:
        spikes = bool(((x == 0) | (x == 1)).all())
    if spikes:
        return float(x.detach().float().mean()) * E_AC_PJ
    return E_MAC_PJ


def neuron_steps(x: torch.Tensor) -> int:
    """Neuron updates per sample of a multi-step tensor ``[T, B, C, *S]``: ``T * C * prod(S)``."""
    return x.shape[0] * x[0, 0].numel()


def group_key(b: float | None) -> str:
    """ModuleDict key of a surrogate group (``None`` = the cell's own temperature)."""
    return "node" if b is None else f"b{float(b):g}".replace(".", "p")


def choice_key(kind: str, tau: float | None) -> str:
    """Name of a neuron choice: the kind, or ``lif_t4`` for a fixed-tau kind at a searched tau."""
    return kind if tau is None else f"{kind}_t{float(tau):g}".replace(".", "p")


def neuron_choices(kinds: Sequence[str], tau_candidates: Sequence[float] = ()) -> tuple[tuple[str, float | None], ...]:
    """The neuron choices of a searched cell, ``(kind, tau)``: every kind, with the fixed-tau kind
    ``lif`` once per distinct value of ``tau_candidates`` (``tau`` None: the kind's own)."""
    taus = tuple(dict.fromkeys(float(t) for t in tau_candidates))
    return tuple((k, t) for k in kinds for t in (taus if k == "lif" and taus else (None,)))


class CellNeurons(nn.Module):
    """The neuron decisions of one cell (searched in a supernet, fixed in a derived network).

    kinds: candidate spiking kinds (supernet) or the one chosen kind (fixed); hybrid: search
    spiking vs ann (supernet only); spiking: the fixed choice; neuron: tau, threshold, cell b;
    channels: node channel count (per-channel tau of clif).

    Temporal search: the supernet's choices (:attr:`choices`, ``(kind, tau)``) are every kind,
    with the fixed-tau kind ``lif`` once per value of ``tau_candidates`` (``tau`` None: the
    kind's own time constant, ``neuron.tau`` or the learnable one). ``arch_type`` holds one
    logit per choice; the derived cell takes the argmax, kind and time constant together.
    """

    def __init__(
        self,
        kinds: tuple[str, ...],
        neuron: NeuronConfig,
        channels: int,
        *,
        search: bool,
        hybrid: bool = False,
        spiking: bool = True,
        tau: float | list[float] | None = None,
        tau_candidates: tuple[float, ...] = (),
        group_b: Mapping[str, float] | None = None,
    ):
        """``tau``: initial time constant(s) of the learnable kinds (default ``neuron.tau``);
        ``tau_candidates``: time constants (time steps, > 1) searched for ``lif`` (supernet);
        ``group_b``: surrogate temperature of each op group by :func:`group_key` (fixed
        network; a group not listed keeps its op's nominal b)."""
        super().__init__()
        bad = [k for k in kinds if k not in SPIKING_KINDS]
        if not kinds or bad:
            raise ConfigError(f"neuron_kinds {list(kinds)}: need one or more of {', '.join(SPIKING_KINDS)}")
        if any(not float(t) > 1 for t in tau_candidates):
            raise ConfigError(f"tau_candidates {list(tau_candidates)}: every time constant must be > 1 (time steps)")
        self.kinds = tuple(kinds)
        self.neuron = neuron
        self.channels = channels
        self.search = search
        self.hybrid = bool(hybrid) and search
        self.spiking = True if search else bool(spiking)
        self.group_b = {str(k): float(v) for k, v in (group_b or {}).items()}
        self.choices = neuron_choices(self.kinds, tau_candidates if search else ())
        self.register_buffer("_one", torch.ones(1), persistent=False)  # follows .to(device)
        if search and len(self.choices) > 1:
            self.arch_type = nn.Parameter(1e-3 * torch.randn(len(self.choices)))
        if self.hybrid:
            self.arch_hybrid = nn.Parameter(1e-3 * torch.randn(2))  # (spiking, ann)
        # shared learnable time constants
        init = neuron.tau if tau is None else tau
        if "plif" in self.kinds:
            t = float(init if not isinstance(init, (list, tuple)) else sum(init) / len(init))
            self.plif_w = nn.Parameter(torch.tensor(-torch.log(torch.tensor(t - 1.0)).item()))
        if "clif" in self.kinds:
            vals = torch.as_tensor(init if isinstance(init, (list, tuple)) else [init] * channels, dtype=torch.float32)
            if vals.numel() != channels:
                raise ConfigError(f"clif tau: {vals.numel()} values for {channels} channels")
            self.clif_w = nn.Parameter(-torch.log(vals - 1.0))

    def kind_probs(self) -> torch.Tensor:
        """Probabilities of the neuron :attr:`choices` (softmax of the logits; one-hot when fixed)."""
        if hasattr(self, "arch_type"):
            return torch.softmax(self.arch_type, 0)
        return self._one

    def spike_prob(self) -> torch.Tensor:
        """Probability that the cell spikes (vs ANN)."""
        if self.hybrid:
            return torch.softmax(self.arch_hybrid, 0)[0]
        return torch.tensor(1.0 if self.spiking else 0.0, device=self._device())

    def _device(self) -> torch.device:
        return self._one.device

    def group_temperature(self, group: float | None) -> float:
        """Surrogate temperature of an op group (``None``: the cell's own ``neuron.b``)."""
        if group is None:
            return float(self.neuron.b)
        return self.group_b.get(group_key(group), float(group))

    def make(self, kind: str, b: float, tau: float | None = None) -> nn.Module:
        """A neuron of ``kind`` with its own Dspike(b), sharing the cell's learnable tau
        (``tau``: the fixed time constant of a searched ``lif`` choice; None: ``neuron.tau``)."""
        cfg = NeuronConfig(
            kind=kind,
            tau=self.neuron.tau if tau is None else float(tau),
            v_threshold=self.neuron.v_threshold,
            b=b,
            decay_input=self.neuron.decay_input,
            detach_reset=self.neuron.detach_reset,
        )
        n = make_neuron(cfg, self.channels)
        if kind == "plif":
            n.w = self.plif_w
        elif kind == "clif":
            n.w = self.clif_w
        return n

    def tau_value(self, kind: str, tau: float | None = None) -> float | list[float]:
        """The time constant (time steps) the choice ``(kind, tau)`` currently has in this cell."""
        if tau is not None:
            return float(tau)
        if kind == "plif":
            return float(1.0 / torch.sigmoid(self.plif_w.detach()))
        if kind == "clif":
            return [float(v) for v in 1.0 / torch.sigmoid(self.clif_w.detach())]
        return float(self.neuron.tau)


class _GroupStack(torch.autograd.Function):
    """``G`` copies of a node's summed current stacked along the batch (dim 1); the gradient of
    copy ``g`` goes to the terms of group ``g`` only (``index[i]``: group of term ``i``, -1: none).
    Equals ``cat([sum of terms with the other groups' terms detached for g in groups], 1)``."""

    @staticmethod
    def forward(ctx, total: torch.Tensor, index: tuple[int, ...], groups: int, *terms: torch.Tensor) -> torch.Tensor:
        ctx.index, ctx.groups = index, groups
        return torch.cat([total] * groups, dim=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        parts = grad.chunk(ctx.groups, dim=1)
        return (None, None, None, *(parts[i] if i >= 0 else None for i in ctx.index))


class NodeActivation(nn.Module):
    """One membrane fed by ``(current, group_b)`` terms; mixes neuron kinds / ann as the cell says."""

    def __init__(self, cell: CellNeurons, groups: tuple[float | None, ...] = (None,)):
        super().__init__()
        self._cell = [cell]  # not a submodule: the cell owns it
        self.groups = tuple(dict.fromkeys(groups))
        self.neurons = nn.ModuleDict()
        if cell.spiking or cell.hybrid:
            for kind, tau in cell.choices:
                for g in self.groups:
                    key = f"{choice_key(kind, tau)}__{group_key(g)}"
                    self.neurons[key] = cell.make(kind, cell.group_temperature(g), tau)
        self.last_cost: torch.Tensor | float = E_MAC_PJ
        self.last_update: torch.Tensor | float = 0.0  # membrane updates of the last call, pJ per sample
        self.last_rate: float | None = None

    @property
    def cell(self) -> CellNeurons:
        """The cell whose neuron decisions this activation follows."""
        return self._cell[0]

    def forward(self, terms: list[tuple[torch.Tensor, float | None]]) -> torch.Tensor:
        if not terms:
            raise ValueError("NodeActivation needs at least one current")
        total = terms[0][0]
        for t, _ in terms[1:]:
            total = total + t
        cell = self.cell
        if not len(self.neurons):
            self.last_cost, self.last_rate = torch.tensor(E_MAC_PJ, device=total.device), None
            self.last_update = 0.0
            return torch.relu(total)
        # without autograd the groups' forwards coincide: run one (also keeps measured energy honest)
        groups = self.groups if torch.is_grad_enabled() else self.groups[:1]
        stacked_in = None
        if len(groups) > 1:
            # group g's membrane input is the same sum with the other groups' currents detached:
            # stacked along the batch, slice g passing its gradient to group g's terms only
            keys = [tg if tg in self.groups else None for _, tg in terms]
            index = tuple(groups.index(k) if k in groups else -1 for k in keys)
            stacked_in = _GroupStack.apply(total.detach(), index, len(groups), *(t for t, _ in terms))
        q = cell.kind_probs()
        q_e = derived_value(q, torch.nn.functional.one_hot(q.detach().argmax(), len(q)))  # energy weights
        spk = None
        cost_spk = None
        rates = []
        for ki, (kind, tau) in enumerate(cell.choices):
            mods = [self.neurons[f"{choice_key(kind, tau)}__{group_key(g)}"] for g in groups]
            # the groups differ only in the surrogate: one stacked membrane loop when possible
            stacked = grouped_multi_step(mods, stacked_in) if stacked_in is not None else None
            if stacked is not None:
                outs = list(stacked.chunk(len(groups), dim=1))
                spiking_here = True
            else:
                inputs = [total] if stacked_in is None else stacked_in.chunk(len(groups), dim=1)
                outs = []
                for m, x in zip(mods, inputs):
                    if hasattr(m, "reset") and not (carrying() and state_fits(m, x)):
                        m.reset()  # each call processes a whole [T, ...] sequence from rest (unless streaming)
                    outs.append(m(x))
                spiking_here = all(is_spiking(m) for m in mods)
            o = outs[0]
            for og in outs[1:]:
                o = o + (og - og.detach())
            rate = float(o.detach().float().mean())
            rates.append(rate)
            price = rate * E_AC_PJ if spiking_here else E_MAC_PJ
            spk = q[ki] * o if spk is None else spk + q[ki] * o
            cost_spk = q_e[ki] * price if cost_spk is None else cost_spk + q_e[ki] * price
        self.last_rate = sum(float(q[i].detach()) * r for i, r in enumerate(rates))
        updates = neuron_steps(total) * E_UPDATE_PJ
        if cell.hybrid:
            p = cell.spike_prob()
            p_e = derived_value(p, p.detach() >= 0.5)
            self.last_cost = p_e * cost_spk + (1 - p_e) * E_MAC_PJ
            self.last_update = p_e * updates
            return p * spk + (1 - p) * torch.relu(total)
        self.last_cost = cost_spk
        self.last_update = updates
        return spk
