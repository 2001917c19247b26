"""The trellis network: supernet over cells x levels, or a fixed network from a genotype.

One class builds both. Supernet: every node (layer l, level s) on some valid path from the
stem (level 0) to ``out_level`` holds one cell; ``arch_beta[l, s, m]`` are the learnt logits of
the moves out of node (l-1, s), added to a fixed prior under which every valid path is equally
likely (:func:`path_prior`; softmax over the moves that stay on a valid path); node (l, s') sums
``p * cell(s0, resample(h[l-1][s]))`` over its incoming transitions. The op logits
``arch_alpha`` ``[edges, candidates]`` are one set shared by every cell (``alphas: shared``,
one cell type as in SpikeDHS and DARTS) or one set per cell (``alphas: per_node``). Fixed network: one cell
per layer at the genotype's level, with only its kept edges and ops.

The forward also computes the expected energy of the network (pJ per sample, differentiable
in all architecture logits), available from :meth:`SpikingTrellis.expected_energy`: in a
supernet, its value is that of the network derivation would pick now (path, edges, ops,
neurons) at the supernet's firing rates, its gradient through the relaxed probabilities
(:func:`~.activation.derived_value`). It includes the convolutions outside the trellis that read
its output (:meth:`SpikingTrellis.read_by`), at the output's price.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import ConfigError
from ..spiking import reset
from .activation import CellNeurons, NodeActivation, choice_key, derived_value, input_price
from .cell import Cell, Signal, num_edges, op_weights
from .config import MOVES, MemoryConfig, TrellisConfig
from .genotype import CellGenotype, ComponentGenotype, decode_cell, viterbi
from .ops import SeqConvBN, conv_macs, conv_out_size

__all__ = ["SpikingTrellis", "is_arch_name", "path_counts", "path_prior", "trellises", "split_parameters"]


def is_arch_name(name: str) -> bool:
    """True for architecture parameters (their attribute name starts with ``arch_``)."""
    return name.rsplit(".", 1)[-1].startswith("arch_")


def _valid_levels(cfg: TrellisConfig) -> list[list[int]]:
    """Levels of each layer that lie on a path from the stem (level 0) to ``out_level``."""
    deltas = [MOVES[m] for m in cfg.moves]
    fwd = []
    cur = {0}
    for _ in range(cfg.layers):
        cur = {s + d for s in cur for d in deltas if 0 <= s + d < cfg.levels}
        fwd.append(cur)
    bwd = [set() for _ in range(cfg.layers)]
    bwd[-1] = {cfg.out_level}
    for l in range(cfg.layers - 2, -1, -1):
        bwd[l] = {s for s in range(cfg.levels) if any(s + d in bwd[l + 1] for d in deltas)}
    valid = [sorted(f & b) for f, b in zip(fwd, bwd)]
    if any(not v for v in valid):
        raise ConfigError(
            f"trellis: out_level {cfg.out_level} cannot be reached from level 0 in "
            f"{cfg.layers} layers with moves {list(cfg.moves)}"
        )
    return valid


def path_counts(cfg: TrellisConfig) -> list[dict[int, int]]:
    """``counts[l][s]``: how many valid level paths continue from node (layer l, level s) to
    ``out_level`` at the last layer (1 there); the nodes are those of :func:`_valid_levels`."""
    valid = _valid_levels(cfg)
    counts: list[dict[int, int]] = [{} for _ in valid]
    counts[-1] = {cfg.out_level: 1}
    for l in range(len(valid) - 2, -1, -1):
        nxt = counts[l + 1]
        counts[l] = {s: sum(nxt.get(s + MOVES[m], 0) for m in cfg.moves) for s in valid[l]}
    return counts


def path_prior(cfg: TrellisConfig) -> torch.Tensor:
    """``[L, levels, moves]`` logits under which every valid level path is equally likely: a move
    into node (l, d) gets ``log counts[l][d]`` (:func:`path_counts`), so the product of the move
    probabilities along any path is ``1 / number of paths`` (0 for moves off every path).

    With all-zero logits instead, a path through nodes with fewer onward choices would be more
    probable before the search has learnt anything (on a 2-level, 3-layer trellis the path that
    goes down at once holds half the mass, each of the two others a quarter), and both the
    supernet's mixture and the Viterbi decoding would favour it."""
    counts = path_counts(cfg)
    prior = torch.zeros(cfg.layers, cfg.levels, len(cfg.moves))
    for l in range(cfg.layers):
        for s in range(cfg.levels):
            for m, name in enumerate(cfg.moves):
                n = counts[l].get(s + MOVES[name], 0)
                if n > 0:
                    prior[l, s, m] = math.log(n)
    return prior


class SpikingTrellis(nn.Module):
    """A searchable (``genotype=None``) or fixed trellis network.

    Input ``[T, B, in_channels, *S]`` (S = (H, W) or (D, H, W)); output
    ``[T, B, out_channels, *S_out]`` at level ``out_level`` (``S_out = ceil(S / (stem_stride * 2**out_level))``).
    """

    def __init__(
        self, config: TrellisConfig, genotype: ComponentGenotype | None = None, memory: MemoryConfig | None = None
    ):
        super().__init__()
        if genotype is not None and genotype.config != config:
            raise ConfigError("SpikingTrellis: the genotype was derived for a different config (use from_genotype)")
        cfg = config
        self.config = cfg
        self.memory = memory or MemoryConfig()
        self.is_supernet = genotype is None
        self.shared_alphas = self.is_supernet and cfg.alphas == "shared"
        self.stem_channels = cfg.steps * cfg.channels
        self.stem = SeqConvBN(cfg.in_channels, self.stem_channels, cfg.dim, 3, stride=cfg.stem_stride, padding=1)
        self.stem_neurons = CellNeurons((cfg.neuron.kind,), cfg.neuron, self.stem_channels, search=False)
        self.stem_act = NodeActivation(self.stem_neurons)
        self.cells = nn.ModuleDict()
        out_ch = lambda s: cfg.steps * cfg.level_channels(s)  # noqa: E731
        if self.is_supernet:
            self.valid = _valid_levels(cfg)
            mask = torch.zeros(cfg.layers, cfg.levels, len(cfg.moves), dtype=torch.bool)
            for l in range(cfg.layers):
                for s in [0] if l == 0 else self.valid[l - 1]:
                    for m, name in enumerate(cfg.moves):
                        if s + MOVES[name] in self.valid[l]:
                            mask[l, s, m] = True
            self.register_buffer("move_mask", mask, persistent=False)
            # the learnt evidence for each move, on top of a prior that holds every path equally likely
            self.register_buffer("beta_prior", path_prior(cfg), persistent=False)
            self.arch_beta = nn.Parameter(1e-3 * torch.randn(cfg.layers, cfg.levels, len(cfg.moves)))
            if self.shared_alphas:
                self.arch_alpha = nn.Parameter(1e-3 * torch.randn(num_edges(cfg.steps), len(cfg.candidates)))
            for l in range(cfg.layers):
                for d in self.valid[l]:
                    src0 = self._s0_level(l, d)
                    s0_ch = self.stem_channels if l < 2 else out_ch(src0)
                    srcs = [s for s in ([0] if l == 0 else self.valid[l - 1]) if self._move(l, s, d) is not None]
                    s1 = {s: (self.stem_channels if l == 0 else out_ch(s)) for s in srcs}
                    neurons = CellNeurons(
                        cfg.neuron_kinds,
                        cfg.neuron,
                        cfg.level_channels(d),
                        search=True,
                        hybrid=cfg.hybrid,
                        tau=cfg.learn_tau_init,
                        tau_candidates=cfg.tau_candidates,
                    )
                    self.cells[f"{l}_{d}"] = Cell(
                        cfg.dim,
                        d,
                        cfg.level_channels(d),
                        cfg.steps,
                        cfg.candidates,
                        neurons,
                        {src0: s0_ch},
                        s1,
                        max_skip=cfg.max_skip,
                        own_alphas=not self.shared_alphas,
                        memory=self.memory,
                    )
        else:
            self.path = tuple(genotype.path)
            for l, (d, cg) in enumerate(zip(self.path, genotype.cells)):
                lv0 = 0 if l < 2 else self.path[l - 2]
                lv1 = 0 if l < 1 else self.path[l - 1]
                c0 = self.stem_channels if l < 2 else out_ch(lv0)
                c1 = self.stem_channels if l < 1 else out_ch(lv1)
                ncfg = dataclasses.replace(
                    cfg.neuron, b=cg.surrogate_b, tau=cg.tau if isinstance(cg.tau, float) else cfg.neuron.tau
                )
                neurons = CellNeurons(
                    (cg.neuron,),
                    ncfg,
                    cfg.level_channels(d),
                    search=False,
                    spiking=cg.spiking,
                    tau=list(cg.tau) if isinstance(cg.tau, tuple) else cg.tau,
                    group_b=cg.group_b,
                )
                self.cells[str(l)] = Cell(
                    cfg.dim,
                    d,
                    cfg.level_channels(d),
                    cfg.steps,
                    cfg.candidates,
                    neurons,
                    {lv0: c0},
                    {lv1: c1},
                    genotype_edges=cg.edges,
                )
        self.out_channels = out_ch(cfg.out_level)
        self._energy: torch.Tensor | None = None
        self._readers: tuple[nn.Module, ...] = ()  # convolutions outside that read the output (read_by)
        reset(self, rebuilt=True)

    @classmethod
    def from_genotype(cls, genotype: ComponentGenotype) -> "SpikingTrellis":
        """Build the fixed network a component genotype describes."""
        return cls(genotype.config, genotype)

    # ------------------------------------------------------------------ structure helpers
    def _move(self, l: int, s: int, d: int) -> int | None:
        for m, name in enumerate(self.config.moves):
            if s + MOVES[name] == d:
                return m
        return None

    def _s0_level(self, l: int, d: int) -> int:
        if l < 2:
            return 0
        prev = self.valid[l - 2]
        return d if d in prev else min(prev, key=lambda s: (abs(s - d), s))

    def level_sizes(self, spatial: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Spatial size of every level for an input of spatial size ``spatial`` (pixels)."""
        s0 = tuple(math.ceil(n / self.config.stem_stride) for n in spatial)
        return [tuple(math.ceil(n / 2**s) for n in s0) for s in range(self.config.levels)]

    def move_probs(self) -> torch.Tensor:
        """``[L, levels, moves]`` probabilities of the moves out of each node (0 where impossible)."""
        if not self.is_supernet:
            raise ConfigError("move_probs: a fixed network has no betas")
        logits = (self.arch_beta + self.beta_prior).masked_fill(~self.move_mask, float("-inf"))
        p = torch.softmax(logits, dim=-1)
        return torch.nan_to_num(p, nan=0.0)

    def cell_alphas(self, cell: Cell) -> torch.Tensor:
        """The ``[edges, candidates]`` op logits that weight supernet cell ``cell``'s ops: the
        trellis's shared set, or the cell's own (per-node alphas)."""
        return self.arch_alpha if self.shared_alphas else cell.arch_alpha

    def arch_parameters(self) -> list[nn.Parameter]:
        """Alphas, betas, neuron-kind and hybrid logits (empty for a fixed network)."""
        return [p for n, p in self.named_parameters() if is_arch_name(n)]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not an architecture parameter (incl. learnable tau)."""
        return [p for n, p in self.named_parameters() if not is_arch_name(n)]

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, spikes: bool | None = None) -> torch.Tensor:
        """``x`` ``[T, B, C, *S]``; ``spikes`` says whether the input is spikes in the derived
        network, which prices the stem's synaptic ops (ACs at the input's rate, or MACs). None:
        whether ``x`` is binary, the measurement's rule. A supernet whose input comes from
        another supernet's relaxed output needs it: pass that one's :meth:`output_spikes`."""
        cfg = self.config
        if x.dim() != cfg.dim + 3 or x.shape[2] != cfg.in_channels:
            want = "[T, B, C, H, W]" if cfg.dim == 2 else "[T, B, C, D, H, W]"
            raise ConfigError(f"SpikingTrellis input shape {tuple(x.shape)}: expected {want} with C={cfg.in_channels}")
        T = x.shape[0]
        sizes = self.level_sizes(tuple(x.shape[3:]))
        y = self.stem(x)
        stem = Signal(self.stem_act([(y, None)]), self.stem_act.last_cost)
        energy = self.stem.last_macs * T * input_price(x, spikes) + self.stem_act.last_update
        if self.is_supernet:
            probs = self.move_probs()
            path = viterbi(torch.log(probs.detach()), cfg.moves, cfg.out_level)  # the derived path, for the energy
            op_w = (  # shared alphas: one set of weights for every cell
                op_weights(self.arch_alpha, cfg.candidates, cfg.steps, cfg.max_skip) if self.shared_alphas else None
            )
            h: dict[int, dict[int, Signal]] = {-2: {0: stem}, -1: {0: stem}}
            occ: dict[int, dict[int, torch.Tensor | float]] = {-1: {0: 1.0}}
            for l in range(cfg.layers):
                h[l], occ[l] = {}, {}
                for d in self.valid[l]:
                    cell = self.cells[f"{l}_{d}"]
                    lv0 = self._s0_level(l, d)
                    s0 = h[l - 2][0 if l < 2 else lv0]
                    acc_x, acc_p, wsum, o, p_out = 0.0, 0.0, 0.0, 0.0, 0.0
                    for s, sig in h[l - 1].items():
                        m = self._move(l, s, d)
                        if m is None or not bool(self.move_mask[l, s, m]):
                            continue
                        p = probs[l, s, m]
                        out, e = self._run_cell(cell, s0, lv0, sig, s, sizes[d], op_w)
                        acc_x = acc_x + p * out.x
                        acc_p = acc_p + p * out.price
                        wsum = wsum + p
                        on_path = (0 if l == 0 else path[l - 1]) == s and path[l] == d
                        energy = energy + derived_value(occ[l - 1][s] * p, torch.tensor(float(on_path))) * e
                        p_out = p_out + derived_value(p, torch.tensor(float(on_path))) * out.price
                        o = o + occ[l - 1][s] * p
                    h[l][d] = Signal(acc_x, acc_p / wsum)
                    occ[l][d] = o
            out_sig = h[cfg.layers - 1][cfg.out_level]
            out_price = p_out  # the output's price in the derived network (the one incoming move on its path)
        else:
            prev2 = prev1 = (stem, 0)
            for l, d in enumerate(self.path):
                sig, e = self._run_cell(self.cells[str(l)], prev2[0], prev2[1], prev1[0], prev1[1], sizes[d])
                energy = energy + e
                prev2, prev1 = prev1, (sig, d)
            out_sig = prev1[0]
            out_price = out_sig.price
        energy = energy + T * self.reader_macs(tuple(out_sig.x.shape[3:])) * out_price
        self._energy = energy if torch.is_tensor(energy) else torch.tensor(float(energy), device=x.device)
        return out_sig.x

    def output_spikes(self) -> bool:
        """Whether the output is spikes in the derived network: its last cell (on the decoded
        path, for a supernet) spikes rather than being an ANN cell."""
        cfg = self.config
        key = f"{cfg.layers - 1}_{cfg.out_level}" if self.is_supernet else str(cfg.layers - 1)
        return bool(self.cells[key].neurons.spike_prob() >= 0.5)

    def read_by(self, *convs: nn.Module) -> None:
        """Name the convolutions (``nn.Conv2d``/``nn.Conv3d``, on the output with time merged into
        the batch) that read this trellis's output outside it: an application's heads. The
        expected energy then prices their synaptic ops at the output's price, as the measurement
        counts them: an AC per weight a spike uses when the last cell spikes, MACs when it is an
        ANN cell. Without them the hybrid choice of the last cell would look free to the search."""
        want = nn.Conv2d if self.config.dim == 2 else nn.Conv3d
        for c in convs:
            if not isinstance(c, want):
                raise ConfigError(
                    f"read_by: a {type(c).__name__} cannot read a {self.config.dim}D trellis (want {want.__name__})"
                )
            if c.in_channels != self.out_channels:
                raise ConfigError(
                    f"read_by: the conv takes {c.in_channels} channels, the trellis gives {self.out_channels}"
                )
        self._readers = tuple(convs)  # a plain attribute: the application owns (and registers) them

    def reader_macs(self, out_size: tuple[int, ...]) -> float:
        """MACs per sample and time step of the convolutions named by :meth:`read_by`, for a
        trellis output of spatial size ``out_size``."""
        return sum(conv_macs(c, conv_out_size(c, out_size)) for c in self._readers)

    def _run_cell(self, cell: Cell, *args: Any) -> tuple[Signal, torch.Tensor | float]:
        """``cell(*args)``; with ``memory.checkpoint_cells`` (and autograd on) its activations are
        not kept but computed again in the backward, from the same inputs, random state and
        buffers (:class:`_KeepBuffers`), so values and gradients are those of the plain call."""
        if not (self.memory.checkpoint_cells and torch.is_grad_enabled()):
            return cell(*args)
        return checkpoint(
            cell, *args, use_reentrant=False, context_fn=lambda: (contextlib.nullcontext(), _KeepBuffers(cell))
        )

    def expected_energy(self) -> torch.Tensor:
        """Expected compute energy of the last forward in pJ per sample (differentiable in arch logits)."""
        if self._energy is None:
            raise RuntimeError("expected_energy: run a forward pass first")
        return self._energy

    # ------------------------------------------------------------------ decoding
    def path_cells(self) -> list[Cell]:
        """The cells the derived network keeps: those on the Viterbi path of a supernet, every
        cell of a fixed network."""
        if not self.is_supernet:
            return list(self.cells.values())
        with torch.no_grad():
            path = viterbi(torch.log(self.move_probs()), self.config.moves, self.config.out_level)
        return [self.cells[f"{l}_{d}"] for l, d in enumerate(path)]

    def _cell_choice(self, cell: Cell) -> tuple[str, float | None, bool]:
        """The cell's decoded neuron: kind, searched fixed tau (None: the kind's own), spiking."""
        n = cell.neurons
        kind, tau = n.choices[int(n.kind_probs().argmax())]
        return kind, tau, bool(n.spike_prob() >= 0.5)

    def derive(self) -> ComponentGenotype:
        """Decode the supernet: Viterbi path, top-2 edges per node, neuron kind/tau/b, spiking or ANN.

        With shared alphas every cell of the path gets the same edges and ops (decoded once);
        the neuron decisions (kind, tau, b, spiking or ANN) are each cell's own."""
        if not self.is_supernet:
            raise ConfigError("derive: this network is already fixed")
        cfg = self.config
        with torch.no_grad():
            path = viterbi(torch.log(self.move_probs()), cfg.moves, cfg.out_level)
            cells = []
            for l, d in enumerate(path):
                cell = self.cells[f"{l}_{d}"]
                kind, fixed_tau, spiking = self._cell_choice(cell)
                tau = cell.neurons.tau_value(kind, fixed_tau)
                temps = cell.searched_b(choice_key(kind, fixed_tau))
                cells.append(
                    CellGenotype(
                        decode_cell(self.cell_alphas(cell), cfg.candidates, cfg.steps, cfg.max_skip),
                        kind,
                        tuple(tau) if isinstance(tau, list) else tau,
                        temps.get("node", float(cfg.neuron.b)),
                        spiking,
                        {g: b for g, b in temps.items() if g != "node"},
                    )
                )
        return ComponentGenotype(cfg, tuple(path), tuple(cells))

    def arch_summary(self) -> str:
        """Readable state of the architecture: the current best path and, per layer, ops and neurons."""
        if not self.is_supernet:
            return f"fixed path {list(self.path)}"
        g = self.derive()
        lines = [f"path {list(g.path)}"]

        def op_weights(alphas: torch.Tensor) -> str:
            mean = torch.softmax(alphas.detach(), -1).mean(0)
            return " ".join(f"{n}={float(v):.2f}" for n, v in zip(self.config.candidates, mean))

        if self.shared_alphas:
            lines.append(f"  shared cell: mean op w [{op_weights(self.arch_alpha)}]")
        for l, (d, cg) in enumerate(zip(g.path, g.cells)):
            cell = self.cells[f"{l}_{d}"]
            ops = "" if self.shared_alphas else f"mean op w [{op_weights(cell.arch_alpha)}] "
            kinds = " ".join(
                f"{choice_key(k, t)}={float(p):.2f}"
                for (k, t), p in zip(cell.neurons.choices, cell.neurons.kind_probs().detach())
            )
            nodes = " | ".join(",".join(f"{i}:{op}" for i, op in node) for node in cg.edges)
            lines.append(
                f"  L{l}@{d}: {ops}kinds [{kinds}] p_spk={float(cell.neurons.spike_prob().detach()):.2f}"
                f" tau={f'{cg.tau:.3f}' if isinstance(cg.tau, float) else 'per-channel'} b={cg.surrogate_b:.2f}"
                f" -> {nodes}"
            )
        return "\n".join(lines)


class _KeepBuffers:
    """Undo what a recomputation does to ``module``'s buffers (BatchNorm running statistics
    would otherwise be updated again at every recomputation). Restored through ``.data``: the
    values autograd saved stay valid (a double backward, as in a DGS round, checks their
    versions). Reusable: a double backward recomputes a cell more than once."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __enter__(self) -> None:
        self.saved = [(b, b.detach().clone()) for b in self.module.buffers()]

    def __exit__(self, *exc: Any) -> None:
        for b, v in self.saved:
            b.data.copy_(v)
        self.saved = []


def trellises(model: nn.Module) -> list[SpikingTrellis]:
    """Every :class:`SpikingTrellis` inside ``model`` (including ``model`` itself)."""
    return [m for m in model.modules() if isinstance(m, SpikingTrellis)]


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(weights, architecture)`` parameters of ``model``; architecture = every trellis's arch logits."""
    arch = {id(p): p for t in trellises(model) for p in t.arch_parameters()}
    weights, seen = [], set()
    for p in model.parameters():
        if id(p) not in arch and id(p) not in seen:
            seen.add(id(p))
            weights.append(p)
    return weights, list(arch.values())
