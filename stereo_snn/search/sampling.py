"""Random architectures from a search space, and rejection sampling at a given energy.

A random genotype has the same components and :class:`TrellisConfig` as a searched one (the
same search space) and draws, per component: a level path uniformly over the trellis's valid
paths, and per cell two distinct inputs per node, an op per kept edge from ``candidates``
(at most ``max_skip`` skips), a neuron choice among those the search chooses from (every kind
of ``neuron_kinds``, lif once per value of ``tau_candidates``) and, when the space is hybrid,
spiking or ANN with even odds. A drawn lif cell's time constant is its tau candidate (without
candidates ``neuron.tau``), a learnable kind's its initial one (``learn_tau_init``), and its
surrogate temperature the default ``neuron.b``: what a search starts from.

:func:`sample_at_energy` keeps drawing until ``count`` genotypes have a measured energy within
a relative ``tolerance`` of a reference, and says how many draws it took. The energy of an
untrained network is measured by :func:`init_energy`: freshly initialised BatchNorm layers
pass the convolutions' small outputs through unchanged, so the neurons stay nearly silent and
every network would cost about the same; the BatchNorm statistics are first set from the
inputs (one pass in training mode), which gives the neurons the activity a trained network's
normalised currents give them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from ..spiking import reset
from .activation import neuron_choices
from .config import MOVES, TrellisConfig
from .energy import energy_report
from .genotype import CellGenotype, ComponentGenotype, Genotype
from .trellis import path_counts

__all__ = [
    "init_energy",
    "random_path",
    "random_cell",
    "random_component",
    "random_genotype",
    "EnergySample",
    "sample_at_energy",
]


def random_path(cfg: TrellisConfig, rng: random.Random) -> tuple[int, ...]:
    """A level per layer, drawn uniformly over the valid level paths: each move is weighted by
    the number of paths that continue from where it leads (:func:`~.trellis.path_counts`)."""
    counts = path_counts(cfg)
    level, path = 0, []
    for here in counts:
        choices = sorted({level + MOVES[m] for m in cfg.moves} & set(here))
        level = rng.choices(choices, weights=[here[d] for d in choices])[0]
        path.append(level)
    return tuple(path)


def random_cell(cfg: TrellisConfig, rng: random.Random) -> CellGenotype:
    """A cell of ``cfg``'s space: 2 distinct inputs per node (1 when only one exists), random ops."""
    while True:
        edges = tuple(
            tuple((i, rng.choice(cfg.candidates)) for i in sorted(rng.sample(range(j + 2), min(2, j + 2))))
            for j in range(cfg.steps)
        )
        skips = sum(op == "skip_connect" for node in edges for _, op in node)
        if cfg.max_skip is None or skips <= cfg.max_skip or set(cfg.candidates) == {"skip_connect"}:
            break
    kind, tau = rng.choice(neuron_choices(cfg.neuron_kinds, cfg.tau_candidates))  # as the search chooses
    if tau is None:  # the kind's own time constant: what a search starts from
        tau = float(cfg.neuron.tau) if kind == "lif" else float(cfg.learn_tau_init)
    spiking = rng.random() < 0.5 if cfg.hybrid else True
    return CellGenotype(edges, kind, tau, float(cfg.neuron.b), spiking)


def random_component(cfg: TrellisConfig, rng: random.Random) -> ComponentGenotype:
    """A random network of ``cfg``'s search space (path and cells)."""
    path = random_path(cfg, rng)
    return ComponentGenotype(cfg, path, tuple(random_cell(cfg, rng) for _ in path))


def random_genotype(like: Genotype, rng: random.Random) -> Genotype:
    """A random genotype with the components (and search spaces) of ``like``."""
    comps = {name: random_component(c.config, rng) for name, c in like.components.items()}
    return Genotype(comps, {"random": True, "sampled_like": dict(like.settings)})


def init_energy(model: nn.Module, inputs: object) -> float:
    """Measured compute energy (mJ, whole batch) of an untrained ``model`` on ``inputs`` (a tensor,
    or a tuple passed as ``model(*inputs)``) after setting its BatchNorm statistics from the
    same inputs. Changes the model's BatchNorm running statistics; nothing else."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one pass sets the batch's statistics exactly
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            reset(model)
            model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.train(was_training)
        reset(model)
    return energy_report(model, inputs).compute_mj


@dataclass(frozen=True)
class EnergySample:
    """Random genotypes whose energy is within the window, their energies (mJ), the reference
    energy, and how many genotypes were drawn in all."""

    genotypes: tuple[Genotype, ...]
    energies_mj: tuple[float, ...]
    reference_mj: float
    draws: int


def sample_at_energy(
    reference: Genotype,
    measure: Callable[[Genotype], float],
    count: int,
    tolerance: float,
    max_draws: int,
    rng: random.Random,
) -> EnergySample:
    """Draw random genotypes like ``reference`` until ``count`` of them have
    ``|measure(g) / measure(reference) - 1| <= tolerance``.

    ``measure`` returns an energy in mJ (the same measurement for every genotype). Raises
    :class:`ConfigError` saying how many of the ``max_draws`` draws fell in the window when
    fewer than ``count`` did.
    """
    if count < 0 or tolerance <= 0 or max_draws < 1:
        raise ConfigError(
            f"random: count {count} >= 0, tolerance {tolerance} > 0 and max_draws {max_draws} >= 1 needed"
        )
    ref = float(measure(reference))
    if not ref > 0:
        raise ConfigError(f"random: the searched architecture's measured energy is {ref} mJ; need > 0")
    kept: list[Genotype] = []
    energies: list[float] = []
    draws = 0
    while len(kept) < count:
        if draws >= max_draws:
            raise ConfigError(
                f"random: only {len(kept)} of {max_draws} random architectures had a measured energy within "
                f"{tolerance:.0%} of the searched one ({ref:.4g} mJ); {count} are needed (raise random.max_draws "
                "or random.tolerance)"
            )
        g = random_genotype(reference, rng)
        draws += 1
        e = float(measure(g))
        if abs(e / ref - 1.0) <= tolerance:
            kept.append(g)
            energies.append(e)
    return EnergySample(tuple(kept), tuple(energies), ref, draws)
