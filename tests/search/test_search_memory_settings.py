"""The memory-saving mode as settings of both applications, and `bench search --memory`."""

from __future__ import annotations

import json

import pytest

from classification.config import ClassifyConfig, resolve_config
from stereo_snn.bench import search as bench_search
from stereo_snn.bench import search_memory
from stereo_snn.errors import ConfigError
from stereo_snn.search import MemoryConfig
from stereo_snn.stereo.config import StereoConfig, load_config
from stereo_snn.stereo.network import build_supernet

TINY_NETS = ["--cifar-preset", "digits_search", "--image-size", "8", "--stereo-preset", "tiny", "--crop", "24", "36"]


def test_old_settings_without_the_memory_keys_load_with_the_plain_supernet():
    stereo = load_config("tiny").to_dict()
    for key in ("partial_channels", "sample_ops", "gumbel_tau", "checkpoint_cells", "amp"):
        del stereo["search"][key]
    assert MemoryConfig.of(StereoConfig.from_dict(stereo).search).is_default
    classify = resolve_config("digits", command="search").to_dict()
    for key in ("partial_channels", "sample_ops", "gumbel_tau", "checkpoint_cells", "amp"):
        del classify["search"][key]
    cfg = ClassifyConfig.from_dict(classify)
    assert MemoryConfig.of(cfg.search).is_default and cfg.search.amp is False


def test_the_memory_settings_reach_the_supernet_and_the_resolved_config():
    cfg = load_config("tiny").replace(**{"search.partial_channels": 2, "search.checkpoint_cells": True})
    net = build_supernet(cfg)
    assert net.feature.memory == MemoryConfig(partial_channels=2, checkpoint_cells=True)
    cell = next(iter(net.matching.cells.values()))
    assert cell.edges[0][1].conv.weight.shape[:2] == (cell.channels // 2, cell.channels // 2)
    assert cfg.to_dict()["search"]["partial_channels"] == 2
    classify = resolve_config("digits", command="search", overrides=["search.sample_ops=true"])
    assert classify.to_dict()["search"]["sample_ops"] is True


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: load_config("tiny").replace(**{"search.partial_channels": 3}),
            "search.partial_channels 3 must divide",
        ),
        (lambda: load_config("tiny").replace(**{"search.gumbel_tau": -1.0}), "search.gumbel_tau -1.0"),
        (
            lambda: resolve_config("digits", command="search", overrides=["search.partial_channels=3"]),
            r"search.partial_channels 3: must divide model.channels \(8\)",
        ),
        (lambda: resolve_config("digits_search", overrides=["search.partial_channels=0"]), "search.partial_channels 0"),
    ],
)
def test_bad_memory_settings_are_one_line_naming_the_setting(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_mode_names():
    assert search_memory.mode_settings("plain") == {}
    assert search_memory.mode_settings("pc4+sample+ckpt+amp") == {
        "partial_channels": 4,
        "sample_ops": True,
        "checkpoint_cells": True,
        "amp": True,
    }
    with pytest.raises(ConfigError, match="unknown part 'fast'"):
        search_memory.mode_settings("pc2+fast")


def test_bench_search_memory_measures_every_net_and_mode_on_tiny_supernets(monkeypatch, tmp_path, capsys):
    # in this process instead of fresh ones (the figures are meaningless here; the path is what is tested)
    monkeypatch.setattr(search_memory, "_run_child", lambda spec, cap: search_memory._child(spec))
    out = tmp_path / "memory.json"
    args = ["--memory", *TINY_NETS, "--modes", "pc2+sample+ckpt+amp", "--out", str(out)]
    assert bench_search.main(args) == 0
    text = capsys.readouterr().out
    assert "| cifar | pc2+sample+ckpt+amp |" in text and "| stereo | pc2+sample+ckpt+amp |" in text
    lines = json.loads(out.read_text())["lines"]
    assert [(ln["net"], ln["mode"]) for ln in lines] == [
        ("cifar", "pc2+sample+ckpt+amp"),
        ("stereo", "pc2+sample+ckpt+amp"),
    ]
    assert all(len(ln["points"]) == 2 for ln in lines)


def test_each_measurement_runs_in_a_fresh_process_within_the_cap():
    spec = {
        "net": "cifar",
        "mode": "plain",
        "batch": 1,
        "threads": 1,
        "cifar_preset": "digits_search",
        "stereo_preset": "tiny",
        "image_size": 8,
        "crop": [24, 36],
    }
    res = search_memory._run_child(spec, 6 * 1024.0)
    assert res["peak_rss_mib"] >= res["built_rss_mib"] > 0 and res["input_shape"] == [2, 1, 3, 8, 8]
    assert search_memory._run_child(spec, 1.0) == {"over_cap": True}


def test_the_projection_says_whether_the_published_batch_fits():
    lines = [
        search_memory.Line("cifar", "plain", 800.0, 1900.0, [(1, 2700.0), (2, 4600.0)]),
        search_memory.Line("stereo", "ckpt", 800.0, 100.0, [(1, 900.0), (2, 1000.0)]),
        search_memory.Line("stereo", "plain", float("nan"), float("nan"), [], over_cap=True),
        search_memory.Line("stereo", "pc4", 800.0, 1000.0, [(1, 1800.0), (2, 2800.0)], area_scale=4.0),
    ]
    table = search_memory.project(lines)
    assert "| cifar | plain | 800 | 1900.0 | 100 | 186.3 | no |" in table
    assert "| stereo | ckpt | 800 | 100.0 | 4 | 1.2 | yes |" in table
    assert "over the measuring cap" in table
    assert "| stereo | pc4 | 800 | 4000 (= 1000.0 x4, area) | 4 | 16.4 | yes |" in table


def test_the_published_size_presets_use_checkpointed_cells():
    for name in ("cifar10", "cifar100"):
        assert resolve_config(name, command="search").search.checkpoint_cells
    for name in ("dsec", "mvsec"):
        assert load_config(name).search.checkpoint_cells
