"""Shared tiny data for the stereo tests: simulated 48x64 DSEC-layout sequences (300 ms),
a genotype derived from a tiny supernet, and a checkpoint trained on them for one epoch."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory) -> Path:
    """Three simulated DSEC-layout sequences (48x64, 300 ms, seeds 11..13) under one folder."""
    from stereo_snn.events.simulator import make_demo_sequences

    root = tmp_path_factory.mktemp("stereo_sim")
    make_demo_sequences(root, 3, seed=11, size=(48, 64), duration_ms=300.0)
    return root


@pytest.fixture(scope="session")
def tiny_cfg():
    from stereo_snn.stereo.config import load_config

    return load_config("tiny")


@pytest.fixture(scope="session")
def tiny_genotype(tiny_cfg):
    """A genotype derived from a freshly initialised tiny supernet (seeded)."""
    import torch

    from stereo_snn.search import Genotype
    from stereo_snn.stereo.network import build_supernet

    torch.manual_seed(3)
    net = build_supernet(tiny_cfg)
    return Genotype(
        components={"feature": net.feature.derive(), "matching": net.matching.derive()},
        settings={"stereo_config": tiny_cfg.to_dict()},
    )


@pytest.fixture(scope="session")
def genotype_file(tmp_path_factory, tiny_genotype) -> Path:
    from stereo_snn.search import save_genotype

    path = tmp_path_factory.mktemp("stereo_genotype") / "genotype.json"
    save_genotype(path, tiny_genotype)
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_cfg, tiny_genotype, sim_root) -> Path:
    """A run folder with a tiny model trained for one epoch on two sequences."""
    from stereo_snn.stereo.data import open_sources
    from stereo_snn.stereo.train import train_genotype

    out = tmp_path_factory.mktemp("stereo_run")
    sources = open_sources(sim_root)
    train_genotype(
        tiny_cfg.replace(**{"train.epochs": 1}),
        tiny_genotype,
        sources[:2],
        sources[2:],
        out,
        seed=0,
        progress=False,
        log=lambda s: None,
    )
    return out
