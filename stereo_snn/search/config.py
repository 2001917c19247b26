"""Settings of one searchable network (a trellis of cells), shared by supernet and fixed net."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import ConfigError
from ..spiking import SPIKING_KINDS, NeuronConfig
from .ops import DEFAULT_CANDIDATES, check_candidates, check_dim

__all__ = ["TrellisConfig", "MemoryConfig", "MOVES", "ALPHA_MODES", "ENERGY_CONSTRAINTS"]

#: how an energy target binds the search: ``max`` (E <= target) or ``equal`` (E = target)
ENERGY_CONSTRAINTS = ("max", "equal")

MOVES: dict[str, int] = {"down": 1, "same": 0, "up": -1}  # level change of each move

#: how the supernet ties its op logits: one set per component shared by every cell (SpikeDHS,
#: LEAStereo, DARTS), or one set per trellis node
ALPHA_MODES = ("shared", "per_node")


@dataclass(frozen=True)
class TrellisConfig:
    """Shape of a trellis network.

    dim: 2 (``[T,B,C,H,W]``) or 3 (``[T,B,C,D,H,W]``); in_channels: channels of the input;
    channels: node channels at level 0 (level s: ``channels * 2**s``); layers: cells along a
    path; steps: nodes per cell; levels: resolution levels (stride ``2**s`` relative to the stem
    output); moves: allowed layer transitions; out_level: level of the last layer (the output);
    stem_stride: stride of the stem conv (pixels); candidates: op names; neuron_kinds: spiking
    kinds searched per cell; hybrid: search spiking vs ANN per cell; neuron: tau / threshold /
    default surrogate temperature (``neuron.tau`` is the fixed tau of ``lif``);
    learn_tau_init: initial time constant (time steps) of the learnable kinds ``plif``/``clif``
    (different from the fixed one, so that the kinds differ from the start); tau_candidates:
    time constants (time steps) searched for the fixed-tau kind ``lif``, each cell choosing
    one with the kinds (temporal search; empty: ``lif`` has only ``neuron.tau``); max_skip: at
    most this many ``skip_connect`` edges per derived cell (:func:`genotype.decode_cell`;
    None = no limit); alphas: ``shared`` (one ``[edges, candidates]`` set of op logits for
    every supernet cell of the trellis, the cell type of SpikeDHS/DARTS; every derived cell
    gets the same edges and ops) or ``per_node`` (one set per (layer, level) node). It changes
    the supernet only; a fixed network is the same either way. A dictionary without the key
    (:meth:`from_dict`: configs and genotypes written before the setting existed) reads as
    ``per_node``, the way those were searched.
    """

    dim: int
    in_channels: int
    channels: int
    layers: int
    steps: int = 3
    levels: int = 4
    moves: tuple[str, ...] = ("down", "same", "up")
    out_level: int = 0
    stem_stride: int = 1
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    neuron_kinds: tuple[str, ...] = ("lif", "plif")
    hybrid: bool = True
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    learn_tau_init: float = 2.0
    max_skip: int | None = None
    alphas: str = "shared"
    tau_candidates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_dim(self.dim)
        for name in ("in_channels", "channels", "layers", "steps", "levels", "stem_stride"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"trellis {name} {v!r}: must be an integer >= 1")
        object.__setattr__(self, "moves", tuple(self.moves))
        object.__setattr__(self, "candidates", check_candidates(self.candidates))
        object.__setattr__(self, "neuron_kinds", tuple(self.neuron_kinds))
        if not self.moves or any(m not in MOVES for m in self.moves) or len(set(self.moves)) != len(self.moves):
            raise ConfigError(f"trellis moves {list(self.moves)}: a non-empty subset of {list(MOVES)}")
        if not 0 <= self.out_level < self.levels:
            raise ConfigError(f"trellis out_level {self.out_level}: must be in [0, {self.levels - 1}]")
        bad = [k for k in self.neuron_kinds if k not in SPIKING_KINDS]
        if not self.neuron_kinds or bad:
            raise ConfigError(f"trellis neuron_kinds {list(self.neuron_kinds)}: one or more of {list(SPIKING_KINDS)}")
        if self.max_skip is not None and (
            not isinstance(self.max_skip, int) or isinstance(self.max_skip, bool) or self.max_skip < 0
        ):
            raise ConfigError(f"trellis max_skip {self.max_skip!r}: must be an integer >= 0 or null")
        if self.alphas not in ALPHA_MODES:
            raise ConfigError(f"trellis alphas {self.alphas!r}: one of {list(ALPHA_MODES)}")
        if not (isinstance(self.learn_tau_init, (int, float)) and self.learn_tau_init > 1):
            raise ConfigError(f"trellis learn_tau_init {self.learn_tau_init!r}: must be a number > 1 (time steps)")
        if not isinstance(self.tau_candidates, (list, tuple)) or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and t > 1 for t in self.tau_candidates
        ):
            raise ConfigError(
                f"trellis tau_candidates {self.tau_candidates!r}: a list of time constants > 1 (time steps)"
            )
        object.__setattr__(self, "tau_candidates", tuple(float(t) for t in self.tau_candidates))
        if isinstance(self.neuron, dict):
            object.__setattr__(self, "neuron", NeuronConfig(**self.neuron))
        if self.neuron.kind not in SPIKING_KINDS:
            raise ConfigError(f"trellis neuron.kind {self.neuron.kind!r}: the stem neuron must be spiking")

    def level_channels(self, level: int) -> int:
        """Node channels at ``level``."""
        return self.channels * 2**level

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        d = asdict(self)
        d["moves"], d["candidates"], d["neuron_kinds"] = (
            list(self.moves),
            list(self.candidates),
            list(self.neuron_kinds),
        )
        d["tau_candidates"] = list(self.tau_candidates)
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "config") -> "TrellisConfig":
        """Inverse of :meth:`to_dict`; ``ConfigError`` naming ``where`` and the key on bad input."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}")
        missing = [k for k in ("dim", "in_channels", "channels", "layers") if k not in d]
        if missing:
            raise ConfigError(f"{where}.{missing[0]}: missing")
        kw = dict(d)
        kw.setdefault("alphas", "per_node")  # written before the setting: searched with per-node alphas
        if "neuron" in kw:
            if not isinstance(kw["neuron"], dict):
                raise ConfigError(f"{where}.neuron: must be an object")
            try:
                kw["neuron"] = NeuronConfig(**kw["neuron"])
            except TypeError as exc:
                raise ConfigError(f"{where}.neuron: {exc}") from exc
            except ConfigError as exc:
                raise ConfigError(f"{where}.neuron: {exc}") from exc
        for k in ("moves", "candidates", "neuron_kinds", "tau_candidates"):
            if k in kw:
                if not isinstance(kw[k], (list, tuple)):
                    raise ConfigError(f"{where}.{k}: must be a list")
                kw[k] = tuple(kw[k])
        try:
            return cls(**kw)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class MemoryConfig:
    """How a supernet saves memory during the search (not part of the architecture: the derived
    network is the same whatever these are). The defaults are the plain DARTS supernet.

    partial_channels: K of partial-channel connections (PC-DARTS, Xu et al. 2020): on every
    edge only the first 1/K of the channels go through the candidate ops, the rest bypass them
    unchanged, and a channel shuffle (K groups) mixes the two parts (1 = every channel, off).
    sample_ops: run only one sampled op per edge and step (GDAS, Dong and Yang 2019): a hard
    Gumbel-softmax sample of the edge's op weights at temperature ``gumbel_tau``, whose
    straight-through gradient reaches every op weight (in eval mode: the strongest op).
    checkpoint_cells: keep only each cell's inputs and output for the backward and run the
    cell again during it (``torch.utils.checkpoint``; same values and gradients).
    """

    partial_channels: int = 1
    sample_ops: bool = False
    gumbel_tau: float = 1.0
    checkpoint_cells: bool = False

    def __post_init__(self) -> None:
        k = self.partial_channels
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"partial_channels {k!r}: must be an integer >= 1 (1: every channel)")
        for name in ("sample_ops", "checkpoint_cells"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} {getattr(self, name)!r}: must be true or false")
        if isinstance(self.gumbel_tau, bool) or not isinstance(self.gumbel_tau, (int, float)) or self.gumbel_tau <= 0:
            raise ConfigError(f"gumbel_tau {self.gumbel_tau!r}: must be a number > 0")

    @classmethod
    def of(cls, settings: Any) -> "MemoryConfig":
        """The memory settings of an object with attributes of the same names (an application's
        ``search`` settings)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    @property
    def is_default(self) -> bool:
        """True when nothing is changed (the plain supernet)."""
        return self == MemoryConfig()
