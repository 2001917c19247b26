"""The shared run skeleton (stereo_snn.fit) on a toy regression task: resume, best model,
checkpoint fields, run-folder safety, old checkpoints and the other application's runs."""

from __future__ import annotations

import json

import pytest
import torch

from stereo_snn.errors import CheckpointError, ConfigError, OutputError
from stereo_snn.fit import (
    CHECKPOINT_FIELDS,
    TRAINING_STATE,
    FitSettings,
    FitTask,
    StepLoss,
    export_checkpoint,
    fit,
    prepare_run_dir,
    read_run_state,
)
from stereo_snn.runtime import load_checkpoint, save_checkpoint

X = torch.linspace(-1, 1, 24).unsqueeze(1)
Y = 3 * X - 0.5


def _task(application: str = "toy") -> FitTask:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.Dropout(0.2), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)

    def batches(epoch: int):
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(epoch))
        return [(X[order[i : i + 8]], Y[order[i : i + 8]]) for i in range(0, len(X), 8)]

    def step(m, batch):
        x, y = batch
        return StepLoss(torch.nn.functional.mse_loss(m(x), y), len(y), {"train_count": float(len(y))})

    def evaluate(m):
        m.eval()
        with torch.no_grad():
            return {"val_mse": float(torch.nn.functional.mse_loss(m(X), Y))}

    return FitTask(
        application=application,
        model=model,
        optimizer=opt,
        scheduler=sched,
        train_batches=batches,
        step_loss=step,
        evaluate=evaluate,
        extra_state={"note": "toy"},
    )


def _fit(run_dir, resume=False, epochs_this_run=None, application="toy"):
    task = _task(application)
    run = prepare_run_dir(run_dir, resume=resume)
    state = read_run_state(run_dir, application) if resume else None
    settings = FitSettings(epochs=4, epochs_this_run=epochs_this_run, best_metric=("val_mse",), progress=False)
    return fit(task, run, settings, torch.device("cpu"), resume_state=state, log=lambda s: None)


def test_resumed_run_equals_a_straight_one_and_records_every_field(tmp_path):
    straight = _fit(tmp_path / "a")
    assert straight.finished and straight.epochs_done == 4
    half = _fit(tmp_path / "b", epochs_this_run=2)
    assert not half.finished and half.epochs_done == 2
    _fit(tmp_path / "b", resume=True)
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "last.pt") for r in ("a", "b"))
    assert set(CHECKPOINT_FIELDS) | {"note"} <= set(a)
    assert a["epochs_done"] == b["epochs_done"] == 4 and a["application"] == "toy"
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"] == b["history"]
    assert [r["epoch"] for r in a["history"]] == [1, 2, 3, 4]
    assert a["history"][0]["train_count"] == 1.0  # sums are reported per unit of weight
    best = a["best"]
    assert best["metric"] == "val_mse" and best["score"] == min(r["val_mse"] for r in a["history"])
    assert load_checkpoint(tmp_path / "a" / "checkpoints" / "best.pt")["epochs_done"] == best["epoch"]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["epochs_done"] == 4 and metrics["best"]["epoch"] == best["epoch"]
    assert any((tmp_path / "a" / "tb").iterdir())


def test_export_keeps_the_model_drops_the_training_state_and_cannot_be_resumed(tmp_path):
    _fit(tmp_path / "run", epochs_this_run=2)
    src = tmp_path / "run" / "checkpoints" / "last.pt"
    out = tmp_path / "model.pt"
    before, after = export_checkpoint(src, out)
    assert after < before == src.stat().st_size
    full, small = load_checkpoint(src), load_checkpoint(out)
    assert set(small) == set(full) - set(TRAINING_STATE) and small["note"] == "toy"
    for key, value in full["model"].items():
        assert torch.equal(value, small["model"][key]), key
    assert small["history"] == full["history"] and small["best"] == full["best"]
    with pytest.raises(OutputError, match="exists; give a new file name, or replace it with --overwrite"):
        export_checkpoint(src, out)
    out.write_bytes(b"old")
    export_checkpoint(src, out, overwrite=True)
    assert load_checkpoint(out)["history"] == full["history"]
    with pytest.raises(OutputError):  # never over its own input
        export_checkpoint(src, src)
    foreign = tmp_path / "foreign.pt"
    save_checkpoint(foreign, {"weights": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="foreign.pt: not a training checkpoint"):
        export_checkpoint(foreign, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    # an exported model put where a run resumes from gets one line saying what to do
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    (resumed / "checkpoints" / "last.pt").write_bytes(out.read_bytes())
    with pytest.raises(CheckpointError, match="no training state .*--init instead of --resume"):
        read_run_state(resumed, "toy")


def test_a_finished_run_resumes_to_nothing(tmp_path):
    _fit(tmp_path, epochs_this_run=None)
    again = _fit(tmp_path, resume=True)
    assert again.finished and again.epochs_done == 4 and len(again.history) == 4


@pytest.mark.parametrize("count", [0, -1])
def test_epochs_this_run_below_one_is_refused(count):
    with pytest.raises(ConfigError, match=f"--epochs-this-run {count}: must be an integer >= 1"):
        FitSettings(epochs=3, epochs_this_run=count)


def test_a_non_empty_run_folder_is_refused_unless_overwritten(tmp_path):
    run = tmp_path / "run"
    _fit(run)
    (run / "data").mkdir()
    (run / "data" / "seq.h5").write_text("kept")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty .*--resume.*--overwrite"):
        _fit(run)
    prepare_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["data", "notes.txt"]  # only the run's outputs went
    with pytest.raises(ConfigError, match="--resume and --overwrite"):
        prepare_run_dir(run, resume=True, overwrite=True)
    # a folder holding only simulated data is a fresh run folder
    fresh = tmp_path / "fresh"
    (fresh / "data").mkdir(parents=True)
    prepare_run_dir(fresh)


def test_temporary_files_of_a_killed_write_are_removed_at_the_next_start(tmp_path):
    _fit(tmp_path, epochs_this_run=1)
    leftover = tmp_path / "checkpoints" / ".last.abc123.tmp.pt"
    leftover.write_bytes(b"")
    _fit(tmp_path, resume=True, epochs_this_run=1)
    assert not leftover.exists()


def test_the_other_applications_run_is_refused_by_name(tmp_path):
    _fit(tmp_path, epochs_this_run=1, application="stereo")
    with pytest.raises(CheckpointError, match="a stereo run; resume it with `stereo-snn train --resume`"):
        read_run_state(tmp_path, "classification")


@pytest.mark.parametrize(
    "application,legacy,done",
    [
        ("stereo", {"epoch": 2, "data_size": [48, 64], "best": {"score": 1.5, "epoch": 2, "val_mae": 1.5}}, 3),
        (
            "classification",
            {"epoch": 3, "meta": {}, "best_top1": 80.0, "history": [{"epoch": 3, "test_top1": 80.0}]},
            3,
        ),
    ],
)
def test_checkpoints_from_before_the_skeleton_are_converted(tmp_path, application, legacy, done):
    common = {"model": {}, "optimizer": {}, "scheduler": {}, "scaler": {}, "rng": {}, "history": []}
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", {**common, **legacy})
    state = read_run_state(tmp_path, application)
    assert state["epochs_done"] == done and state["application"] == application and "epoch" not in state
    assert state["best"]["score"] in (1.5, 80.0) and state["best"]["metric"] in ("val_mae", "test_top1")
