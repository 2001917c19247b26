"""Reading settings: YAML/JSON config files and ``--set KEY=VALUE`` overrides.

One reader and one override parser for every application (stereo, classification); no torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import ConfigError

__all__ = ["load_mapping", "parse_overrides"]


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (or ``.json``) file whose top level is a mapping of settings.

    An empty file gives ``{}``. Raises :class:`ConfigError` naming the file when it cannot be
    read, does not parse, or is not a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: not valid JSON ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({_yaml_problem(exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of settings, got {type(data).__name__}")
    return data


def parse_overrides(items: Iterable[str] | None, example: str = "train.epochs=10") -> list[tuple[str, Any]]:
    """Parse ``KEY=VALUE`` strings (values as YAML scalars/lists; empty value = None) into
    ``(dotted key, value)`` pairs, in order. :class:`ConfigError` names the bad item."""
    out: list[tuple[str, Any]] = []
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. {example}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({_yaml_problem(exc)})") from exc
        out.append((key, value))
    return out


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The YAML error on one line: the problem and where (PyYAML's own text spans lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem
