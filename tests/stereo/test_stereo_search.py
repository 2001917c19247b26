"""The stereo search loop: genotype file, figures, curves, and a fixed network built from it."""

from __future__ import annotations

import json

import pytest
import torch

from stereo_snn.errors import DatasetError
from stereo_snn.search import load_genotype
from stereo_snn.stereo.data import StereoWindowDataset, open_sources, pad_collate
from stereo_snn.stereo.network import build_network
from stereo_snn.stereo.search import run_search


def test_search_writes_a_genotype_that_builds(sim_root, tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(**{"search.crop": [24, 36], "search.epochs": 1, "search.warmup_epochs": 0})
    sources = open_sources(sim_root)[:1]
    genotype = run_search(cfg, sources, tmp_path, seed=0, max_batches=1, log=lambda s: None)
    loaded = load_genotype(tmp_path / "genotype.json")
    assert set(loaded.components) == {"feature", "matching"}
    assert loaded.settings["stereo_config"] == cfg.to_dict()
    assert loaded.components["feature"].path == genotype.components["feature"].path
    assert len(loaded.components["matching"].cells) == cfg.network.matching_layers
    for name in ("figures/genotype.png", "figures/search_curves.png", "config.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert len(history) == 1 and "loss" in history[0] and "val_loss" in history[0]
    assert list((tmp_path / "tb").iterdir())
    model = build_network(cfg, loaded)
    batch = pad_collate([StereoWindowDataset(sources[:1], cfg)[0]])
    with torch.no_grad():
        out = model(batch["left"], batch["right"])
    assert out["disparity"].shape == (1, 48, 64)
    assert torch.isfinite(out["disparity"]).all()
    assert float(out["disparity"].min()) >= 0 and float(out["disparity"].max()) <= cfg.max_disparity - 1


def test_search_needs_two_windows(sim_root, tiny_cfg, tmp_path):
    src = open_sources(sim_root)[0]
    one = {src.name: [e for e in src.entries() if e.gt_row == 2]}
    ds = StereoWindowDataset([src], tiny_cfg, entries=one)
    assert len(ds) == 1
    from stereo_snn.stereo.search import _split_loaders

    with pytest.raises(DatasetError, match="at least 2 windows"):
        _split_loaders(ds, 1, 0)
