"""Did the search run long enough to decide? Each decision's distance from uniform and its margin.

After a search every architecture decision is a row of logits (an edge's ops, the moves out
of a trellis node, a cell's neuron kinds, spiking or ANN) and one chosen entry. For each row
this module reports how far it moved from uniform (largest ``|logit - mean logit|``) and the
margin of the chosen entry over the strongest other one (logits; negative when a decoding
rule, such as ``max_skip`` or the Viterbi path, took an entry that is not its row's argmax).

**Within noise.** The architecture steps are Adam steps at a constant ``arch_lr``. Adam
normalises each step by the gradient's running magnitude, so a logit moves by about ``lr``
per step whatever the gradient's scale: by ``lr * N`` after N steps under a steady signal,
and by a random walk of spread ``lr * sqrt(N)`` under gradients that are pure noise
(measured: a 3-way softmax row under random gradients, 20 to 300 steps at betas (0.5, 0.999),
gives a spread of the difference of two logits of 1.0 to 1.25 x ``lr * sqrt(2N)``, and 95 %
of its top-two margins below 1.5 to 2.0 x ``lr * sqrt(2N)``). The difference of two logits,
each starting at ``1e-3 * randn``, therefore has the noise spread
``sigma = sqrt(2) * sqrt(1e-6 + lr**2 * N)``. A decision is *within noise* when
``|margin| < 2 * sigma``: a gap that gradients without any signal reach about one time in
twenty. The threshold grows as ``sqrt(N)`` while a steady signal grows as ``N`` (the chosen
logit up by ``lr`` a step, its rival down by as much: a margin of at most ``2 * lr * N``), so a
longer search separates them; a search of one or two steps cannot pass, whatever its data.
The noise level ignores the architecture weight decay, which only shrinks logits.

Only the decisions that shape the derived network count for the warning: the ops of the kept
edges, the moves along the Viterbi path, and the neuron kind and spiking choice of the cells
on the path. The other rows are reported too (``decides: false``). Which two inputs a node
keeps is decided by the same op rows and is not reported separately.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import torch

from .activation import choice_key
from .cell import edge_inputs
from .config import MOVES
from .trellis import SpikingTrellis

__all__ = ["REPORT_FILE", "Decision", "SearchReport", "noise_margin", "search_report"]

#: the file each application writes into the search's run folder
REPORT_FILE = "search_report.json"
#: std of the initial architecture logits (``1e-3 * randn`` in the trellis, cells and neurons)
INIT_STD = 1e-3
#: a margin within this many noise spreads of zero is within noise
NOISE_SIGMAS = 2.0


def noise_margin(arch_lr: float, steps: int) -> float:
    """Margin in logits below which a decision is within noise after ``steps`` Adam steps at
    ``arch_lr``: ``2 * sqrt(2) * sqrt(INIT_STD**2 + arch_lr**2 * steps)`` (module docstring).

    >>> round(noise_margin(0.01, 72), 3)
    0.24
    """
    return NOISE_SIGMAS * math.sqrt(2.0) * math.sqrt(INIT_STD**2 + arch_lr**2 * max(0, int(steps)))


@dataclass(frozen=True)
class Decision:
    """One architecture decision: ``component``, ``kind`` (op, move, neuron, spiking), ``where``
    in the trellis, the ``chosen`` entry and its strongest rival ``runner_up``, ``margin``
    (chosen logit minus the rival's), ``moved`` (largest distance of a logit from the row's
    mean: 0 = still uniform), ``p_chosen`` (softmax probability) and ``decides`` (part of the
    derived network). For a move the logits are the learnt ones (``arch_beta``, the evidence),
    not the fixed path prior added to them; ``p_chosen`` is the move's probability with it."""

    component: str
    kind: str
    where: str
    chosen: str
    runner_up: str
    margin: float
    moved: float
    p_chosen: float
    decides: bool


@dataclass(frozen=True)
class SearchReport:
    """The decisions of a search and the noise level they are judged against (logits)."""

    arch_steps: int
    arch_lr: float
    noise: float
    decisions: tuple[Decision, ...]

    def within_noise(self) -> list[Decision]:
        """The decisions of the derived network whose margin is within noise."""
        return [d for d in self.decisions if d.decides and abs(d.margin) < self.noise]

    def summary(self) -> dict[str, Any]:
        """Counts and extremes (what the genotype's settings keep)."""
        deciding = [d for d in self.decisions if d.decides]
        margins = sorted(abs(d.margin) for d in deciding)
        return {
            "arch_steps": self.arch_steps,
            "arch_lr": self.arch_lr,
            "noise_margin": round(self.noise, 6),
            "decisions": len(deciding),
            "within_noise": len(self.within_noise()),
            "smallest_margin": round(margins[0], 6) if margins else None,
            "median_margin": round(margins[len(margins) // 2], 6) if margins else None,
            "largest_moved": round(max((d.moved for d in self.decisions), default=0.0), 6),
            "long_enough": not self.within_noise(),
        }

    def headline(self) -> str:
        """One line: a warning when any decision of the derived network is within noise."""
        s = self.summary()
        steps = f"{self.arch_steps} architecture step{'' if self.arch_steps == 1 else 's'}"
        basis = f"noise level {self.noise:.3g} logits after {steps} at arch_lr {self.arch_lr:g}"
        if s["within_noise"]:
            return (
                f"warning: search too short to decide: {s['within_noise']} of {s['decisions']} decisions of the "
                f"derived architecture lead their runner-up by less than the {basis}; search longer or raise "
                f"arch_lr ({REPORT_FILE} lists each decision)"
            )
        return (
            f"search decided: all {s['decisions']} decisions of the derived architecture lead by more than the "
            f"{basis} (smallest margin {s['smallest_margin']:.3g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the summary, how the noise level is defined, and every decision."""
        return {
            "summary": self.summary(),
            "noise_rule": "|margin| < 2 * sqrt(2) * sqrt(1e-6 + arch_lr**2 * arch_steps) logits is within noise",
            "decisions": [asdict(d) for d in self.decisions],
        }


def _decision(
    component: str,
    kind: str,
    where: str,
    logits: torch.Tensor,
    names: Sequence[str],
    chosen: int,
    decides: bool,
    prior: torch.Tensor | None = None,
) -> Decision:
    """One row's decision; ``prior``: fixed logits added to ``logits`` for ``p_chosen`` only."""
    v = logits.detach().double().cpu()
    full = v if prior is None else v + prior.detach().double().cpu()
    others = [k for k in range(len(names)) if k != chosen]
    rival = max(others, key=lambda k: float(v[k]))
    return Decision(
        component,
        kind,
        where,
        names[chosen],
        names[rival],
        float(v[chosen] - v[rival]),
        float((v - v.mean()).abs().max()),
        float(torch.softmax(full, 0)[chosen]),
        decides,
    )


def _input_name(i: int) -> str:
    return {0: "c(k-2)", 1: "c(k-1)"}.get(i, f"node {i - 2}")


def _op_rows(name: str, alphas: torch.Tensor, edges: Any, candidates: Sequence[str], at: str) -> list[Decision]:
    kept = {(j, i): op for j, node in enumerate(edges) for i, op in node}
    out = []
    for e, (j, i) in enumerate(edge_inputs(len(edges))):
        op = kept.get((j, i))
        chosen = list(candidates).index(op) if op is not None else int(alphas[e].argmax())
        where = f"{at}node {j} <- {_input_name(i)}"
        out.append(_decision(name, "op", where, alphas[e], candidates, chosen, op is not None))
    return out


def _trellis_decisions(name: str, net: SpikingTrellis) -> list[Decision]:
    cfg = net.config
    g = net.derive()
    out: list[Decision] = []
    if net.shared_alphas:  # one set for every cell: the same edges were kept in every derived cell
        out += _op_rows(name, net.arch_alpha, g.cells[0].edges, cfg.candidates, "shared cell ")
    prev = 0
    for l, (d, cg) in enumerate(zip(g.path, g.cells)):
        cell = net.cells[f"{l}_{d}"]
        if not net.shared_alphas:
            out += _op_rows(name, cell.arch_alpha, cg.edges, cfg.candidates, f"layer {l} level {d} ")
        valid = [m for m in range(len(cfg.moves)) if bool(net.move_mask[l, prev, m])]
        if len(valid) > 1:
            chosen = next(k for k, m in enumerate(valid) if prev + MOVES[cfg.moves[m]] == d)
            row, prior = net.arch_beta[l, prev, valid], net.beta_prior[l, prev, valid]
            moves = [cfg.moves[m] for m in valid]
            out.append(_decision(name, "move", f"layer {l} from level {prev}", row, moves, chosen, True, prior))
        n = cell.neurons
        if hasattr(n, "arch_type"):
            labels = [choice_key(k, t) for k, t in n.choices]  # kinds, lif once per searched tau
            chosen = int(n.arch_type.detach().argmax())  # what derivation decodes (argmax)
            out.append(_decision(name, "neuron", f"layer {l} level {d}", n.arch_type, labels, chosen, True))
        if n.hybrid:
            row = n.arch_hybrid  # (spiking, ann)
            out.append(
                _decision(name, "spiking", f"layer {l} level {d}", row, ("spiking", "ann"), int(not cg.spiking), True)
            )
        prev = d
    return out


def search_report(components: Mapping[str, SpikingTrellis], arch_lr: float, arch_steps: int) -> SearchReport:
    """The decisions of every named supernet component after ``arch_steps`` steps at ``arch_lr``."""
    with torch.no_grad():
        decisions = [d for name, net in components.items() for d in _trellis_decisions(name, net)]
    return SearchReport(int(arch_steps), float(arch_lr), noise_margin(arch_lr, arch_steps), tuple(decisions))
