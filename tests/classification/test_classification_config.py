"""Presets load, config files and --set overrides apply, unknown keys are refused."""

from __future__ import annotations

import pytest

from classification import config as C
from stereo_snn.errors import ConfigError


def test_every_preset_resolves_and_keeps_the_published_recipe():
    names = C.available_presets()
    for dataset in ("cifar10", "cifar100", "imagenet", "digits"):
        assert f"{dataset}_search" in names and f"{dataset}_train" in names
    for name in names:
        cfg = C.resolve_config(preset=name)
        assert cfg["data"]["name"] in name
    train = C.resolve_config(preset="cifar10", command="train")
    assert train["train"]["lr"] == 0.025 and train["train"]["batch_size"] == 50
    assert train["train"]["epochs"] == 600 and train["data"]["cutout"] == 16
    assert train["model"]["auxiliary_layer"] == 6 and train["model"]["auxiliary_weight"] == 0.4
    assert train["model"]["channels"] == 48 and train["model"]["layers"] == 8 and train["model"]["time_steps"] == 6
    search = C.resolve_config(preset="cifar100", command="search")
    assert search["search"]["batch_size"] == 100 and search["search"]["arch_lr"] == 1e-3
    assert search["search"]["epochs"] == 50 and search["data"]["name"] == "cifar100"


def test_overrides_and_config_files(tmp_path):
    cfg = C.resolve_config(preset="digits_train", overrides=["train.epochs=3", "model.candidates=[skip_connect, conv_5x5]",
                                                             "data.root=/x/y", "train.grad_clip=null"])
    assert cfg["train"]["epochs"] == 3 and cfg["model"]["candidates"] == ["skip_connect", "conv_5x5"]
    assert cfg["data"]["root"] == "/x/y" and cfg["train"]["grad_clip"] is None
    f = tmp_path / "mine.yaml"
    f.write_text("train:\n  lr: 0.5\nseed: 7\n")
    cfg = C.resolve_config(preset="digits_train", config_file=f, overrides=["seed=9"])
    assert cfg["train"]["lr"] == 0.5 and cfg["seed"] == 9 and cfg["train"]["epochs"] == 15


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
