"""Doctest collection for the packages (pytest's ``--doctest-modules``, set in pyproject.toml).

Only modules whose text holds a ``>>>`` example are imported for doctests: the others are
never imported at collection time, so a module that needs an optional dependency (or is slow
to import) costs nothing and cannot break collection. The conftest.py files are not collected
as doctest modules (they have no examples, and their shared name would clash).
"""

from __future__ import annotations

from pathlib import Path

PACKAGES = tuple(Path(__file__).parent / name for name in ("stereo_snn", "classification"))


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if collection_path.name == "conftest.py":
        # loaded as plugins all the same; collected for doctests, the tests' conftest.py files
        # (several of that name) would clash as one module "conftest"
        return True
    if collection_path.suffix != ".py" or not any(collection_path.is_relative_to(p) for p in PACKAGES):
        return None
    return ">>>" not in collection_path.read_text(encoding="utf-8")
