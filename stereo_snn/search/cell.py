"""Cells and resampling: the building blocks of the trellis (supernet and fixed network).

A cell takes two inputs, ``s0`` (two layers back) and ``s1`` (previous layer), brings each to
the cell's level and channel count with :class:`Resample`, then computes ``steps`` nodes;
node ``j`` reads every earlier state (edge input 0 = s0, 1 = s1, 2 + i = node i). Its output is
the channel concatenation of the nodes. In a supernet every edge holds every candidate op,
weighted by ``softmax(alphas[edge])``: the trellis's shared op logits, handed to
:meth:`Cell.forward` as ``weights``, or the cell's own ``arch_alpha`` (per-node alphas); in a
fixed network each node holds only its kept edges and ops.

Values travel as :class:`Signal` ``(x, price)``: the tensor and the energy price in pJ of one
synaptic operation it drives (``rate * E_AC`` for spikes, ``E_MAC`` for real values).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .activation import CellNeurons, NodeActivation, derived_value
from .config import MemoryConfig
from .genotype import decoded_mask
from .ops import OPS, SeqConvBN, check_candidates, make_op

__all__ = ["Signal", "Resample", "Cell", "channel_shuffle", "edge_inputs", "num_edges", "op_weights", "pick_op"]


class Signal(NamedTuple):
    """A multi-step tensor and the price (pJ per synaptic op) of the operations it drives."""

    x: torch.Tensor
    price: torch.Tensor | float


def op_weights(
    alphas: torch.Tensor, candidates: Sequence[str], steps: int, max_skip: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A supernet cell's op weights ``softmax(alphas)`` and its energy weights: the ops the
    derivation keeps now (:func:`~.genotype.decoded_mask`) with the mixture's gradient
    (:func:`~.activation.derived_value`)."""
    weights = torch.softmax(alphas, dim=-1)
    return weights, derived_value(weights, decoded_mask(alphas, candidates, steps, max_skip))


def num_edges(steps: int) -> int:
    """Edges of a cell with ``steps`` nodes (node j has j + 2 inputs)."""
    return sum(j + 2 for j in range(steps))


def edge_inputs(steps: int) -> list[tuple[int, int]]:
    """``(node, input_index)`` of every edge, in the order of the rows of the op logits."""
    return [(j, i) for j in range(steps) for i in range(j + 2)]


def _interpolate(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize a multi-step tensor's spatial dims (bi/tri-linear) to ``size``."""
    t, b = x.shape[:2]
    mode = "bilinear" if len(size) == 2 else "trilinear"
    y = F.interpolate(x.flatten(0, 1), size=tuple(size), mode=mode, align_corners=False)
    return y.unflatten(0, (t, b))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels (dim 2) of ``x`` [T, B, C, ...] from ``groups`` blocks: channel
    ``g * C/groups + j`` moves to ``j * groups + g`` (ShuffleNet; PC-DARTS after each edge)."""
    if groups == 1:
        return x
    t, b, c = x.shape[:3]
    return x.reshape(t, b, groups, c // groups, *x.shape[3:]).transpose(2, 3).reshape(x.shape)


def pick_op(row: torch.Tensor, tau: float, noise: bool = True) -> tuple[int, torch.Tensor]:
    """One op of an edge with op weights ``row`` (probabilities): with ``noise`` a hard
    Gumbel-softmax sample at temperature ``tau`` (GDAS), else the strongest op. Returns its
    index ``k`` and its weight, 1 in the forward and ``d soft[k]`` in the backward
    (straight-through: ``soft = softmax((log row + gumbel) / tau)``, without noise ``row``)."""
    if noise:
        gumbel = -torch.empty_like(row).exponential_().log()
        soft = torch.softmax((torch.log(row.clamp_min(1e-30)) + gumbel) / tau, dim=-1)
    else:
        soft = row
    k = int(soft.detach().argmax())
    return k, 1.0 - soft[k].detach() + soft[k]


class Resample(nn.Module):
    """Bring a state from level ``src`` to level ``dst`` and ``c_out`` channels, then activate.

    down (dst > src): 3x3 conv with stride ``2**(dst-src)``; same: 1x1 conv; up: 1x1 conv at the
    source resolution, then linear interpolation to the exact target size. BN after the conv.
    """

    def __init__(self, c_in: int, c_out: int, dim: int, src: int, dst: int, act: NodeActivation):
        super().__init__()
        self.src, self.dst = src, dst
        if dst > src:
            self.conv = SeqConvBN(c_in, c_out, dim, 3, stride=2 ** (dst - src), padding=1)
        else:
            self.conv = SeqConvBN(c_in, c_out, dim, 1)
        self.act = act

    def forward(self, s: Signal, size: Sequence[int]) -> tuple[Signal, torch.Tensor | float]:
        y = self.conv(s.x)
        if tuple(y.shape[3:]) != tuple(size):
            y = _interpolate(y, size)
        energy = self.conv.last_macs * s.x.shape[0] * s.price
        out = self.act([(y, None)])
        return Signal(out, self.act.last_cost), energy + self.act.last_update


class Cell(nn.Module):
    """One cell at level ``level`` with ``channels`` per node.

    sources0 / sources1: ``{source_level: source_channels}`` of the possible s0 / s1 inputs
    (a supernet node has up to three s1 sources, one per incoming move). ``genotype_edges``
    (per node, ``((input_index, op), ...)``) builds a fixed cell; ``None`` a supernet cell.
    own_alphas: a supernet cell holds its own op logits ``arch_alpha`` (per-node alphas); False:
    the trellis holds them and hands their softmax to :meth:`forward`.
    """

    def __init__(
        self,
        dim: int,
        level: int,
        channels: int,
        steps: int,
        candidates: tuple[str, ...],
        neurons: CellNeurons,
        sources0: dict[int, int],
        sources1: dict[int, int],
        genotype_edges: Sequence[Sequence[tuple[int, str]]] | None = None,
        max_skip: int | None = None,
        own_alphas: bool = True,
        memory: MemoryConfig | None = None,
    ):
        """``max_skip``: the derivation's cap on skip edges (a supernet cell's expected energy
        is that of the cell derivation would keep, :func:`~.activation.derived_value`)."""
        super().__init__()
        self.max_skip = max_skip
        check_candidates(candidates)
        self.dim, self.level, self.channels, self.steps = dim, level, channels, steps
        self.candidates = tuple(candidates)
        self.neurons = neurons
        self.search = genotype_edges is None
        self.memory = memory or MemoryConfig()
        k = self.memory.partial_channels
        if self.search and channels % k:
            raise ConfigError(f"partial_channels {k}: must divide the {channels} node channels of every cell")
        self.pre0 = nn.ModuleDict(
            {str(s): Resample(c, channels, dim, s, level, NodeActivation(neurons)) for s, c in sources0.items()}
        )
        self.pre1 = nn.ModuleDict(
            {str(s): Resample(c, channels, dim, s, level, NodeActivation(neurons)) for s, c in sources1.items()}
        )
        if self.search:
            if own_alphas:
                self.arch_alpha = nn.Parameter(1e-3 * torch.randn(num_edges(steps), len(self.candidates)))
            self.edges = nn.ModuleList(
                nn.ModuleList(make_op(name, channels // k, dim) for name in self.candidates) for _ in edge_inputs(steps)
            )
            groups = tuple(OPS[n].b for n in self.candidates)
            self.node_acts = nn.ModuleList(NodeActivation(neurons, groups) for _ in range(steps))
            self.kept: list[list[tuple[int, str]]] = []
        else:
            if len(genotype_edges) != steps:
                raise ConfigError(f"cell genotype has {len(genotype_edges)} nodes, the cell has {steps}")
            self.kept = [[(int(i), str(op)) for i, op in node] for node in genotype_edges]
            self.node_ops = nn.ModuleList(
                nn.ModuleList(make_op(op, channels, dim) for _, op in node) for node in self.kept
            )
            self.node_acts = nn.ModuleList(
                NodeActivation(neurons, tuple(OPS[op].b for _, op in node)) for node in self.kept
            )

    @property
    def out_channels(self) -> int:
        """Channels of the cell output (``steps`` nodes concatenated)."""
        return self.steps * self.channels

    def forward(
        self,
        s0: Signal,
        s0_level: int,
        s1: Signal,
        s1_level: int,
        size: Sequence[int],
        weights: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[Signal, torch.Tensor | float]:
        """Run the cell; returns its output and its energy in pJ per sample (differentiable).

        weights: a supernet cell's op weights and energy weights, :func:`op_weights` of the
        alphas that drive it (shared alphas: computed once per forward by the trellis); None:
        those of the cell's own ``arch_alpha``."""
        p0, e0 = self.pre0[str(s0_level)](s0, size)
        p1, e1 = self.pre1[str(s1_level)](s1, size)
        energy = e0 + e1
        states: list[Signal] = [p0, p1]
        T = s1.x.shape[0]
        if self.search:
            if weights is None:
                weights = op_weights(self.arch_alpha, self.candidates, self.steps, self.max_skip)
            weights, weights_e = weights
            e = 0
            for j in range(self.steps):
                terms = []
                for i in range(j + 2):
                    edge_terms, energy = self.mixed_edge(e, weights[e], states[i], energy, weights_e[e])
                    terms += edge_terms
                    e += 1
                out = self.node_acts[j](terms)
                states.append(Signal(out, self.node_acts[j].last_cost))
        else:
            for j, node in enumerate(self.kept):
                terms = []
                for (i, name), op in zip(node, self.node_ops[j]):
                    terms.append((op(states[i].x), OPS[name].b))
                    energy = energy + op.last_macs * T * states[i].price
                out = self.node_acts[j](terms)
                states.append(Signal(out, self.node_acts[j].last_cost))
        for act in self.node_acts:  # the membrane updates of the node neurons
            energy = energy + act.last_update
        nodes = states[2:]
        x = torch.cat([s.x for s in nodes], dim=2)
        price = sum(s.price for s in nodes) / len(nodes)
        return Signal(x, price), energy

    def mixed_edge(
        self,
        e: int,
        row: torch.Tensor,
        state: Signal,
        energy: torch.Tensor | float = 0.0,
        energy_row: torch.Tensor | None = None,
    ) -> tuple[list[tuple[torch.Tensor, float | None]], torch.Tensor | float]:
        """Supernet edge ``e`` on its input ``state``: its currents into the node as
        ``(current, surrogate group)`` terms, and ``energy`` plus its expected energy in pJ per sample.

        ``row``: the edge's op weights (probabilities over the candidates). Plain DARTS: every
        op runs, term ``k`` is ``row[k] * op_k(x)``. With ``memory.sample_ops`` only one sampled
        op runs (:func:`pick_op`); with ``memory.partial_channels`` K > 1 the ops see the first
        C/K channels, the other channels bypass them, and :func:`channel_shuffle` mixes the two.
        The energy is the expectation over ``row`` of every op's cost at full width, whichever
        ran: ``sum_k row[k] * MACs_k * T * price``, with ``energy_row`` in place of ``row`` when
        given (the derived cell's ops with the mixture's gradient, :func:`~.activation.derived_value`).
        """
        mem, ops = self.memory, self.edges[e]
        x, kp = state.x, mem.partial_channels
        T, size = x.shape[0], x.shape[3:]
        price_row = row if energy_row is None else energy_row
        for k, op in enumerate(ops):
            energy = energy + price_row[k] * (op.macs(size) * kp * kp * T) * state.price
        x_in = x if kp == 1 else x[:, :, : x.shape[2] // kp]
        if mem.sample_ops:
            k, w = pick_op(row, mem.gumbel_tau, noise=self.training)
            run = [(k, w)]
        else:
            run = list(enumerate(row))
        groups = [OPS[n].b for n in self.candidates]
        currents = [(w * ops[k](x_in), groups[k]) for k, w in run]
        if kp == 1:
            return currents, energy
        # partial channels: sum per surrogate group, place the ops' part and the bypass, shuffle
        sums: dict[float | None, torch.Tensor] = {}
        for cur, g in currents:
            sums[g] = cur if g not in sums else sums[g] + cur
        rest = x[:, :, x_in.shape[2] :]
        terms = [(channel_shuffle(torch.cat([cur, torch.zeros_like(rest)], 2), kp), g) for g, cur in sums.items()]
        bypass_group = None if None in groups else groups[0]  # the bypass counts as a skip
        terms.append((channel_shuffle(torch.cat([torch.zeros_like(x_in), rest], 2), kp), bypass_group))
        return terms, energy

    def cell_b(self, choice: str) -> float:
        """The cell's own surrogate temperature for the neuron choice ``choice``
        (:func:`~.activation.choice_key`): mean b of its node-group Dspikes."""
        return self.searched_b(choice).get("node", float(self.neurons.neuron.b))

    def searched_b(self, choice: str) -> dict[str, float]:
        """Mean Dspike temperature of each surrogate group (``node``, ``b3``, ``b5`` ...) over the
        cell's neurons of the choice ``choice`` (what DGS made of them)."""
        vals: dict[str, list[float]] = {}
        acts = list(self.node_acts) + [r.act for r in self.pre0.values()] + [r.act for r in self.pre1.values()]
        for act in acts:
            for key, m in act.neurons.items():
                name, group = key.rsplit("__", 1)
                if name == choice and hasattr(m, "surrogate_function"):
                    vals.setdefault(group, []).append(float(m.surrogate_function.b))
        return {g: sum(v) / len(v) for g, v in vals.items()}
