"""Light imports: the CLI registrar and the engine packages do not pull torch until a name is used."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "stmt", ["import stereo_snn.search.cli", "import stereo_snn.spiking", "import stereo_snn.search"]
)
def test_light_import_leaves_torch_out(stmt):
    mods = _modules_after(stmt)
    assert "stereo_snn.search" in mods or "stereo_snn.spiking" in mods
    assert "torch" not in mods


def test_lazy_names_resolve_on_use():
    mods = _modules_after(
        "from stereo_snn.search import Searcher, TrellisConfig\n"
        "from stereo_snn.spiking import Dspike, reset\n"
        "import stereo_snn.search as s\n"
        "assert Searcher.__module__ == 'stereo_snn.search.architect'\n"
        "assert s.Searcher is Searcher and 'Searcher' in dir(s)\n"
        "assert Dspike.__module__ == 'stereo_snn.spiking.surrogate'"
    )
    assert "torch" in mods


def test_unknown_name_is_an_attribute_error():
    import stereo_snn.search as s
    import stereo_snn.spiking as sp

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        s.Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec("from stereo_snn.spiking import Nope", {})
    assert sp.__all__ and s.__all__
