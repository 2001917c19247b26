"""Named simulator settings at the native sizes of real datasets (YAML files in ``presets/``).

Each file holds ``format`` (the output layout, "dsec" or "mvsec") and ``settings`` (any
:class:`SimConfig` fields). Sizes live only in these files, never in code paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...settings import load_mapping

__all__ = ["PRESETS", "load_preset"]

_FOLDER = Path(__file__).with_name("presets")
PRESETS: tuple[str, ...] = tuple(sorted(p.stem for p in _FOLDER.glob("*.yaml")))


def load_preset(name: str) -> tuple[str, dict[str, Any]]:
    """(output format, settings mapping) of preset ``name`` (one of :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    path = _FOLDER / f"{name}.yaml"
    data = load_mapping(path)
    fmt, settings = data.get("format"), data.get("settings", {})
    if fmt not in ("dsec", "mvsec") or not isinstance(settings, dict) or set(data) - {"format", "settings"}:
        raise ConfigError(f"{path}: expected 'format: dsec|mvsec' and a 'settings' mapping only")
    return fmt, dict(settings)
