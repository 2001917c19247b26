"""Run settings for the classification application: YAML presets, config files, overrides.

A run's settings are one nested dictionary. ``presets/defaults.yaml`` lists every key
(with comments saying what it means and in which unit); a preset (``presets/NAME.yaml``)
or a user's config file only changes some of them, and ``--set key.sub=value`` changes
one more. Unknown keys are refused, so a typo never silently does nothing. No torch here.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable, Mapping


from stereo_snn.errors import ConfigError
from stereo_snn.settings import check_like, load_mapping, parse_overrides

__all__ = [
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
            raise ConfigError(f"{source}: unknown setting {name!r} (known: {', '.join(_prefix + k for k in sorted(out))})")
        if isinstance(out[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: setting {name!r} must be a mapping, got {value!r}")
            out[key] = merge(out[key], value, source, f"{name}.")
        else:
            check_like(out[key], value, name, source)
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
    threads = out.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0):
        raise ConfigError(f"threads {threads!r}: must be a whole number of threads >= 0, or null for torch's default")
    return out


def resolve_config(
    preset: str | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    command: str | None = None,
) -> dict[str, Any]:
    """Settings of a run: defaults, then the preset, then the config file, then overrides."""
    config = load_yaml(_presets_dir() / f"{_DEFAULTS}.yaml")
    if preset:
        path = preset_path(preset, command)
        config = merge(config, load_yaml(path), str(path))
    if config_file:
        config = merge(config, load_yaml(config_file), str(config_file))
    return apply_overrides(config, overrides)
