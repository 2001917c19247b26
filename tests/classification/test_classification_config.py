"""Presets load, config files and --set overrides apply, unknown keys are refused."""

from __future__ import annotations

import re

import pytest

from classification import config as C
from stereo_snn.errors import ConfigError


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet", "digits"])
def test_every_dataset_has_a_search_and_a_train_preset(dataset):
    names = C.available_presets()
    assert f"{dataset}_search" in names and f"{dataset}_train" in names


@pytest.mark.parametrize("name", C.available_presets())
def test_every_preset_resolves_to_its_dataset(name):
    assert C.resolve_config(preset=name).data.name in name


def test_presets_keep_the_published_recipe():
    train = C.resolve_config(preset="cifar10", command="train")
    assert train.train.lr == 0.025 and train.train.batch_size == 50
    assert train.train.epochs == 600 and train.data.cutout == 16
    assert train.model.auxiliary_layer == 6 and train.model.auxiliary_weight == 0.4
    assert train.model.channels == 48 and train.model.layers == 8 and train.model.time_steps == 6
    search = C.resolve_config(preset="cifar100", command="search")
    assert search.search.batch_size == 100 and search.search.arch_lr == 1e-3
    assert search.search.epochs == 50 and search.data.name == "cifar100"


def test_overrides_and_config_files(tmp_path):
    cfg = C.resolve_config(
        preset="digits_train",
        overrides=[
            "train.epochs=3",
            "model.candidates=[skip_connect, conv_5x5]",
            "data.root=/x/y",
            "train.grad_clip=null",
        ],
    )
    assert cfg.train.epochs == 3 and cfg.model.candidates == ("skip_connect", "conv_5x5")
    assert cfg.data.root == "/x/y" and cfg.train.grad_clip is None
    f = tmp_path / "mine.yaml"
    f.write_text("train:\n  lr: 0.5\nseed: 7\n")
    cfg = C.resolve_config(preset="digits_train", config_file=f, overrides=["seed=9"])
    assert cfg.train.lr == 0.5 and cfg.seed == 9 and cfg.train.epochs == 15


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"--set train.epoch=3: unknown setting 'train.epoch' \(known: train.amp, "):
        C.resolve_config(overrides=["train.epoch=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        C.resolve_config(overrides=["train.epochs"])
    with pytest.raises(ConfigError, match=r"--preset 'mnist': no such preset \(available: cifar100_search"):
        C.resolve_config(preset="mnist")
    with pytest.raises(ConfigError, match="setting 'train' must be a mapping"):
        C.resolve_config(overrides=["train=3"])
    f = tmp_path / "bad.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="bad.yaml: the top level must be a mapping"):
        C.resolve_config(config_file=f)
    f.write_text("a: [\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        C.resolve_config(config_file=f)
    with pytest.raises(ConfigError, match="cannot read config file"):
        C.resolve_config(config_file=tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "item,message",
    [
        ("train.epochs=abc", "train.epochs 'abc': must be an integer"),
        ("train.lr=[1, 2]", "train.lr \\[1, 2\\]: must be a finite number"),
        ("train.lr=fast", "train.lr 'fast': must be a number"),
        ("train.amp=3", "train.amp 3: must be true or false"),
        ("threads=-2", "threads -2: must be >= 1 or null"),
        ("search.max_batches=0", "search.max_batches 0: must be >= 1 or null"),
        ("search.energy_target_mj=0", "search.energy_target_mj 0.0: must be > 0"),
        ("search.energy_dual_lr=-1", "search.energy_dual_lr -1.0: must be >= 0"),
        ("data.name=mnist", "unknown dataset"),
    ],
)
def test_settings_of_the_wrong_type_or_range_are_named(item, message):
    with pytest.raises(ConfigError, match=message):
        C.resolve_config(overrides=[item])


def test_settings_are_typed_and_frozen_and_read_numbers_written_as_text():
    import dataclasses

    cfg = C.resolve_config(overrides=["train.lr=1e-3"])  # YAML reads 1e-3 as a string
    assert cfg.train.lr == 0.001 and isinstance(cfg.train.lr, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 0.1  # type: ignore[misc]
    assert C.ClassifyConfig.from_dict(cfg.to_dict()) == cfg


def test_model_alphas_default_shared_reach_the_trellis_and_old_files_read():
    from classification.network import trellis_config

    cfg = C.resolve_config()
    assert cfg.model.alphas == "shared" and trellis_config(cfg.model, 3).alphas == "shared"
    per_node = cfg.with_overrides(["model.alphas=per_node"])
    assert trellis_config(per_node.model, 3).alphas == "per_node"
    old = cfg.to_dict()
    del old["model"]["alphas"]  # a checkpoint's settings from before the setting
    assert C.ClassifyConfig.from_dict(old).model.alphas == "shared"
    with pytest.raises(ConfigError, match="alphas 'tied'"):
        trellis_config(cfg.with_overrides(["model.alphas=tied"]).model, 3)


def test_old_search_setting_names_are_read():
    old = C.resolve_config().to_dict()
    old["search"] = {
        ("w_" + k if k in ("lr", "lr_min", "momentum", "weight_decay") else k): v for k, v in old["search"].items()
    }
    assert C.ClassifyConfig.from_dict(old).search.lr == C.resolve_config().search.lr
    del old["search"]["energy_dual_lr"]  # settings from before the energy target's multiplier
    assert C.ClassifyConfig.from_dict(old).search.energy_dual_lr == 0.5


@pytest.mark.parametrize(
    "args,message",
    [
        (["classify", "train", "--epochs-this-run", "0"], "--epochs-this-run 0: must be an integer >= 1"),
        (["classify", "train", "--resume", "--overwrite"], "--resume and --overwrite"),
        (["classify", "search", "--set", "search.max_batches=-1"], "search.max_batches -1"),
    ],
)
def test_run_options_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    from stereo_snn import cli

    out = tmp_path / "run"
    assert cli.main([*args, "--out", str(out), "--set", "model.genotype=g.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err)
