"""Bad input through the stereo commands (issue 13): one line on stderr, exit code 2, and
nothing the user had is replaced; no silently wrong result with exit code 0."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from stereo_snn.cli import main


def _one_line(capsys, expected: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


@pytest.fixture(scope="module")
def ckpt(trained_run) -> str:
    return str(trained_run / "checkpoints" / "best.pt")


@pytest.fixture
def seq(sim_root):
    return sorted(sim_root.iterdir())[0]


def test_infer_zip_on_an_input_file_is_refused_and_the_file_kept(ckpt, seq, tmp_path, capsys):
    events = seq / "events" / "left" / "events.h5"
    before = events.read_bytes()
    assert main(["infer", str(seq), "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--zip", str(events)]) == 2
    _one_line(capsys, "--zip")
    assert events.read_bytes() == before


@pytest.mark.parametrize("flag", ["--zip", "--out"])
def test_infer_outputs_on_the_checkpoint_are_refused(ckpt, seq, tmp_path, capsys, flag):
    out = ["--out", str(tmp_path / "o")] if flag == "--zip" else []
    assert main(["infer", str(seq), "--checkpoint", ckpt, *out, flag, ckpt]) == 2
    _one_line(capsys, flag)


def test_json_and_zip_on_an_existing_folder_are_refused(ckpt, seq, tmp_path, capsys):
    folder = tmp_path / "exists"
    folder.mkdir()
    assert main(["evaluate", str(seq), "--checkpoint", ckpt, "--json", str(folder)]) == 2
    _one_line(capsys, "is an existing folder")
    assert main(["infer", str(seq), "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--zip", str(folder)]) == 2
    _one_line(capsys, "is an existing folder")
    assert folder.is_dir() and not any(folder.iterdir())


def test_evaluate_exits_non_zero_after_evaluating_no_window(ckpt, seq, tmp_path, capsys):
    """Only the first ground-truth map (no events before it) left: nothing to evaluate."""
    copy = shutil.copytree(seq, tmp_path / seq.name)
    pngs = sorted((copy / "disparity" / "event").glob("*.png"))
    for p in pngs[1:]:
        p.unlink()
    ts = (copy / "disparity" / "timestamps.txt").read_text().split()
    (copy / "disparity" / "timestamps.txt").write_text(ts[0] + "\n")
    assert main(["evaluate", str(copy), "--checkpoint", ckpt, "--no-progress"]) == 1
    assert "evaluated 0 window(s)" in capsys.readouterr().out


def test_checkpoint_with_nan_weights_is_refused_naming_the_tensor(trained_run, seq, tmp_path, capsys):
    state = torch.load(trained_run / "checkpoints" / "best.pt", weights_only=True)
    model = state["model"]
    name = next(k for k, v in model.items() if v.is_floating_point() and v.numel() > 1)
    model[name] = model[name].clone()
    model[name].view(-1)[0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    assert main(["infer", str(seq), "--checkpoint", str(tmp_path / "nan.pt"), "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, f"nan.pt: tensor model.{name} holds NaN or inf")
    assert not (tmp_path / "o" / seq.name).exists() or not any((tmp_path / "o" / seq.name).glob("*.png"))


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "0"])
def test_visualize_window_must_be_finite_and_positive(seq, tmp_path, capsys, value):
    assert main(["visualize", str(seq), "--out", str(tmp_path / "v"), "--window-ms", value]) == 2
    _one_line(capsys, "--window-ms")


def test_visualize_names_a_wrong_size_prediction_png(seq, tmp_path, capsys):
    pred = tmp_path / "pred" / seq.name
    pred.mkdir(parents=True)
    cv2.imwrite(str(pred / "000002.png"), np.zeros((10, 12), np.uint16))
    code = main(
        [
            "visualize",
            str(seq),
            "--out",
            str(tmp_path / "v"),
            "--prediction",
            str(tmp_path / "pred"),
            "--what",
            "disparity",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0  # the other windows are drawn
    assert "000002.png: prediction is 10x12 (HxW), the recording is 48x64" in out


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("train.epochs=abc", "train.epochs must be an integer"),
        ("train.lr=[1,2]", "train.lr must be a finite number"),
        ("train.lr=fast", "train.lr must be a finite number"),
    ],
)
def test_train_set_values_of_the_wrong_type(genotype_file, seq, tmp_path, capsys, setting, expected):
    assert (
        main(
            [
                "train",
                "--genotype",
                str(genotype_file),
                "--data",
                str(seq),
                "--out",
                str(tmp_path / "t"),
                "--set",
                setting,
            ]
        )
        == 2
    )
    _one_line(capsys, expected)


def test_negative_thread_count_is_one_line(genotype_file, seq, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--genotype",
                str(genotype_file),
                "--data",
                str(seq),
                "--out",
                str(tmp_path / "t"),
                "--threads",
                "-2",
            ]
        )
        == 2
    )
    _one_line(capsys, "--threads -2")


def test_data_path_that_is_a_file_is_one_line(genotype_file, seq, tmp_path, capsys):
    events = seq / "events" / "left" / "events.h5"
    assert main(["train", "--genotype", str(genotype_file), "--data", str(events), "--out", str(tmp_path / "t")]) == 2
    _one_line(capsys, "events.h5: is a file")


def test_genotype_needing_tens_of_gigabytes_is_refused_before_allocating(genotype_file, tmp_path):
    from stereo_snn.errors import GenotypeError
    from stereo_snn.search import load_genotype

    data = json.loads(genotype_file.read_text())
    comp = data["components"]["matching"]
    comp["config"]["channels"] = 20_000
    for cell in comp["cells"]:
        cell.pop("tau", None)
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GenotypeError, match=r"huge.json: components.matching: .* GiB for the weights alone"):
        load_genotype(path)


@pytest.mark.parametrize("command", ["infer", "visualize"])
@pytest.mark.parametrize("size", [["--height", "0"], ["--width", "-3"], ["--height", "100000"], ["--width", "abc"]])
def test_generic_frame_size_must_be_plausible_pixels(seq, tmp_path, capsys, command, size):
    events = seq / "events"
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                command,
                str(events / "left" / "events.h5"),
                "--right",
                str(events / "right" / "events.h5"),
                "--out",
                str(tmp_path / "o"),
                *size,
            ]
        )
    assert exit_.value.code == 2
    assert size[0] in capsys.readouterr().err.strip().splitlines()[-1]


def test_visualize_colour_scale_must_be_finite(seq, tmp_path, capsys):
    assert main(["visualize", str(seq), "--out", str(tmp_path / "v"), "--max-disparity", "inf"]) == 2
    _one_line(capsys, "--max-disparity")
