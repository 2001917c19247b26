"""`stereo-snn genotype show|energy` and the search benchmark's command line."""

from __future__ import annotations

import json

import torch

from stereo_snn.bench.search import main as bench_main
from stereo_snn.cli import main
from stereo_snn.search import Genotype, SpikingTrellis, TrellisConfig, save_genotype


def _file(tmp_path):
    torch.manual_seed(0)
    net = SpikingTrellis(TrellisConfig(dim=2, in_channels=2, channels=2, layers=2, steps=2, levels=2))
    return save_genotype(tmp_path / "g.json", Genotype({"backbone": net.derive()}))


def test_genotype_show_and_json(tmp_path, capsys):
    path = _file(tmp_path)
    assert main(["genotype", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[backbone] level path" in out and "layer 1 @ level 0" in out
    assert main(["genotype", "show", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "stereo-snn-genotype"


def test_genotype_energy_and_errors(tmp_path, capsys):
    path = _file(tmp_path)
    assert main(["genotype", "energy", str(path), "--shape", "2,1,8,8", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ann_twin"]["compute_mj"] > rep["snn"]["compute_mj"] > 0
    assert main(["genotype", "energy", str(path), "--shape", "2,1,8"]) == 2
    assert "T,B,H,W" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["genotype", "show", str(bad)]) == 2
    assert "format" in capsys.readouterr().err


def test_bench_search_runs_tiny(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert (
        bench_main(
            [
                "--size",
                "8",
                "--layers",
                "1",
                "--channels",
                "2",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--time-steps",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["step_seconds_median"] > 0 and res["peak_rss_mib"] > 0
    assert "search step (2D supernet" in capsys.readouterr().out
