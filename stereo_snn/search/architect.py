"""First-order bilevel search: weight steps on one half of the data, architecture steps on the other.

Task-agnostic: the application hands over its model (containing one or more
:class:`SpikingTrellis`), ``loss_fn(model, batch) -> scalar`` and two batch iterables. The
architecture loss adds the expected-energy penalty of the named components. Under torchrun
each process iterates its share of both halves and the gradients of both steps are averaged
over the processes, so weights and architecture stay identical on every rank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn

from .. import distributed
from ..errors import ConfigError
from ..spiking import reset
from .config import ENERGY_CONSTRAINTS
from .dgs import SurrogateSearch
from .energy import PJ_PER_MJ
from .genotype import Genotype
from .report import SearchReport, search_report
from .trellis import SpikingTrellis, split_parameters

__all__ = ["BilevelConfig", "Searcher"]


@dataclass
class BilevelConfig:
    """Settings of the engine's bilevel optimiser (each application's ``search`` settings
    section fills one): epochs (0-based); SGD on the weights with ``lr`` cosine-annealed to
    ``lr_min``, ``momentum`` and ``weight_decay``; Adam on the architecture parameters with
    ``arch_lr``; max_batches: batch pairs per epoch (None: all).

    Energy (E: the expected energy, mJ per sample of the application: a stereo frame, an image):
    without a target, the fixed weight ``energy_weight`` multiplies ``E / E_ref`` (relative to
    the first architecture step). With ``energy_target_mj`` the constraint ``E <= target`` is
    enforced by a Lagrange multiplier lambda: the architecture loss adds
    ``lambda * (E / target - 1)`` and after every architecture step lambda moves by dual ascent,
    ``lambda <- max(0, lambda + energy_dual_lr * (E / target - 1))`` (it grows while E is over
    the target and shrinks to 0 under it); ``energy_weight`` is then its starting value.
    ``energy_constraint``: ``max`` (that inequality) or ``equal`` (``E = target``: lambda is not
    clamped at 0, so under the target it turns negative and pulls the energy up to it; the
    target is then the energy the user wants to spend, as in a FLOPs-targeted search).
    ``energy_fit``: derive within the target (:meth:`Searcher.fit_to_target`): the learnt
    spiking-or-ANN choices of the derived cells are changed, least decided first, until the
    expected energy is under the target (and, with ``equal``, as close under it as they allow).
    amp: run both forwards under autocast (float16 with loss scaling on CUDA, bfloat16 on the CPU)."""

    epochs: int = 10
    warmup_epochs: int = 1
    lr: float = 0.1
    lr_min: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float = 1e-3
    arch_weight_decay: float = 1e-3
    energy_weight: float = 0.0
    energy_target_mj: float | None = None
    energy_dual_lr: float = 0.5
    energy_constraint: str = "max"
    energy_fit: bool = False
    max_batches: int | None = None
    amp: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.warmup_epochs < 0:
            raise ConfigError("search: epochs must be >= 1 and warmup_epochs >= 0")
        if self.lr <= 0 or self.arch_lr <= 0 or self.grad_clip <= 0:
            raise ConfigError("search: lr, arch_lr and grad_clip must be > 0")
        if self.max_batches is not None and (
            isinstance(self.max_batches, bool) or not isinstance(self.max_batches, int) or self.max_batches < 1
        ):
            raise ConfigError(f"search max_batches {self.max_batches!r}: must be an integer >= 1 (null: every batch)")
        if self.energy_weight < 0:
            raise ConfigError(f"search energy_weight {self.energy_weight}: must be >= 0")
        if self.energy_target_mj is not None and self.energy_target_mj <= 0:
            raise ConfigError(f"search energy_target_mj {self.energy_target_mj}: must be > 0")
        if self.energy_dual_lr < 0:
            raise ConfigError(f"search energy_dual_lr {self.energy_dual_lr}: must be >= 0")
        if self.energy_fit and self.energy_target_mj is None:
            raise ConfigError("search energy_fit: needs an energy target (energy_target_mj)")
        if self.energy_constraint not in ENERGY_CONSTRAINTS:
            raise ConfigError(
                f"search energy_constraint {self.energy_constraint!r}: must be one of {', '.join(ENERGY_CONSTRAINTS)}"
            )

    @property
    def energy_on(self) -> bool:
        """Whether the architecture loss has an energy term (a weight or a target)."""
        return self.energy_weight > 0 or self.energy_target_mj is not None


def _backward_into(loss: torch.Tensor, params: list[nn.Parameter]) -> None:
    """``loss.backward()`` restricted to ``params``: the same gradients in ``p.grad`` (added to
    any already there), without computing the gradients of every other parameter."""
    wanted = [p for p in params if p.requires_grad]
    if not wanted:
        return
    for p, g in zip(wanted, torch.autograd.grad(loss, wanted, allow_unused=True)):
        if g is not None:
            p.grad = g if p.grad is None else p.grad + g


class Searcher:
    """Alternates architecture steps (held-out half) and weight steps (training half)."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[nn.Module, Any], torch.Tensor],
        config: BilevelConfig,
        components: Mapping[str, SpikingTrellis],
        dgs: SurrogateSearch | None = None,
        log: Callable[[str], None] = print,
        runs_per_sample: Mapping[str, int] | None = None,
    ):
        """``runs_per_sample``: how often a component runs per sample of the application (the
        stereo feature net: 2, once per view); its expected energy counts that many times."""
        if not components:
            raise ConfigError("search: name at least one SpikingTrellis component")
        for name, comp in components.items():
            if not isinstance(comp, SpikingTrellis) or not comp.is_supernet:
                raise ConfigError(f"search component {name!r}: must be a SpikingTrellis supernet")
        self.model, self.loss_fn, self.config = model, loss_fn, config
        self.components = dict(components)
        self.runs = {name: 1 for name in self.components}
        for name, n in (runs_per_sample or {}).items():
            if name not in self.runs or isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"search runs_per_sample {name!r}: {n!r} (a component name and an integer >= 1)")
            self.runs[name] = n
        self.dgs, self.log = dgs, log
        self.weights, self.arch = split_parameters(model)
        c = config
        self.w_opt = torch.optim.SGD(self.weights, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        self.a_opt = torch.optim.Adam(self.arch, lr=c.arch_lr, betas=(0.5, 0.999), weight_decay=c.arch_weight_decay)
        self.e_ref: torch.Tensor | None = None
        self.multiplier = float(c.energy_weight)  # lambda of the energy target (dual ascent)
        self.multiplier_trace: list[float] = []  # lambda after every architecture step
        self.history: list[dict[str, Any]] = []
        self.arch_steps = 0  # architecture steps taken (the noise level of :meth:`report` grows with them)
        self._last_val: Any = None  # the last architecture batch: energy_fit measures on it
        first = next(iter(self.weights + self.arch), None)
        self.device_type = first.device.type if first is not None else "cpu"
        scale = c.amp and self.device_type == "cuda"  # float16 needs loss scaling; bfloat16 does not
        self.w_scaler = torch.amp.GradScaler(self.device_type, enabled=scale)
        self.a_scaler = torch.amp.GradScaler(self.device_type, enabled=scale)

    def autocast(self) -> Any:
        """The forward's autocast context (a no-op unless ``amp``)."""
        dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        return torch.autocast(self.device_type, dtype=dtype, enabled=self.config.amp)

    def energy_pj(self) -> torch.Tensor:
        """Expected energy (pJ per application sample) of all components, from their last forward."""
        return sum(self.runs[name] * comp.expected_energy() for name, comp in self.components.items())

    def energy_penalty(self) -> torch.Tensor:
        """lambda * E / E_ref, or with a target the Lagrangian term lambda * (E / target - 1)
        (dimensionless)."""
        c = self.config
        e = self.energy_pj()
        if c.energy_target_mj is not None:
            return self.multiplier * (e / (c.energy_target_mj * PJ_PER_MJ) - 1.0)
        if self.e_ref is None:
            ref = e.detach()
            if distributed.world_size() > 1:  # the same reference on every process: the mean of their first energies
                ref = torch.full_like(ref, distributed.sum_floats([float(ref)])[0] / distributed.world_size())
            self.e_ref = ref.clamp_min(1e-12)
        return c.energy_weight * e / self.e_ref

    def update_multiplier(self, energy_pj: float) -> float:
        """Dual ascent on the energy target's multiplier after an architecture step whose
        expected energy was ``energy_pj``: ``max(0, lambda + energy_dual_lr * (E / target - 1))``;
        returns the new lambda (unchanged without a target)."""
        c = self.config
        if c.energy_target_mj is not None:
            violation = energy_pj / (c.energy_target_mj * PJ_PER_MJ) - 1.0
            self.multiplier += c.energy_dual_lr * violation
            if c.energy_constraint == "max":
                self.multiplier = max(0.0, self.multiplier)
            self.multiplier_trace.append(self.multiplier)
        return self.multiplier

    def lr_at(self, epoch: int) -> float:
        """Cosine-annealed weight learning rate for ``epoch``."""
        c = self.config
        return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1 + math.cos(math.pi * epoch / c.epochs))

    def step(self, train_batch: Any, val_batch: Any, epoch: int) -> dict[str, float]:
        """One search step: architecture step (from ``warmup_epochs`` on), then a weight step."""
        out: dict[str, float] = {}
        if epoch >= self.config.warmup_epochs and self.arch:
            reset(self.model)
            self.a_opt.zero_grad(set_to_none=True)
            with self.autocast():
                val_loss = self.loss_fn(self.model, val_batch)
                total = val_loss + (self.energy_penalty() if self.config.energy_on else 0.0)
            _backward_into(self.a_scaler.scale(total), self.arch)  # only the architecture gradients
            distributed.average_gradients(self.arch)  # torchrun: identical architecture on every process
            self.a_scaler.step(self.a_opt)
            self.a_scaler.update()
            self.arch_steps += 1
            out["val_loss"] = float(val_loss.detach())
            if self.config.energy_target_mj is not None:
                e = float(self.energy_pj().detach())
                if distributed.world_size() > 1:  # the same multiplier on every process
                    e = distributed.sum_floats([e])[0] / distributed.world_size()
                out["energy_multiplier"] = self.update_multiplier(e)
        reset(self.model)
        self.w_opt.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.loss_fn(self.model, train_batch)
        _backward_into(self.w_scaler.scale(loss), self.weights)  # only the weight gradients are needed here
        distributed.average_gradients(self.weights)
        self.w_scaler.unscale_(self.w_opt)
        torch.nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_scaler.step(self.w_opt)
        self.w_scaler.update()
        out["loss"] = float(loss.detach())
        out["energy_mj"] = float(self.energy_pj().detach()) / PJ_PER_MJ
        return out

    def run(self, train_batches: Iterable, val_batches: Iterable) -> Genotype:
        """All epochs (the iterables are iterated once per epoch); returns the derived genotype."""
        c = self.config
        distributed.broadcast_module(self.model)  # torchrun: every process starts from rank 0's supernet
        for epoch in range(c.epochs):
            lr = self.lr_at(epoch)
            for group in self.w_opt.param_groups:
                group["lr"] = lr
            if self.dgs is not None and self.dgs.maybe_run(
                epoch, train_batches, val_batches, self.loss_fn, warmup=c.warmup_epochs
            ):
                self.log(
                    f"epoch {epoch + 1}/{c.epochs}: DGS b range [{min(self.dgs.current_b().values()):.2f}, "
                    f"{max(self.dgs.current_b().values()):.2f}]"
                )
            sums: dict[str, float] = {}
            n = 0
            for i, (tb, vb) in enumerate(zip(train_batches, val_batches)):
                if c.max_batches is not None and i >= c.max_batches:
                    break
                self._last_val = vb
                for k, v in self.step(tb, vb, epoch).items():
                    sums[k] = sums.get(k, 0.0) + v
                n += 1
            if distributed.world_size() > 1:  # means over every process's batches
                keys = sorted(sums)
                n, *totals = distributed.sum_floats([n, *(sums[k] for k in keys)])
                sums = dict(zip(keys, totals))
            summary = {"epoch": epoch + 1, "lr": lr, **{k: v / max(n, 1) for k, v in sums.items()}}
            summary["arch"] = {name: comp.arch_summary() for name, comp in self.components.items()}
            self.history.append(summary)
            nums = " ".join(f"{k} {v:.4g}" for k, v in summary.items() if isinstance(v, float))
            self.log(f"epoch {epoch + 1}/{c.epochs}: {nums}")
            for name, text in summary["arch"].items():
                self.log(f"  [{name}] " + text.replace("\n", f"\n  [{name}] "))
        self.log(self.report().headline())  # one line; a warning when the decisions are within noise
        if not (c.energy_fit and self._last_val is not None):
            return self.derive()
        with self.fit_to_target(self._last_val) as fit:
            genotype = self.derive()
        self.log(
            f"derived within the energy target {c.energy_target_mj:g} mJ: expected {fit['before_mj']:.4g} -> "
            f"{fit['after_mj']:.4g} mJ" + (f" ({'; '.join(fit['changes'])})" if fit["changes"] else " (no change)")
        )
        return dataclasses.replace(genotype, settings={**genotype.settings, "energy_fit": fit})

    @contextlib.contextmanager
    def fit_to_target(self, batch: Any) -> Iterator[dict[str, Any]]:
        """Within this context the derived cells' spiking-or-ANN choices fit the energy target:
        measured by the expected energy (``energy_pj``) of one no-grad forward of ``batch`` per
        trial, with the choices of the cells the derivation keeps forced. Over the target,
        ANN cells turn spiking, the one with the highest spiking probability first, until under
        it; with ``energy_constraint: equal`` and under the target, spiking cells turn ANN, the
        one with the lowest spiking probability first, each kept only if the energy stays under
        the target. Yields ``{"before_mj", "after_mj", "changes"}``; afterwards the learnt logits
        and every buffer (BatchNorm statistics) are as before."""
        c = self.config
        target = c.energy_target_mj * PJ_PER_MJ
        cells = [
            (f"{name} cell {i}", cell)
            for name, comp in self.components.items()
            for i, cell in enumerate(comp.path_cells())
            if cell.neurons.hybrid
        ]
        saved = [cell.neurons.arch_hybrid.detach().clone() for _, cell in cells]
        buffers = {k: b.detach().clone() for k, b in self.model.named_buffers()}
        prob = [float(cell.neurons.spike_prob().detach()) for _, cell in cells]
        spiking = [p >= 0.5 for p in prob]

        def force(i: int, spike: bool) -> None:
            logit = cells[i][1].neurons.arch_hybrid
            with torch.no_grad():
                logit.copy_(torch.tensor([20.0, -20.0] if spike else [-20.0, 20.0], device=logit.device))
            spiking[i] = spike

        def energy() -> float:
            reset(self.model)
            with torch.no_grad(), self.autocast():
                self.loss_fn(self.model, batch)
            e = float(self.energy_pj())
            if distributed.world_size() > 1:  # one decision on every process: the mean of their energies
                e = distributed.sum_floats([e])[0] / distributed.world_size()
            return e

        try:
            for i, s in enumerate(spiking):
                force(i, s)
            before = after = energy()
            changes = []
            order = sorted(range(len(cells)), key=lambda i: prob[i])  # the most ANN-leaning first
            if after > target:
                for i in reversed(order):
                    if not spiking[i]:
                        force(i, True)
                        after = energy()
                        changes.append(f"{cells[i][0]} spiking")
                        if after <= target:
                            break
            elif c.energy_constraint == "equal":
                for i in order:
                    if spiking[i]:
                        force(i, False)
                        trial = energy()
                        if trial > target:
                            force(i, True)
                            continue
                        after = trial
                        changes.append(f"{cells[i][0]} ANN")
            yield {"before_mj": before / PJ_PER_MJ, "after_mj": after / PJ_PER_MJ, "changes": changes}
        finally:
            with torch.no_grad():
                for (_, cell), logit in zip(cells, saved):
                    cell.neurons.arch_hybrid.copy_(logit)
                for k, b in self.model.named_buffers():
                    b.copy_(buffers[k])
            reset(self.model)

    def report(self) -> SearchReport:
        """How far each architecture decision moved and whether it is beyond noise (:mod:`.report`)."""
        return search_report(self.components, self.config.arch_lr, self.arch_steps)

    def derive(self) -> Genotype:
        """The genotype of the current architecture weights, with the search settings."""
        settings: dict[str, Any] = {"search": asdict(self.config), "search_report": self.report().summary()}
        if self.dgs is not None:
            settings["dgs"] = self.dgs.config.to_dict()
            settings["surrogate_b_history"] = self.dgs.history
        return Genotype({name: comp.derive() for name, comp in self.components.items()}, settings)
