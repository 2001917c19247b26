"""Genotypes: the derived architecture, its decoding from architecture weights, its JSON files.

A :class:`Genotype` has named components (``{"feature": ..., "matching": ...}`` for stereo,
``{"backbone": ...}`` for classification); each :class:`ComponentGenotype` carries the
:class:`TrellisConfig` that rebuilds the network, the level path and one
:class:`CellGenotype` per layer. Files are versioned JSON written atomically; reading checks
every field and raises :class:`GenotypeError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..atomic import write_json
from ..errors import ConfigError, GenotypeError
from ..spiking import SPIKING_KINDS
from .activation import group_key
from .config import MOVES, TrellisConfig
from .ops import OPS

__all__ = [
    "GENOTYPE_FORMAT",
    "GENOTYPE_VERSION",
    "CellGenotype",
    "ComponentGenotype",
    "Genotype",
    "decode_cell",
    "decoded_mask",
    "viterbi",
    "save_genotype",
    "load_genotype",
    "genotype_to_dict",
    "genotype_from_dict",
]

GENOTYPE_FORMAT = "stereo-snn-genotype"
GENOTYPE_VERSION = 1

Edges = tuple[tuple[tuple[int, str], ...], ...]


@dataclass(frozen=True)
class CellGenotype:
    """One derived cell: per node its kept edges ``(input_index, op)`` (0 = s0, 1 = s1, 2+i = node i),
    the spiking neuron kind, its time constant(s) in time steps, the cell's surrogate temperature
    (the ``node`` group: ops without a temperature of their own, and the resampling inputs),
    whether the cell spikes (False = ANN cell with ReLU), and the searched temperature of each
    op surrogate group (``{"b3": 2.6, "b5": 4.8}``, keys :func:`~.activation.group_key` of the
    ops' nominal b). A group missing from ``group_b`` (genotypes written before DGS results
    were kept) uses the op's nominal temperature, as those genotypes always did."""

    edges: Edges
    neuron: str = "lif"
    tau: float | tuple[float, ...] = 1.25
    surrogate_b: float = 3.0
    spiking: bool = True
    group_b: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentGenotype:
    """A derived network: its settings, the level of every layer and its cells."""

    config: TrellisConfig
    path: tuple[int, ...]
    cells: tuple[CellGenotype, ...]


@dataclass(frozen=True)
class Genotype:
    """A derived architecture of named components plus the search settings that produced it."""

    components: dict[str, ComponentGenotype]
    settings: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    version: int = GENOTYPE_VERSION

    def component(self, name: str, dim: int | None = None) -> ComponentGenotype:
        """The component ``name``; :class:`GenotypeError` when it is missing or (with ``dim``) of another dimension."""
        if name not in self.components:
            raise GenotypeError(f"components.{name}: missing (the genotype has {', '.join(self.components) or 'none'})")
        comp = self.components[name]
        if dim is not None and comp.config.dim != dim:
            raise GenotypeError(f"components.{name}.config.dim: {comp.config.dim}, this network needs {dim}")
        return comp


# ----------------------------------------------------------------------------------------- decoding
def decode_cell(alphas: torch.Tensor, candidates: Sequence[str], steps: int, max_skip: int | None = None) -> Edges:
    """Decode one cell: per node the 2 strongest incoming edges and their argmax op.

    ``alphas``: ``[edges, len(candidates)]`` logits (rows in :func:`cell.edge_inputs` order).
    Edges are ranked by their strongest non-skip op weight (softmax per edge; the skip weight
    counts only if skip is the sole candidate); ties go to the lower input index.

    ``max_skip`` (P-DARTS, Chen et al. 2019): at most this many chosen edges may be
    ``skip_connect``. Beyond it, the skip edges whose best other op comes closest to the skip
    weight take that op instead. Skip costs no energy, so an energy-weighted search drifts
    towards cells made only of skips (a cell that computes nothing); the cap keeps the
    derived cells computing. ``None``: no cap.
    """
    if max_skip is not None and max_skip < 0:
        raise ConfigError(f"max_skip {max_skip}: must be >= 0 (or None for no limit)")
    w = torch.softmax(alphas.detach().float(), dim=-1)
    non_skip = [k for k, n in enumerate(candidates) if n != "skip_connect"] or list(range(len(candidates)))
    chosen: list[list[tuple[int, int, int]]] = []  # per node: (input, row of alphas, op index)
    row = 0
    for j in range(steps):
        n_in = j + 2
        rows = w[row : row + n_in]
        strength = rows[:, non_skip].max(dim=1).values.tolist()
        order = sorted(range(n_in), key=lambda i: (-strength[i], i))[:2]
        chosen.append([(i, row + i, int(rows[i].argmax())) for i in sorted(order)])
        row += n_in
    if max_skip is not None and "skip_connect" in candidates and len(non_skip) < len(candidates):
        skip = list(candidates).index("skip_connect")
        skips = [
            (float(w[r, skip] - w[r, non_skip].max()), j, e)
            for j, node in enumerate(chosen)
            for e, (_, r, k) in enumerate(node)
            if k == skip
        ]
        for _, j, e in sorted(skips)[: max(0, len(skips) - max_skip)]:
            i, r, _ = chosen[j][e]
            chosen[j][e] = (i, r, non_skip[int(w[r, non_skip].argmax())])
    return tuple(tuple((i, candidates[k]) for i, _, k in node) for node in chosen)


def decoded_mask(
    alphas: torch.Tensor, candidates: Sequence[str], steps: int, max_skip: int | None = None
) -> torch.Tensor:
    """``[edges, len(candidates)]`` 0/1 mask of what :func:`decode_cell` keeps: 1 at the op of
    every kept edge (rows in :func:`cell.edge_inputs` order), on ``alphas``' device."""
    mask = torch.zeros(alphas.shape, device=alphas.device)
    first = 0
    for j, node in enumerate(decode_cell(alphas, candidates, steps, max_skip)):
        for i, op in node:
            mask[first + i, list(candidates).index(op)] = 1.0
        first += j + 2
    return mask


def viterbi(log_probs: torch.Tensor, moves: Sequence[str], out_level: int) -> list[int]:
    """Most probable level path under per-node move log-probabilities.

    ``log_probs[l, s, m]``: log-probability of taking move ``moves[m]`` out of node (l-1, s)
    (l = 0: out of the stem at level 0); ``-inf`` for impossible moves. Returns the level of every
    layer, ending at ``out_level``.
    """
    L, levels, _ = log_probs.shape
    lp = log_probs.detach().double()
    score = {0: 0.0}
    back: list[dict[int, int]] = []
    for l in range(L):
        new: dict[int, float] = {}
        arg: dict[int, int] = {}
        for s, sc in sorted(score.items()):
            for m, name in enumerate(moves):
                d = s + MOVES[name]
                v = sc + float(lp[l, s, m])
                if 0 <= d < levels and math.isfinite(v) and (d not in new or v > new[d]):
                    new[d], arg[d] = v, s
        score = new
        back.append(arg)
    if out_level not in score:
        raise ConfigError(f"out_level {out_level} cannot be reached in {L} layers with moves {list(moves)}")
    path = [out_level]
    for l in range(L - 1, 0, -1):
        path.append(back[l][path[-1]])
    return path[::-1]


# ------------------------------------------------------------------------------------------- files
def genotype_to_dict(g: Genotype) -> dict[str, Any]:
    """The JSON-able form of a genotype (see docs/engine.md for the layout)."""
    comps = {}
    for name, c in g.components.items():
        comps[name] = {
            "config": c.config.to_dict(),
            "path": list(c.path),
            "cells": [
                {
                    "edges": [[[i, op] for i, op in node] for node in cell.edges],
                    "neuron": cell.neuron,
                    "tau": list(cell.tau) if isinstance(cell.tau, tuple) else cell.tau,
                    "surrogate_b": cell.surrogate_b,
                    "spiking": cell.spiking,
                    **({"group_b": dict(cell.group_b)} if cell.group_b else {}),
                }
                for cell in c.cells
            ],
        }
    return {
        "format": GENOTYPE_FORMAT,
        "version": g.version,
        "created": g.created,
        "settings": g.settings,
        "components": comps,
    }


def save_genotype(path: str | os.PathLike, g: Genotype) -> Path:
    """Write ``g`` atomically as versioned JSON; returns the path."""
    genotype_from_dict(genotype_to_dict(g), source=str(path))  # never write a file we could not read
    return write_json(path, genotype_to_dict(g))


def load_genotype(path: str | os.PathLike) -> Genotype:
    """Read a genotype file; :class:`GenotypeError` naming the file and field when it is malformed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise GenotypeError(f"{p}: genotype file not found") from exc
    except OSError as exc:
        raise GenotypeError(f"{p}: cannot read ({exc})") from exc
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"{p}: not valid JSON ({exc})") from exc
    return genotype_from_dict(d, source=str(p))


def _need(d: dict, key: str, where: str, types: type | tuple[type, ...], source: str) -> Any:
    if key not in d:
        raise GenotypeError(f"{source}: {where}.{key}: missing")
    v = d[key]
    if not isinstance(v, types) or (
        isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,))
    ):
        names = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise GenotypeError(f"{source}: {where}.{key}: expected {names}, got {type(v).__name__}")
    return v


def _cell_from_dict(d: Any, where: str, steps: int, channels: int, source: str) -> CellGenotype:
    if not isinstance(d, dict):
        raise GenotypeError(f"{source}: {where}: must be an object")
    edges_raw = _need(d, "edges", where, list, source)
    if len(edges_raw) != steps:
        raise GenotypeError(f"{source}: {where}.edges: {len(edges_raw)} nodes, the config says steps={steps}")
    edges = []
    for j, node in enumerate(edges_raw):
        w = f"{where}.edges[{j}]"
        if not isinstance(node, list) or not 1 <= len(node) <= j + 2:
            raise GenotypeError(f"{source}: {w}: must list 1 to {j + 2} edges [input_index, op]")
        kept = []
        for e, edge in enumerate(node):
            if not (isinstance(edge, list) and len(edge) == 2):
                raise GenotypeError(f"{source}: {w}[{e}]: must be [input_index, op]")
            i, op = edge
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < j + 2:
                raise GenotypeError(f"{source}: {w}[{e}][0]: input index {i!r} must be in [0, {j + 1}]")
            if op not in OPS:
                raise GenotypeError(f"{source}: {w}[{e}][1]: unknown op {op!r} (known: {', '.join(OPS)})")
            kept.append((i, op))
        edges.append(tuple(kept))
    kind = _need(d, "neuron", where, str, source)
    if kind not in SPIKING_KINDS:
        raise GenotypeError(f"{source}: {where}.neuron: {kind!r} is not one of {list(SPIKING_KINDS)}")
    tau = _need(d, "tau", where, (int, float, list), source)
    if isinstance(tau, list):
        if kind != "clif" or len(tau) != channels:
            raise GenotypeError(f"{source}: {where}.tau: a list needs neuron 'clif' and {channels} values")
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 1 for t in tau):
            raise GenotypeError(f"{source}: {where}.tau: every time constant must be a number > 1")
        tau_v: float | tuple[float, ...] = tuple(float(t) for t in tau)
    else:
        if not tau > 1:
            raise GenotypeError(f"{source}: {where}.tau: {tau} must be > 1 (time steps)")
        tau_v = float(tau)
    b = _need(d, "surrogate_b", where, (int, float), source)
    if not b > 0:
        raise GenotypeError(f"{source}: {where}.surrogate_b: {b} must be > 0")
    spiking = _need(d, "spiking", where, bool, source)
    return CellGenotype(tuple(edges), kind, tau_v, float(b), spiking, _group_b(d, where, source))


#: keys of the op surrogate groups a genotype may give a temperature for
GROUP_KEYS = tuple(dict.fromkeys(group_key(spec.b) for spec in OPS.values() if spec.b is not None))


def _group_b(d: dict, where: str, source: str) -> dict[str, float]:
    """The optional ``group_b`` of a cell (absent: ``{}``, the ops' nominal temperatures)."""
    if "group_b" not in d:
        return {}
    raw = _need(d, "group_b", where, dict, source)
    out = {}
    for key, value in raw.items():
        if key not in GROUP_KEYS:
            raise GenotypeError(f"{source}: {where}.group_b.{key}: unknown group (known: {', '.join(GROUP_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise GenotypeError(f"{source}: {where}.group_b.{key}: {value!r} must be a number > 0")
        out[key] = float(value)
    return out


def _check_path(path: Any, cfg: TrellisConfig, where: str, source: str) -> tuple[int, ...]:
    if not isinstance(path, list) or len(path) != cfg.layers:
        raise GenotypeError(f"{source}: {where}: must list {cfg.layers} levels (one per layer)")
    prev = 0
    for l, s in enumerate(path):
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < cfg.levels:
            raise GenotypeError(f"{source}: {where}[{l}]: level {s!r} must be in [0, {cfg.levels - 1}]")
        if s - prev not in [MOVES[m] for m in cfg.moves]:
            raise GenotypeError(f"{source}: {where}[{l}]: move {prev} -> {s} is not one of {list(cfg.moves)}")
        prev = s
    if path[-1] != cfg.out_level:
        raise GenotypeError(f"{source}: {where}: ends at level {path[-1]}, config.out_level is {cfg.out_level}")
    return tuple(path)


#: refuse genotypes whose convolution weights alone would need more than this (bytes, float32);
#: the gradients and optimizer state of training need about three times as much again
MAX_WEIGHT_BYTES = 4 * 2**30


def estimate_weight_bytes(cfg: TrellisConfig, path: Sequence[int]) -> int:
    """Bytes of float32 convolution weights of the derived network on ``path`` (an upper bound:
    every edge counted as a full 3x3 / 3x3x3 conv, the two input preprocessors as well)."""
    k = 3**cfg.dim
    stem = cfg.steps * cfg.channels
    params = cfg.in_channels * stem * k
    prev = stem
    for level in path:
        c = cfg.level_channels(int(level))
        params += 2 * prev * c * k + 2 * cfg.steps * c * c * k
        prev = cfg.steps * c
    return 4 * params


def genotype_from_dict(d: Any, source: str = "<dict>") -> Genotype:
    """Check and convert the JSON form; :class:`GenotypeError` names ``source`` and the field."""
    if not isinstance(d, dict):
        raise GenotypeError(f"{source}: top level must be an object")
    fmt = d.get("format")
    if fmt != GENOTYPE_FORMAT:
        raise GenotypeError(f"{source}: format: expected {GENOTYPE_FORMAT!r}, got {fmt!r}")
    version = _need(d, "version", "genotype", int, source)
    if version > GENOTYPE_VERSION or version < 1:
        raise GenotypeError(f"{source}: version: {version} is not supported (this engine reads 1..{GENOTYPE_VERSION})")
    comps_raw = _need(d, "components", "genotype", dict, source)
    if not comps_raw:
        raise GenotypeError(f"{source}: components: empty")
    comps = {}
    for name, c in comps_raw.items():
        where = f"components.{name}"
        if not isinstance(c, dict):
            raise GenotypeError(f"{source}: {where}: must be an object")
        try:
            cfg = TrellisConfig.from_dict(_need(c, "config", where, dict, source), where=f"{where}.config")
        except ConfigError as exc:
            raise GenotypeError(f"{source}: {exc}") from exc
        path = _check_path(_need(c, "path", where, list, source), cfg, f"{where}.path", source)
        need = estimate_weight_bytes(cfg, path)
        if need > MAX_WEIGHT_BYTES:
            raise GenotypeError(
                f"{source}: {where}: its channel counts (config.channels {cfg.channels}) would need about "
                f"{need / 2**30:,.1f} GiB for the weights alone (limit {MAX_WEIGHT_BYTES / 2**30:.0f} GiB); "
                "refused before allocating"
            )
        cells_raw = _need(c, "cells", where, list, source)
        if len(cells_raw) != cfg.layers:
            raise GenotypeError(f"{source}: {where}.cells: {len(cells_raw)} cells, config.layers is {cfg.layers}")
        cells = tuple(
            _cell_from_dict(cell, f"{where}.cells[{l}]", cfg.steps, cfg.level_channels(path[l]), source)
            for l, cell in enumerate(cells_raw)
        )
        comps[name] = ComponentGenotype(cfg, path, cells)
    settings = d.get("settings", {})
    if not isinstance(settings, dict):
        raise GenotypeError(f"{source}: settings: must be an object")
    created = d.get("created", "")
    if not isinstance(created, str):
        raise GenotypeError(f"{source}: created: must be a string")
    return Genotype(comps, settings, created, version)
