"""Search, train, resume, evaluate and energy end to end on tiny settings: the digits and
generated CIFAR-format archives (10 and 100 classes), through the library and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from classification import config as C
from classification.evaluate import energy_checkpoint, evaluate_checkpoint
from classification.search import search_run
from classification.train import resume_config, train_run
from stereo_snn import cli
from stereo_snn.errors import CheckpointError, ConfigError
from stereo_snn.runtime import load_checkpoint
from stereo_snn.search import load_genotype

TINY_MODEL = [
    "model.time_steps=2",
    "model.layers=2",
    "model.channels=4",
    "model.levels=2",
    "model.neuron_kinds=[lif]",
    "threads=1",
]
TINY_SEARCH = [
    "search.epochs=2",
    "search.warmup_epochs=1",
    "search.batch_size=8",
    "search.max_batches=2",
    "dgs.start=1",
    "dgs.every=1",
    "dgs.max_batches=1",
]
TINY_TRAIN = [
    "train.epochs=2",
    "train.batch_size=16",
    "train.eval_batch_size=64",
    "train.max_batches=3",
    "dgs.start=1",
    "dgs.every=1",
    "dgs.max_batches=1",
    "data.limit_test=64",
]


@pytest.fixture(scope="module")
def digits_search(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    cfg = C.resolve_config("digits", command="search", overrides=[*TINY_MODEL, *TINY_SEARCH, "data.limit_train=64"])
    return search_run(cfg, out, log=lambda s: None)


def test_search_writes_genotype_and_run_folder(digits_search):
    res = digits_search
    g = load_genotype(res.genotype_path)
    comp = g.components["backbone"]
    assert len(comp.path) == 2 and comp.path[-1] == 1 and comp.config.moves == ("down", "same")
    assert g.settings["dataset"] == "digits" and g.settings["num_classes"] == 10
    assert len(res.history) == 2 and "val_loss" in res.history[1] and "val_loss" not in res.history[0]
    run = res.run.root
    assert json.loads((run / "config.json").read_text())["search"]["epochs"] == 2
    assert json.loads((run / "metrics.json").read_text())["path"] == list(comp.path)
    assert (run / "arch.txt").read_text().startswith("path ")
    report = json.loads((run / "search_report.json").read_text())
    assert report["summary"] == g.settings["search_report"] and report["decisions"]
    assert comp.config.alphas == "shared"
    assert any((run / "tb").iterdir())


def _train_cfg(genotype: Path, extra=()):
    return C.resolve_config(
        "digits",
        command="train",
        overrides=[
            *TINY_MODEL,
            *TINY_TRAIN,
            "data.limit_train=48",
            "model.auxiliary_layer=1",
            f"model.genotype={genotype}",
            *extra,
        ],
    )


def test_train_resume_is_bit_identical(digits_search, tmp_path):
    cfg = _train_cfg(digits_search.genotype_path)
    straight = train_run(cfg, tmp_path / "straight", progress=False, log=lambda s: None)
    assert straight.finished and straight.metrics["epochs_done"] == 2
    part = train_run(cfg, tmp_path / "resumed", epochs_this_run=1, progress=False, log=lambda s: None)
    assert not part.finished and part.metrics["epochs_done"] == 1
    again = train_run(
        resume_config(tmp_path / "resumed"), tmp_path / "resumed", resume=True, progress=False, log=lambda s: None
    )
    assert again.finished
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["epochs_done"] == b["epochs_done"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"] == b["history"] and a["dgs_history"] == b["dgs_history"]
    # DGS ran at epoch 1 (0-based): one recorded round after the initial b
    assert all(len(v) == 2 for v in a["dgs_history"].values())
    # the auxiliary head was trained
    assert any(k.startswith("auxiliary.") for k in a["model"])
    # evaluate and energy read the checkpoint and rebuild the network
    ev = evaluate_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt", progress=False)
    assert ev["num_classes"] == 10 and ev["images"] == 64 and 0.0 <= ev["top1"] <= ev["top5"] <= 100.0
    assert ev["top1"] == pytest.approx(straight.metrics["test_top1"])
    en = energy_checkpoint(tmp_path / "straight" / "checkpoints" / "best.pt", images=4)
    per = en.per_image()
    assert (
        en.images == 4
        and en.to_dict()["per_image"] == per
        and per["snn"]["compute_mj"] > 0
        and per["ann"]["compute_mj"] > 0
    )
    assert per["ann"]["macs"] > per["snn"]["macs"]  # the ANN twin multiplies where the SNN adds
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train_run(cfg, tmp_path / "nothing", resume=True, progress=False)


def test_train_needs_a_genotype(tmp_path):
    cfg = C.resolve_config("digits", command="train", overrides=TINY_MODEL)
    with pytest.raises(ConfigError, match="model.genotype: a genotype JSON is required"):
        train_run(cfg, tmp_path, progress=False)


@pytest.mark.parametrize("variant,classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_archives_end_to_end_via_cli(tmp_path, make_cifar, variant, classes, capsys):
    archive = make_cifar(tmp_path / "data", variant, n_train=16, n_test=8, tar=(variant == "cifar100"))
    common = ["--set", f"data.root={archive}", "--set", "data.cutout=8"]
    for item in TINY_MODEL:
        common += ["--set", item]
    search_args = [
        "classify",
        "search",
        "--preset",
        variant,
        "--out",
        str(tmp_path / "s"),
        *common,
        "--set",
        "search.epochs=1",
        "--set",
        "search.warmup_epochs=0",
        "--set",
        "search.batch_size=4",
        "--set",
        "search.max_batches=1",
        "--set",
        "search.dgs=false",
    ]
    assert cli.main(search_args) == 0
    genotype = tmp_path / "s" / "genotype.json"
    assert genotype.is_file()
    train_args = [
        "classify",
        "train",
        "--preset",
        variant,
        "--genotype",
        str(genotype),
        "--out",
        str(tmp_path / "t"),
        "--no-progress",
        *common,
        "--set",
        "model.auxiliary_layer=2",
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.dgs=false",
    ]
    assert cli.main(train_args) == 0
    ckpt = tmp_path / "t" / "checkpoints" / "last.pt"
    state = load_checkpoint(ckpt)
    assert state["meta"]["num_classes"] == classes
    assert state["model"]["classifier.weight"].shape[0] == classes
    capsys.readouterr()
    assert cli.main(["classify", "evaluate", str(ckpt), "--no-progress", "--json", str(tmp_path / "ev.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_classes"] == classes and result["images"] == 8
    assert json.loads((tmp_path / "ev.json").read_text())["top5"] == result["top5"]
    assert cli.main(["classify", "energy", str(ckpt), "--images", "2", "--json", str(tmp_path / "en.json")]) == 0
    printed = capsys.readouterr().out
    assert "ANN twin" in printed and "per image, compute (MAC+AC): SNN" in printed
    assert json.loads((tmp_path / "en.json").read_text())["images"] == 2
    # a wrong dataset root is one clear error, exit code 2
    assert cli.main(["classify", "evaluate", str(ckpt), "--set", f"data.root={tmp_path / 'missing'}"]) == 2
    assert "CIFAR dataset not found" in capsys.readouterr().err


def test_demo_runs_search_train_evaluate_energy(tmp_path, capsys):
    tiny = [
        *TINY_MODEL,
        "search.epochs=1",
        "search.warmup_epochs=0",
        "search.max_batches=1",
        "search.dgs=false",
        "train.epochs=1",
        "train.max_batches=2",
        "train.dgs=false",
        "data.limit_train=32",
        "data.limit_test=32",
        "energy.images=2",
    ]
    args = ["classify", "demo", "--out", str(tmp_path), "--no-progress"]
    for item in tiny:
        args += ["--set", item]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "digits test accuracy: top-1" in printed and "energy per image (compute, MAC+AC): SNN" in printed
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert summary["test_images"] == 32 and summary["time_steps"] == 2
    assert summary["energy_per_image_uj"]["ann_twin_compute"] > 0 and summary["energy_per_image_uj"]["snn_compute"] > 0
    assert (tmp_path / "search" / "genotype.json").is_file() and (
        tmp_path / "train" / "checkpoints" / "best.pt"
    ).is_file()
