"""The stereo commands end to end, in-process (stereo_snn.cli.main), and their bad-input errors."""

from __future__ import annotations

import json

import pytest

from stereo_snn.cli import main
from stereo_snn.events import validate_submission


def test_train_command_with_dgs_and_resume(sim_root, genotype_file, tmp_path, capsys):
    seq = sorted(sim_root.iterdir())
    out = tmp_path / "run"
    args = [
        "train",
        "--genotype",
        str(genotype_file),
        "--data",
        str(seq[0]),
        "--out",
        str(out),
        "--set",
        "train.epochs=1",
        "--set",
        "train.image_every=0",
        "--set",
        "train.dgs_every=1",
        "--set",
        "train.dgs_start=0",
        "--set",
        "train.dgs_batches=1",
        "--no-progress",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == [1]
    # DGS ran once, at epoch 0: its history holds the initial b and one round per surrogate
    from stereo_snn.runtime import load_checkpoint

    dgs = load_checkpoint(out / "checkpoints" / "last.pt")["dgs_history"]
    assert dgs and all(len(v) == 2 for v in dgs.values())
    assert metrics["history"][0]["surrogate_b"] == {k: v[-1] for k, v in dgs.items()}
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    printed = capsys.readouterr().out
    assert "resumed from" in printed and "already trained for 1 epochs" in printed


def test_evaluate_infer_energy_commands(trained_run, sim_root, tmp_path, capsys):
    ckpt = str(trained_run / "checkpoints" / "best.pt")
    seq = sorted(sim_root.iterdir())[2]
    assert (
        main(
            [
                "evaluate",
                str(seq),
                "--checkpoint",
                ckpt,
                "--baseline",
                "sgbm",
                "--json",
                str(tmp_path / "m.json"),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    header = printed.splitlines()[0].split("  ")
    assert [c.strip() for c in header if c.strip()] == [
        "method",
        "MAE [px]",
        "1PE [%]",
        "2PE [%]",
        "RMSE [px]",
        "near MAE",
        "edge MAE",
        "occl. MAE",
        "images",
        "skipped",
    ]
    assert "SGBM" in printed and "near: gt > 1.5 x the median" in printed
    assert "skipped 1 (window before the first event)" in printed and "outside the recording" not in printed
    evaluated = json.loads((tmp_path / "m.json").read_text())
    assert set(evaluated["methods"]) == {"snn", "sgbm"}
    assert [s["reason"] for s in evaluated["skipped"]] == ["window before the first event"]
    assert main(["evaluate", str(seq), "--checkpoint", ckpt, "--near-px", "-2", "--no-progress"]) == 2
    assert "--near-px" in capsys.readouterr().err

    out = tmp_path / "pred"
    assert (
        main(
            [
                "infer",
                str(seq),
                "--checkpoint",
                ckpt,
                "--out",
                str(out),
                "--zip",
                str(tmp_path / "s.zip"),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "skipped 1 (window before the first event)" in printed and "entry 0" not in printed
    report = json.loads((out / f"{seq.name}_report.json").read_text())
    indices = sorted(int(p.split("/")[-1][:6]) for p in report["written"])
    # the first GT map has no events before it: in the report with its reason
    assert indices and [(s["index"], s["reason"]) for s in report["skipped"]] == [(0, "window before the first event")]
    assert validate_submission(tmp_path / "s.zip", {seq.name: indices}, shape=(48, 64)) == []

    assert main(["energy", "--checkpoint", ckpt, "--data", str(seq), "--json", str(tmp_path / "e.json")]) == 0
    energy = json.loads((tmp_path / "e.json").read_text())
    assert energy["ann"]["compute_mj"] > energy["snn"]["compute_mj"] > 0
    assert "ANN twin" in capsys.readouterr().out


BAD_INPUTS = [  # (arguments with {placeholders}, words of the one-line error)
    pytest.param(["infer", "{seq}", "--checkpoint", "{ckpt}", "--out", "{blocker}/out"], "file", id="out-under-a-file"),
    pytest.param(
        ["infer", "{tmp}/missing", "--checkpoint", "{ckpt}", "--out", "{tmp}/o"], "no such", id="missing-data"
    ),
    pytest.param(["evaluate", "{seq}", "--checkpoint", "{blocker}"], "not a readable checkpoint", id="bad-checkpoint"),
    pytest.param(["train", "--genotype", "{genotype}", "--out", "{tmp}/t"], "no data", id="train-without-data"),
    pytest.param(
        ["train", "--genotype", "{genotype}", "--data", "{seq}", "--out", "{tmp}/t", "--set", "train.loss=l3"],
        "train.loss",
        id="bad-setting",
    ),
    pytest.param(
        ["infer", "{seq}", "--checkpoint", "{ckpt}", "--out", "{tmp}/o", "--timestamps", "a,b"],
        "--timestamps",
        id="bad-timestamps",
    ),
    # a run folder that holds a run is never overwritten without --overwrite
    pytest.param(
        ["train", "--genotype", "{genotype}", "--data", "{seq}", "--out", "{run}"],
        "the run folder is not empty",
        id="train-over-a-run",
    ),
    pytest.param(
        ["search", "--simulate", "1", "--out", "{run}"], "the run folder is not empty", id="search-over-a-run"
    ),
    pytest.param(
        ["train", "--genotype", "{genotype}", "--data", "{seq}", "--out", "{tmp}/u", "--until-epoch", "1"],
        "replaced by --epochs-this-run",
        id="until-epoch",
    ),
    pytest.param(
        ["search", "--data", "{seq}", "--config", "tiny", "--out", "{tmp}/s0", "--max-batches", "0"],
        "search max_batches 0: must be an integer >= 1",
        id="max-batches-0",
    ),
    # each application refuses to resume the other's run, and says which command does
    pytest.param(
        ["classify", "train", "--resume", "--out", "{run}"],
        "a stereo run; resume it with `stereo-snn train",
        id="classify-resumes-a-stereo-run",
    ),
]


@pytest.mark.parametrize(("template", "expected"), BAD_INPUTS)
def test_bad_inputs_give_one_line_errors(template, expected, trained_run, sim_root, genotype_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    paths = {
        "ckpt": trained_run / "checkpoints" / "best.pt",
        "seq": sorted(sim_root.iterdir())[0],
        "blocker": blocker,
        "genotype": genotype_file,
        "tmp": tmp_path,
        "run": trained_run,
    }
    args = [a.format(**paths) for a in template]
    assert main(args) == 2, args
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], (args, err)
