"""Differentiable surrogate-gradient search (DGS) for every spiking layer.

A round (run periodically during search or retraining): each Dspike surrogate in the model gets
candidates ``b_k = clamp(b + delta_k)`` mixed in its backward with ``softmax(logits)``. A
surrogate only shapes the backward, so the signal for the logits comes from a one-step
look-ahead: a training step would move the weights by ``-lr * g(a)``, ``g(a) = grad_w L_train``
under the mixed surrogates, hence (first order)
``dL_val / da ~= -lr * <grad_w L_val, d g(a) / da>``. Per batch pair this costs one ordinary
backward on a held-out batch and one backward with ``create_graph=True`` on a training batch,
for all layers at once; the weights are not changed. After the round every surrogate moves to
its winning candidate (ties: the candidate nearest the current b) and the b of each layer is
appended to :attr:`SurrogateSearch.history`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from .. import distributed
from ..errors import ConfigError
from ..spiking import Dspike, reset
from .trellis import split_parameters

__all__ = ["DGSConfig", "SurrogateSearch"]


@dataclass
class DGSConfig:
    """DGS schedule and ranges.

    every: epochs between rounds; start: the 0-based epoch of the first round, or ``None``
    (the default) for "once the weights are trained": after ``every`` epochs and after the
    search's architecture warm-up (:meth:`first_epoch`; the reference runs a round every 5
    epochs on weights that have trained). max_batches: batch pairs per round (the data is
    iterated again when it holds fewer). Two rounds from the same state should agree on the
    direction each b moves: on the bundled stereo search they agreed on 20 of 39 surrogates
    with 4 pairs and 29 of 39 with 16; on the digits supernet (``tools/dgs_agreement.py``,
    115 surrogates) 41, 37 and 39 agreed with 4, 16 and 32 pairs, chance level (about a
    third) at every length. 16 is the default: what the stereo figures support, at half the
    cost of 32, which bought nothing on digits. deltas: candidate offsets of b; lr: Adam step
    on the mixing logits; lookahead_lr: inner step size of the look-ahead; b_min/b_max:
    clamp range of b. min_evidence: 0 takes the argmax of the learned mixing weights (the
    reference's rule); z > 0 moves b only to a candidate whose advantage over keeping b, per
    batch pair of the round, has a mean at least ``z`` standard errors above zero (else b
    stays). The default 2 is measured on the digits supernet (172 surrogates, two rounds from
    one state): with the argmax rule about 70 % of the b move every round and their directions
    agree at chance level with 4, 16 or 32 pairs; with z = 2 and 16 pairs 12 moved and the two
    rounds agreed on 154 (90 %; 4 pairs: 27 moved, 123 agreed).
    """

    every: int = 5
    start: int | None = None
    max_batches: int = 16
    deltas: tuple[float, ...] = (-0.4, -0.2, 0.0, 0.2, 0.4)
    lr: float = 0.01
    lookahead_lr: float = 0.1
    b_min: float = 1.0
    b_max: float = 6.0
    min_evidence: float = 2.0

    def __post_init__(self) -> None:
        if self.every < 1 or self.max_batches < 1 or (self.start is not None and self.start < 0):
            raise ConfigError("dgs: every and max_batches must be >= 1, start >= 0 (or null: after warm-up)")
        if len(self.deltas) < 2:
            raise ConfigError(f"dgs deltas {self.deltas}: need at least two candidates")
        if not self.min_evidence >= 0:
            raise ConfigError(f"dgs min_evidence {self.min_evidence}: must be >= 0 (0: argmax of the mixing weights)")
        if not 0 < self.b_min <= self.b_max:
            raise ConfigError(f"dgs range [{self.b_min}, {self.b_max}]: need 0 < b_min <= b_max")
        self.deltas = tuple(float(d) for d in self.deltas)

    def first_epoch(self, warmup: int = 0) -> int:
        """The 0-based epoch of the first round: ``start``, or with ``start=None`` the later of
        ``every`` (the weights have trained that many epochs) and ``warmup`` (a search's
        architecture warm-up)."""
        return self.start if self.start is not None else max(self.every, int(warmup))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        d = asdict(self)
        d["deltas"] = list(self.deltas)
        return d


class SurrogateSearch:
    """The DGS controller a training loop calls: ``dgs.maybe_run(epoch, train, heldout, loss_fn)``."""

    def __init__(self, model: nn.Module, config: DGSConfig | None = None):
        self.model = model
        self.config = config or DGSConfig()
        self.surrogates: list[tuple[str, Dspike]] = [(n, m) for n, m in model.named_modules() if isinstance(m, Dspike)]
        if not self.surrogates:
            raise ConfigError("dgs: the model has no Dspike surrogate (no spiking layer to search)")
        self.history: dict[str, list[float]] = {n: [float(m.b)] for n, m in self.surrogates}

    def current_b(self) -> dict[str, float]:
        """Surrogate temperature of every spiking layer, by module name."""
        return {n: float(m.b) for n, m in self.surrogates}

    def maybe_run(
        self,
        epoch: int,
        train_batches: Iterable,
        val_batches: Iterable,
        loss_fn: Callable[[nn.Module, Any], torch.Tensor],
        warmup: int = 0,
    ) -> bool:
        """Run a round when ``epoch`` (0-based) is on the schedule (from
        :meth:`DGSConfig.first_epoch` ``(warmup)`` every ``every`` epochs); True when it ran.
        ``val_batches`` must be training data held apart from the batches of ``train_batches``,
        never the data that chooses the best model."""
        if not self.due(epoch, warmup):
            return False
        self.run(train_batches, val_batches, loss_fn)
        return True

    def due(self, epoch: int, warmup: int = 0) -> bool:
        """True when a round is on the schedule at ``epoch`` (0-based)."""
        first = self.config.first_epoch(warmup)
        return epoch >= first and (epoch - first) % self.config.every == 0

    def run(
        self, train_batches: Iterable, val_batches: Iterable, loss_fn: Callable[[nn.Module, Any], torch.Tensor]
    ) -> dict[str, float]:
        """One DGS round over up to ``max_batches`` pairs; returns the new b per layer."""
        c = self.config
        weights = [p for p in split_parameters(self.model)[0] if p.requires_grad]
        deltas = torch.tensor(c.deltas)
        cands, logits = [], []
        for _, sg in self.surrogates:
            bs = (float(sg.b) + deltas).clamp(c.b_min, c.b_max).to(sg.b.device)
            lg = torch.zeros(len(c.deltas), device=sg.b.device, requires_grad=True)
            sg.set_mixture(bs, lg)
            cands.append(bs)
            logits.append(lg)
        opt = torch.optim.Adam(logits, lr=c.lr)
        used = 0
        steps: list[torch.Tensor] = []  # per batch pair: [surrogates, candidates] logit gradients
        try:
            for tb, vb in _pairs(train_batches, val_batches, c.max_batches):
                reset(self.model)
                gv = torch.autograd.grad(loss_fn(self.model, vb), weights, allow_unused=True)
                reset(self.model)
                gt = torch.autograd.grad(loss_fn(self.model, tb), weights, create_graph=True, allow_unused=True)
                inner = sum(
                    ((v.detach() * g).sum() for v, g in zip(gv, gt) if v is not None and g is not None), torch.zeros(())
                )
                opt.zero_grad()
                if inner.requires_grad:
                    grads = torch.autograd.grad(-c.lookahead_lr * inner, logits, allow_unused=True)
                    for lg, g in zip(logits, grads):
                        lg.grad = torch.zeros_like(lg) if g is None else g.detach()
                    steps.append(torch.stack([lg.grad for lg in logits]))
                    opt.step()
                used += 1
                del gv, gt, inner
        finally:
            chosen = {}
            evidence = self._evidence(steps) if c.min_evidence > 0 else None
            for i, ((name, sg), bs, lg) in enumerate(zip(self.surrogates, cands, logits)):
                sg.clear_mixture()
                if not used:
                    chosen[name] = float(sg.b)
                elif evidence is not None:
                    chosen[name] = float(bs[self._supported(evidence[i], bs, float(sg.b), c.min_evidence)])
                else:
                    chosen[name] = float(bs[self._winner(lg.detach(), bs, float(sg.b))])
            chosen = distributed.broadcast_object(chosen)  # under torchrun every process takes rank 0's choice
            for name, sg in self.surrogates:
                sg.set_b(chosen[name])
                self.history[name].append(float(sg.b))
            reset(self.model)
        return self.current_b()

    def _evidence(self, steps: list[torch.Tensor]) -> torch.Tensor:
        """Per surrogate and candidate ``k``: ``(mean, z)`` over the round's batch pairs of
        ``d_k = g_stay - g_k`` (``g``: the look-ahead gradient of the mixing logits; ``d_k > 0``
        when a descent step favours ``k`` over keeping b; z = mean / standard error).
        Shape ``[surrogates, candidates, 2]``; zeros with fewer than 2 pairs."""
        if len(steps) < 2:
            return torch.zeros(len(self.surrogates), len(self.config.deltas), 2)
        g = torch.stack(steps).float()  # [pairs, surrogates, candidates]
        d = g[..., self._stay_index()].unsqueeze(-1) - g
        mean, se = d.mean(0), d.std(0) / len(steps) ** 0.5
        z = torch.where(se > 0, mean / se.clamp_min(1e-30), torch.zeros_like(mean))
        return torch.stack([mean, z], -1)

    def _stay_index(self) -> int:
        """The candidate that keeps b (delta closest to 0)."""
        return min(range(len(self.config.deltas)), key=lambda k: abs(self.config.deltas[k]))

    def _supported(self, evidence: torch.Tensor, bs: torch.Tensor, b: float, min_z: float) -> int:
        """The candidate a round's evidence supports: the largest mean advantage over keeping b
        among those whose advantage is ``min_z`` standard errors above zero; else keep b."""
        ok = [k for k in range(len(bs)) if float(evidence[k, 1]) >= min_z and float(evidence[k, 0]) > 0]
        if not ok:
            return min(range(len(bs)), key=lambda k: (abs(float(bs[k]) - b), k))
        return max(ok, key=lambda k: (float(evidence[k, 0]), -abs(float(bs[k]) - b)))

    @staticmethod
    def _winner(logits: torch.Tensor, bs: torch.Tensor, b: float) -> int:
        """Argmax of the logits; ties go to the candidate closest to the current b."""
        best = float(logits.max())
        tied = [k for k in range(len(logits)) if float(logits[k]) >= best - 1e-12]
        return min(tied, key=lambda k: (abs(float(bs[k]) - b), k))


def _pairs(train_batches: Iterable, val_batches: Iterable, n: int) -> Iterator[tuple[Any, Any]]:
    """Up to ``n`` (train, held-out) batch pairs; iterables that run out first are iterated
    again (a re-iterable loader then gives a new shuffle),
    so a round gets its ``max_batches`` on a small dataset too. Stops when a pass yields nothing."""
    done = 0
    while done < n:
        before = done
        for pair in zip(train_batches, val_batches):
            yield pair
            done += 1
            if done >= n:
                return
        if done == before or iter(train_batches) is train_batches or iter(val_batches) is val_batches:
            return  # empty, or a one-shot iterator that cannot be iterated again
