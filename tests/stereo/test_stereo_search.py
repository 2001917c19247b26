"""The stereo search loop: genotype file, figures, curves, and a fixed network built from it."""

from __future__ import annotations

import json

import pytest
import torch

from stereo_snn.errors import CheckpointError, DatasetError
from stereo_snn.search import genotype_to_dict, load_genotype
from stereo_snn.stereo.data import StereoWindowDataset, open_sources, pad_collate
from stereo_snn.stereo.network import build_network
from stereo_snn.stereo.search import derive_from_supernet, run_search


def test_search_writes_a_genotype_that_builds(sim_root, tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(**{"search.crop": [24, 36], "search.epochs": 1, "search.warmup_epochs": 0})
    sources = open_sources(sim_root)[:1]
    logs: list[str] = []
    genotype = run_search(cfg, sources, tmp_path, seed=0, max_batches=1, log=logs.append)
    loaded = load_genotype(tmp_path / "genotype.json")
    # one architecture step decides nothing: one warning line, the report beside the genotype
    assert len([line for line in logs if line.startswith("warning: search too short")]) == 1
    report = json.loads((tmp_path / "search_report.json").read_text())
    assert report["summary"]["long_enough"] is False and report["summary"]["arch_steps"] == 1
    assert {d["component"] for d in report["decisions"]} == {"feature", "matching"}
    assert loaded.settings["search_report"] == report["summary"]
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

    # the searched supernet is saved: decoding it again gives the same genotype, and other
    # decoding settings give another one without searching
    again = derive_from_supernet(tmp_path / "supernet.pt", tmp_path / "again", log=lambda s: None)
    assert genotype_to_dict(again)["components"] == genotype_to_dict(loaded)["components"]
    capped = derive_from_supernet(
        tmp_path / "supernet.pt", tmp_path / "capped", {"network.max_skip": 0}, log=lambda s: None
    )
    assert (tmp_path / "capped" / "genotype.json").is_file() and (
        tmp_path / "capped" / "figures/genotype.png"
    ).is_file()
    ops = [op for comp in capped.components.values() for cell in comp.cells for node in cell.edges for _, op in node]
    assert ops and "skip_connect" not in ops
    assert capped.settings["stereo_config"]["network"]["max_skip"] == 0
    with pytest.raises(CheckpointError, match="shape mismatch"):  # a setting that changes the weights does not fit
        derive_from_supernet(
            tmp_path / "supernet.pt", tmp_path / "wider", {"network.matching_channels": 12}, log=lambda s: None
        )


def test_a_supernet_saved_before_the_alphas_setting_decodes_with_per_node_alphas(tiny_cfg, tmp_path):
    from stereo_snn.runtime import save_checkpoint
    from stereo_snn.stereo.network import build_supernet

    cfg = tiny_cfg.replace(**{"network.alphas": "per_node"})
    old = cfg.to_dict()
    del old["network"]["alphas"]
    save_checkpoint(tmp_path / "supernet.pt", {"model": build_supernet(cfg).state_dict(), "config": old})
    g = derive_from_supernet(tmp_path / "supernet.pt", tmp_path / "d", log=lambda s: None)
    assert {c.config.alphas for c in g.components.values()} == {"per_node"}


def test_search_command_derive_from_a_saved_supernet(sim_root, tiny_cfg, tmp_path, capsys):
    from stereo_snn.cli import main

    cfg = tiny_cfg.replace(**{"search.crop": [24, 36], "search.epochs": 1, "search.warmup_epochs": 0})
    run_search(cfg, open_sources(sim_root)[:1], tmp_path / "run", seed=0, max_batches=1, log=lambda s: None)
    sup = str(tmp_path / "run" / "supernet.pt")
    assert main(["search", "--derive-from", sup, "--set", "network.max_skip=0", "--out", str(tmp_path / "d")]) == 0
    assert "decoded from" in capsys.readouterr().out
    cells = [c for comp in load_genotype(tmp_path / "d" / "genotype.json").components.values() for c in comp.cells]
    assert all(op != "skip_connect" for c in cells for node in c.edges for _, op in node)
    assert main(["search", "--derive-from", sup, "--data", str(sim_root), "--out", str(tmp_path / "e")]) == 2
    assert "--derive-from decodes a saved supernet" in capsys.readouterr().err


def test_search_needs_two_windows(sim_root, tiny_cfg, tmp_path):
    src = open_sources(sim_root)[0]
    one = {src.name: [e for e in src.entries() if e.gt_row == 2]}
    ds = StereoWindowDataset([src], tiny_cfg, entries=one)
    assert len(ds) == 1
    from stereo_snn.stereo.data import split_loaders

    with pytest.raises(DatasetError, match="at least 2 windows"):
        split_loaders(ds, 1, 0)
