"""Retraining: checkpoints, exact resume, config/checkpoint mismatches."""

from __future__ import annotations

import json

import pytest
import torch

from stereo_snn.errors import CheckpointError, GenotypeError
from stereo_snn.runtime import load_checkpoint
from stereo_snn.stereo.data import open_sources
from stereo_snn.stereo.network import build_network, load_model, load_state_checked
from stereo_snn.stereo.train import train_genotype


def _quiet(_msg: str) -> None:
    pass


def test_resume_is_bit_identical(sim_root, tiny_cfg, tiny_genotype, tmp_path):
    cfg = tiny_cfg.replace(**{"train.epochs": 2, "train.image_every": 0})
    sources = open_sources(sim_root)[:1]
    straight = train_genotype(cfg, tiny_genotype, sources, [], tmp_path / "a", seed=4, progress=False, log=_quiet)
    half = train_genotype(
        cfg, tiny_genotype, sources, [], tmp_path / "b", seed=4, progress=False, epochs_this_run=1, log=_quiet
    )
    assert half.epochs == 1
    resumed = train_genotype(
        cfg, tiny_genotype, sources, [], tmp_path / "b", seed=4, progress=False, resume=True, log=_quiet
    )
    assert resumed.epochs == straight.epochs == 2
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"] == b["history"]
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys() and a["optimizer"]["state"]


def test_run_folder_contents(trained_run):
    for name in ("config.json", "genotype.json", "metrics.json", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (trained_run / name).is_file(), name
    assert list((trained_run / "tb").iterdir())
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert len(metrics["history"]) == 1 and metrics["best"]["val_mae"] is not None
    state = load_checkpoint(trained_run / "checkpoints" / "last.pt")
    assert {
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epochs_done",
        "rng",
        "config",
        "genotype",
        "application",
    } <= set(state)


def test_resume_refuses_other_settings_and_missing_run(sim_root, tiny_cfg, tiny_genotype, trained_run, tmp_path):
    sources = open_sources(sim_root)
    with pytest.raises(
        CheckpointError, match=r"settings differ from the given ones \(train\.epochs: run \d+, given 3\)"
    ):
        train_genotype(
            tiny_cfg.replace(**{"train.epochs": 3}),
            tiny_genotype,
            sources[:1],
            [],
            trained_run,
            resume=True,
            progress=False,
            log=_quiet,
        )
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train_genotype(
            tiny_cfg, tiny_genotype, sources[:1], [], tmp_path / "empty", resume=True, progress=False, log=_quiet
        )


def test_resume_takes_another_cache_budget(sim_root, tiny_cfg, tiny_genotype, trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = tiny_cfg.replace(**{"train.epochs": 1, "cache_mb": tiny_cfg.cache_mb + 7})  # memory only
    train_genotype(cfg, tiny_genotype, open_sources(sim_root)[:2], [], run, resume=True, progress=False, log=_quiet)


def test_resume_of_a_run_older_than_a_setting(sim_root, tiny_cfg, tiny_genotype, trained_run, tmp_path):
    """A setting added after the run began takes its default, so the older run still resumes."""
    import shutil

    from stereo_snn.runtime import save_checkpoint

    run = tmp_path / "old"
    shutil.copytree(trained_run, run)
    last = run / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    assert state["config"]["network"].pop("alphas") == "shared"  # as if written before `alphas` existed
    state["config"]["train"]["epochs"] = 2  # one more epoch to run
    save_checkpoint(last, state)
    cfg = tiny_cfg.replace(**{"train.epochs": 2})
    resumed = train_genotype(
        cfg, tiny_genotype, open_sources(sim_root)[:1], [], run, resume=True, progress=False, log=_quiet
    )
    assert resumed.epochs == 2


def test_checkpoint_that_does_not_fit_the_genotype(trained_run, tiny_cfg, tmp_path):
    from stereo_snn.search import Genotype, save_genotype
    from stereo_snn.stereo.network import build_supernet

    ckpt = trained_run / "checkpoints" / "last.pt"
    loaded = load_model(ckpt)
    assert loaded.info["data_size"] == [48, 64]
    torch.manual_seed(123)
    other_cfg = tiny_cfg.replace(**{"network.matching_channels": 6})
    net = build_supernet(other_cfg)
    other = Genotype(components={"feature": net.feature.derive(), "matching": net.matching.derive()})
    path = tmp_path / "other.json"
    save_genotype(path, other)
    # the genotype was searched with other channels than the checkpoint's config: named before any weight is read
    with pytest.raises(
        GenotypeError, match="components.matching was searched with channels=6 but the config gives channels=4"
    ):
        load_model(ckpt, genotype_path=path)
    model = build_network(other_cfg, other)
    state = load_checkpoint(ckpt)["model"]
    with pytest.raises(CheckpointError, match="keys|shape"):
        load_state_checked(model, state, str(ckpt))


def test_init_starts_a_new_run_from_another_checkpoints_weights(
    trained_run, tiny_cfg, tiny_genotype, sim_root, tmp_path
):
    import torch

    from stereo_snn.errors import CheckpointError
    from stereo_snn.search import Genotype
    from stereo_snn.stereo.data import open_sources
    from stereo_snn.stereo.network import build_supernet
    from stereo_snn.stereo.train import train_genotype

    ckpt = trained_run / "checkpoints" / "best.pt"
    sources = open_sources(sim_root)
    lines: list[str] = []
    cfg = tiny_cfg.replace(**{"train.epochs": 1, "train.lr": 1e-12, "train.image_every": 0})
    train_genotype(cfg, tiny_genotype, sources[:1], [], tmp_path / "ft", progress=False, init=ckpt, log=lines.append)
    assert any("weights initialised from" in line for line in lines)
    before = torch.load(ckpt, weights_only=True)["model"]
    after = torch.load(tmp_path / "ft" / "checkpoints" / "last.pt", weights_only=True)["model"]
    conv = next(k for k in before if k.endswith("conv.weight") or k.endswith(".weight"))
    assert torch.allclose(before[conv], after[conv], atol=1e-6)  # a vanishing lr keeps the initial weights
    torch.manual_seed(9)
    sup = build_supernet(tiny_cfg.replace(**{"network.feature_channels": 6}))
    other = Genotype({k: v.derive() for k, v in sup.components().items()})
    with pytest.raises(CheckpointError, match="does not fit"):
        train_genotype(
            tiny_cfg.replace(**{"network.feature_channels": 6}),
            other,
            sources[:1],
            [],
            tmp_path / "bad",
            progress=False,
            init=ckpt,
            log=lambda s: None,
        )


def test_dgs_rounds_run_on_training_windows_never_on_the_validation_windows(
    sim_root, tiny_cfg, tiny_genotype, tmp_path, monkeypatch
):
    from stereo_snn.search import SurrogateSearch

    seen: list[str] = []
    original = SurrogateSearch.run

    def spy(self, train_batches, held_out, loss_fn):
        train_batches, held_out = list(train_batches), list(held_out)
        seen.extend(name for b in train_batches + held_out for name in b["name"])
        return original(self, train_batches, held_out, loss_fn)

    monkeypatch.setattr(SurrogateSearch, "run", spy)
    sources = open_sources(sim_root)
    cfg = tiny_cfg.replace(
        **{
            "train.epochs": 1,
            "train.image_every": 0,
            "train.dgs_every": 1,
            "train.dgs_start": 0,
            "train.dgs_batches": 2,
        }
    )
    train_genotype(cfg, tiny_genotype, sources[:1], sources[1:2], tmp_path / "run", progress=False, log=_quiet)
    assert seen and set(seen) == {sources[0].name}
