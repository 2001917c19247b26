"""The runnable examples: the public functions users call carry a ``>>>`` example, and plain
``pytest`` runs them (doctest collection of the packages, only of modules that have one)."""

from __future__ import annotations

import importlib.util
import inspect
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = [
    ("stereo_snn.events", "open_events"),
    ("stereo_snn.events", "DSECSequence"),
    ("stereo_snn.events", "MVSECRecording"),
    ("stereo_snn.events", "VoxelGrid"),
    ("stereo_snn.events", "SBT"),
    ("stereo_snn.events", "Histogram"),
    ("stereo_snn.events", "MixedDensity"),
    ("stereo_snn.events", "make_representation"),
    ("stereo_snn.stereo.network", "load_model"),
    ("stereo_snn.stereo.infer", "Predictor"),
    ("stereo_snn.stereo.search", "run_search"),
]


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[n for _, n in PUBLIC])
def test_public_function_has_a_runnable_example(module, name):
    obj = getattr(importlib.import_module(module), name)
    assert ">>> " in (inspect.getdoc(obj) or ""), f"{module}.{name}: no >>> example in its docstring"


def test_plain_pytest_runs_the_examples_of_both_packages():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    assert {"tests", "stereo_snn", "classification"} <= set(options["testpaths"])


def _ignore_hook():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pytest_ignore_collect


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("stereo_snn/cli.py", True),  # no example: never imported at collection
        ("stereo_snn/windows.py", False),
        ("tests/core/test_examples.py", None),  # the tests are collected as usual
        ("tests/stereo/conftest.py", True),  # fixtures load as plugins; as doctest modules they would clash
    ],
)
def test_doctest_collection_imports_only_modules_with_examples(path, ignored):
    assert _ignore_hook()(ROOT / path, None) is ignored
