"""Run settings for the classification application: YAML presets, config files, overrides,
and the typed, frozen :class:`ClassifyConfig` they resolve to.

``presets/defaults.yaml`` lists every key (with comments saying what it means and in which
unit); a preset (``presets/NAME.yaml``) or a user's config file only changes some of them,
and ``--set key.sub=value`` changes one more. Unknown keys, values of the wrong type and
impossible values are refused with :class:`ConfigError` naming the setting, so a typo never
silently does nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from stereo_snn.errors import ConfigError
from stereo_snn.search.config import ENERGY_CONSTRAINTS, MemoryConfig
from stereo_snn.search.dgs import DGSConfig
from stereo_snn.settings import build_typed, load_mapping, parse_overrides

__all__ = [
    "ClassifyConfig",
    "DataConfig",
    "ModelConfig",
    "SearchConfig",
    "TrainConfig",
    "EnergyConfig",
    "RENAMED",
    "available_presets",
    "preset_path",
    "load_yaml",
    "apply_overrides",
    "merge",
    "resolve_config",
]

_DEFAULTS = "defaults"


def _presets_dir() -> Path:
    return Path(__file__).resolve().parent / "presets"


def available_presets() -> list[str]:
    """Names of the shipped presets (``presets/*.yaml`` without ``defaults``), sorted."""
    return sorted(p.stem for p in _presets_dir().glob("*.yaml") if p.stem != _DEFAULTS)


def preset_path(name: str, command: str | None = None) -> Path:
    """Path of the shipped preset ``name``; ``cifar10`` with command ``train`` finds ``cifar10_train``."""
    candidates = [name] + ([f"{name}_{command}"] if command else [])
    for cand in candidates:
        path = _presets_dir() / f"{cand}.yaml"
        if cand != _DEFAULTS and path.is_file():
            return path
    raise ConfigError(f"--preset {name!r}: no such preset (available: {', '.join(available_presets())})")


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; :class:`ConfigError` naming the file otherwise."""
    return load_mapping(path)


def merge(base: Mapping[str, Any], update: Mapping[str, Any], source: str, _prefix: str = "") -> dict[str, Any]:
    """Return ``base`` updated recursively by ``update``; keys not in ``base`` are refused.

    ``source`` names where ``update`` came from, for the error message.
    """
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        name = f"{_prefix}{key}"
        if key not in out:
            raise ConfigError(
                f"{source}: unknown setting {name!r} (known: {', '.join(_prefix + k for k in sorted(out))})"
            )
        if isinstance(out[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: setting {name!r} must be a mapping, got {value!r}")
            out[key] = merge(out[key], value, source, f"{name}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings (values parsed as YAML scalars/lists) to ``config``."""
    out = copy.deepcopy(dict(config))
    items = list(overrides)
    for item, (key, value) in zip(items, parse_overrides(items)):
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        out = merge(out, nested, f"--set {item}")
    return out


def resolve_config(
    preset: str | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    command: str | None = None,
) -> "ClassifyConfig":
    """Settings of a run: defaults, then the preset, then the config file, then overrides."""
    config = load_yaml(_presets_dir() / f"{_DEFAULTS}.yaml")
    if preset:
        path = preset_path(preset, command)
        config = merge(config, load_yaml(path), str(path))
    if config_file:
        config = merge(config, _renamed(load_yaml(config_file)), str(config_file))
    return ClassifyConfig.from_dict(apply_overrides(config, overrides), "settings")


#: settings renamed when both applications got the same names (old name -> new name)
RENAMED = {"search": {"w_lr": "lr", "w_lr_min": "lr_min", "w_momentum": "momentum", "w_weight_decay": "weight_decay"}}


def _renamed(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the old names of :data:`RENAMED` replaced (config files and checkpoints from before)."""
    out = dict(data)
    for section, names in RENAMED.items():
        if isinstance(out.get(section), Mapping):
            out[section] = {names.get(k, k): v for k, v in out[section].items()}
    return out


def _positive(where: str, value: float | int | None, minimum: float = 1, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value < minimum:
        raise ConfigError(f"{where} {value!r}: must be >= {minimum}" + (" or null" if allow_none else ""))


@dataclass(frozen=True)
class DataConfig:
    """Dataset settings (see ``presets/defaults.yaml``; sizes in pixels)."""

    name: str
    root: str | None
    label: str
    crop_padding: int
    flip: bool
    cutout: int
    image_size: int
    resize: int
    workers: int
    test_fraction: float
    split_seed: int
    limit_train: int | None
    limit_test: int | None

    def __post_init__(self) -> None:
        if self.name not in ("cifar10", "cifar100", "imagenet", "digits"):
            raise ConfigError(f"data.name {self.name!r}: unknown dataset (cifar10, cifar100, imagenet, digits)")
        for key in ("crop_padding", "cutout", "workers"):
            _positive(f"data.{key}", getattr(self, key), 0)
        for key in ("limit_train", "limit_test"):
            _positive(f"data.{key}", getattr(self, key), 1, allow_none=True)
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"data.test_fraction {self.test_fraction!r}: must be between 0 and 1")


@dataclass(frozen=True)
class ModelConfig:
    """Network settings: time steps, trellis sizes, searched candidates and neurons, auxiliary head,
    how the op logits are tied (``alphas``: shared | per_node; absent in old files: shared)."""

    time_steps: int
    layers: int
    channels: int
    steps: int
    levels: int
    stem_stride: int
    candidates: tuple[str, ...]
    neuron_kinds: tuple[str, ...]
    hybrid: bool | str
    tau: float
    v_threshold: float
    surrogate_b: float
    auxiliary_layer: int | None
    auxiliary_weight: float
    genotype: str | None
    alphas: str = "shared"

    tau_candidates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for key in ("time_steps", "layers", "channels", "steps", "levels", "stem_stride"):
            _positive(f"model.{key}", getattr(self, key))
        _positive("model.auxiliary_layer", self.auxiliary_layer, 1, allow_none=True)
        if isinstance(self.hybrid, str) and self.hybrid != "auto":
            raise ConfigError(f"model.hybrid {self.hybrid!r}: must be true, false or auto")
        if any(not t > 1 for t in self.tau_candidates):
            raise ConfigError(f"model.tau_candidates {list(self.tau_candidates)}: every time constant must be > 1")

    def hybrid_search(self, energy_term: bool) -> bool:
        """Whether the search chooses spiking or ANN per cell: ``hybrid``, or with ``auto`` only
        when the search has an energy term (without one an ANN cell costs nothing and is easier
        to train, so every cell would become ANN and the "spiking" network would not spike)."""
        return energy_term if self.hybrid == "auto" else bool(self.hybrid)


@dataclass(frozen=True)
class SearchConfig:
    """The application's search settings (the engine's :class:`~stereo_snn.search.BilevelConfig`
    gets the optimiser part; ``batch_size`` is the global batch over all processes)."""

    epochs: int
    batch_size: int
    warmup_epochs: int
    train_fraction: float
    lr: float
    lr_min: float
    momentum: float
    weight_decay: float
    grad_clip: float
    arch_lr: float
    arch_weight_decay: float
    energy_weight: float
    energy_target_mj: float | None
    max_batches: int | None
    dgs: bool
    energy_dual_lr: float = 0.5
    energy_constraint: str = "max"
    energy_fit: bool = False

    @property
    def energy_term(self) -> bool:
        """True when the architecture loss has an energy term (a weight or a target)."""
        return self.energy_weight > 0 or self.energy_target_mj is not None

    # memory-saving mode (the engine's MemoryConfig; the defaults are the plain supernet)
    partial_channels: int = 1
    sample_ops: bool = False
    gumbel_tau: float = 1.0
    checkpoint_cells: bool = False
    amp: bool = False

    def __post_init__(self) -> None:
        _positive("search.epochs", self.epochs)
        _positive("search.batch_size", self.batch_size)
        _positive("search.max_batches", self.max_batches, 1, allow_none=True)
        if self.energy_target_mj is not None and not self.energy_target_mj > 0:
            raise ConfigError(f"search.energy_target_mj {self.energy_target_mj!r}: must be > 0 (mJ per image) or null")
        if not self.energy_dual_lr >= 0:
            raise ConfigError(f"search.energy_dual_lr {self.energy_dual_lr!r}: must be >= 0")
        if self.energy_fit and self.energy_target_mj is None:
            raise ConfigError("search.energy_fit: needs search.energy_target_mj")
        if self.energy_constraint not in ENERGY_CONSTRAINTS:
            raise ConfigError(
                f"search.energy_constraint {self.energy_constraint!r}: must be one of {', '.join(ENERGY_CONSTRAINTS)}"
            )
        try:
            MemoryConfig.of(self)
        except ConfigError as exc:
            raise ConfigError(f"search.{exc}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Retraining settings (``batch_size`` is the global batch over all processes)."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    optimizer: str
    lr: float
    lr_min: float
    schedule: str
    momentum: float
    weight_decay: float
    grad_clip: float | None
    label_smoothing: float
    amp: bool
    dgs: bool
    max_batches: int | None

    def __post_init__(self) -> None:
        _positive("train.epochs", self.epochs)
        _positive("train.batch_size", self.batch_size)
        _positive("train.eval_batch_size", self.eval_batch_size)
        _positive("train.max_batches", self.max_batches, 1, allow_none=True)
        if self.optimizer.lower() not in ("sgd", "adam"):
            raise ConfigError(f"train.optimizer {self.optimizer!r}: expected sgd or adam")
        if self.schedule.lower() not in ("cosine", "constant"):
            raise ConfigError(f"train.schedule {self.schedule!r}: expected cosine or constant")
        if self.lr <= 0:
            raise ConfigError(f"train.lr {self.lr!r}: must be > 0")


@dataclass(frozen=True)
class EnergyConfig:
    """Energy report settings: test images measured."""

    images: int

    def __post_init__(self) -> None:
        _positive("energy.images", self.images)


@dataclass(frozen=True)
class ClassifyConfig:
    """Every setting of a classification run, typed and checked (see ``presets/defaults.yaml``)."""

    seed: int
    device: str | None
    threads: int | None
    data: DataConfig
    model: ModelConfig
    search: SearchConfig
    train: TrainConfig
    dgs: DGSConfig
    energy: EnergyConfig

    def __post_init__(self) -> None:
        _positive("threads", self.threads, 1, allow_none=True)
        if self.model.channels % self.search.partial_channels:
            raise ConfigError(
                f"search.partial_channels {self.search.partial_channels}: must divide model.channels ({self.model.channels})"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "settings") -> "ClassifyConfig":
        """Build and check the settings; :class:`ConfigError` names ``source`` and the key."""
        try:
            return build_typed(cls, _renamed(data), source)
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith(source) else f"{source}: {text}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain form (dicts, tuples, numbers, text) that :meth:`from_dict` reads back."""
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: Iterable[str]) -> "ClassifyConfig":
        """A copy changed by ``key.sub=value`` strings."""
        return ClassifyConfig.from_dict(apply_overrides(self.to_dict(), overrides), "settings")
