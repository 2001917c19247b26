"""PEP 562 lazy package exports: the package's names are imported on first access.

Used by ``stereo_snn.spiking`` and ``stereo_snn.search`` so that importing them (e.g. from a
CLI registrar) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    exports: exported name -> relative module that defines it (e.g. ``".neurons"``);
    namespace: the package's ``globals()`` (a resolved name is cached there).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
