"""Reading settings: YAML/JSON config files and ``--set KEY=VALUE`` overrides.

One reader and one override parser for every application (stereo, classification); no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import ConfigError

__all__ = [
    "load_mapping",
    "parse_overrides",
    "check_field_types",
    "check_value_type",
    "yaml_problem",
    "add_run_options",
    "add_set_option",
    "build_typed",
]


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (or ``.json``) file whose top level is a mapping of settings.

    An empty file gives ``{}``. Raises :class:`ConfigError` naming the file when it cannot be
    read, does not parse, or is not a mapping.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a config file")
    try:
        text = p.read_text(encoding="utf-8")
    except PermissionError as exc:
        raise ConfigError(f"{p}: permission denied (cannot read this config file)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: not valid JSON ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({yaml_problem(exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of settings, got {type(data).__name__}")
    return data


def add_set_option(parser: argparse.ArgumentParser, help: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option of a command (collected in ``args.overrides``,
    read with :func:`parse_overrides`)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


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
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({yaml_problem(exc)})") from exc
        out.append((key, _number_or_text(value)))
    return out


#: numbers YAML 1.1 reads as text: ``1e9``, ``-2E-3`` (no dot in the mantissa)
_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _number_or_text(value: Any) -> Any:
    """A string that YAML 1.1 leaves as text but that is plainly a number (``1e9``) as a float."""
    if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        return float(value)
    return value


def check_value_type(value: Any, hint: Any, key: str, source: str) -> None:
    """Raise :class:`ConfigError` ("SOURCE: KEY must be ..., got ...") unless ``value`` fits the
    type annotation ``hint`` (int, float, bool, str, Mapping, tuple[...], X | None, Any).

    Rules: an int setting refuses bool and float; a float setting takes ints and refuses bool,
    NaN and inf; a tuple setting takes a list or tuple and checks its items.
    """
    if not _fits(value, hint):
        raise ConfigError(f"{source}: {key} must be {_describe(hint)}, got {value!r} ({type(value).__name__})")


def check_field_types(obj: Any, source: str, prefix: str = "") -> None:
    """Check every field of a dataclass instance against its annotation (nested dataclasses too)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_field_types(value, source, f"{prefix}{f.name}.")
        else:
            check_value_type(value, hints.get(f.name, Any), f"{prefix}{f.name}", source)


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if not args:
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping) or hint is Mapping:
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    names = {int: "an integer", float: "a finite number", bool: "true or false", str: "text", type(None): "null"}
    if hint in names:
        return names[hint]
    if origin is tuple or hint is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})" if args else "a list"
    if hint is Mapping or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """The YAML error on one line: the problem and where (PyYAML's own text spans lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def add_run_options(parser: argparse.ArgumentParser, resume: bool) -> None:
    """The run-folder flags, the same in every application's search and train commands:
    ``--overwrite``, and with ``resume`` also ``--resume`` and ``--epochs-this-run N``."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (default: refuse a non-empty run folder)",
    )
    if resume:
        parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
        parser.add_argument(
            "--epochs-this-run",
            type=int,
            default=None,
            metavar="N",
            help="stop after N epochs in this session (continue later with --resume)",
        )


def build_typed(cls: type, data: Any, source: str) -> Any:
    """The (frozen) dataclass ``cls`` from the mapping ``data``: every field given, each value
    of its annotated type (int, float, bool, str, None, ``tuple[X, ...]``, a nested dataclass
    or ``Mapping``). A float setting also takes a number written as text (``1e-3``, which YAML
    reads as a string). :class:`ConfigError` names ``source.key`` and the problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: must be a mapping of settings, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r} (known: {', '.join(names)})")
    missing = [n for n in names if n not in data and _required(cls, n)]
    if missing:
        raise ConfigError(f"{source}.{missing[0]}: missing")
    kwargs = {n: _coerce(hints[n], data[n], f"{source}.{n}") for n in names if n in data}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _required(cls: type, name: str) -> bool:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] + (" or null" if type(None) in args else ""))
    if dataclasses.is_dataclass(tp):
        return build_typed(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} {value!r}: must be a list")
        return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} {value!r}: must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} {value!r}: must be an integer")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} {value!r}: must be a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where} {value!r}: must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} {value!r}: must be text")
        return value
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} {value!r}: must be a mapping")
        return dict(value)
    return value


def setting_differences(
    saved: Mapping[str, Any], given: Mapping[str, Any], limit: int = 6, ignore: Iterable[str] = ()
) -> list[str]:
    """``"key: run <saved>, given <given>"`` for each dotted setting that differs between two
    nested settings mappings (at most ``limit`` lines, then a count), so that a refused
    ``--resume`` says which ``--set`` would make them agree. Dotted keys in ``ignore`` (settings
    that do not change a run's results, e.g. a memory budget) are left out.

    >>> setting_differences({"a": 1, "b": {"c": 2}, "m": 5}, {"a": 1, "b": {"c": 3}, "m": 9}, ignore=["m"])
    ['b.c: run 2, given 3']
    """

    def flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, Mapping):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
        return out

    a, b = flat(saved), flat(given)
    missing = "(not set)"
    lines = [
        f"{key}: run {a.get(key, missing)!r}, given {b.get(key, missing)!r}"
        for key in sorted((set(a) | set(b)) - set(ignore))
        if a.get(key, missing) != b.get(key, missing)
    ]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines
