"""Bad input to the shared plumbing (issue 13): output paths, checkpoints, settings types,
thread counts and operating-system errors each give one project error naming the thing."""

from __future__ import annotations

import os

import pytest
import torch

from stereo_snn import atomic, cli, runtime
from stereo_snn.errors import CheckpointError, ConfigError, OutputError
from stereo_snn.settings import parse_overrides


# ---------------------------------------------------------------------------------- output paths
def test_output_file_on_an_existing_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="--json .*d: is an existing folder"):
        atomic.check_output_path(tmp_path / "d", what="--json")
    with pytest.raises(OutputError, match="d: is an existing folder"):
        atomic.write_text(tmp_path / "d", "x")
    assert (tmp_path / "d").is_dir()


def test_output_on_an_input_is_refused(tmp_path):
    seq = tmp_path / "seq"
    (seq / "events").mkdir(parents=True)
    events = seq / "events" / "events.h5"
    events.write_bytes(b"data")
    with pytest.raises(OutputError, match="--zip .*is one of the inputs"):
        atomic.check_output_path(events, [None, events], "--zip")
    with pytest.raises(OutputError, match="inside the input folder"):
        atomic.check_output_path(events, [seq], "--zip")
    with pytest.raises(OutputError, match="--out .*is an existing file"):
        atomic.check_output_path(events, [], "--out", folder=True)
    assert atomic.check_output_path(seq / "new.zip", [seq], "--zip") == seq / "new.zip"  # new files are fine
    assert atomic.check_output_path(tmp_path / "out", [seq], "--out", folder=True)
    assert events.read_bytes() == b"data"


# ---------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_checkpoint_with_non_finite_weights_names_the_tensor(tmp_path, bad):
    w = torch.ones(3, 3)
    w[1, 2] = bad
    path = runtime.save_checkpoint(
        tmp_path / "c.pt", {"model": {"conv.weight": torch.ones(2), "head.weight": w}, "epoch": 3, "best": float("inf")}
    )
    with pytest.raises(CheckpointError, match=r"c\.pt: tensor model\.head\.weight holds NaN or inf"):
        runtime.load_checkpoint(path)


def test_finite_checkpoint_with_integer_tensors_loads(tmp_path):
    path = runtime.save_checkpoint(
        tmp_path / "c.pt", {"model": {"w": torch.ones(2), "n": torch.tensor([1, 2])}, "best": float("inf")}
    )
    assert runtime.load_checkpoint(path)["best"] == float("inf")  # plain numbers are not weights


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_untrusted_checkpoint_says_so_without_pytorchs_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(CheckpointError) as err:
        runtime.load_checkpoint(path)
    message = str(err.value)
    assert "not a trusted checkpoint" in message and "weights_only" not in message and "\n" not in message


def test_checkpoint_folder_and_garbage(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        runtime.load_checkpoint(tmp_path)
    (tmp_path / "g.pt").write_text("garbage")
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        runtime.load_checkpoint(tmp_path / "g.pt")
    assert "weights_only" not in str(err.value)


def test_unreadable_checkpoint_is_a_permission_problem(tmp_path, monkeypatch):
    path = runtime.save_checkpoint(tmp_path / "c.pt", {"a": torch.ones(1)})
    monkeypatch.setattr(atomic.os, "access", lambda p, mode, *a, **k: str(p) != str(path))
    with pytest.raises(CheckpointError, match="c.pt: permission denied"):
        runtime.load_checkpoint(path)


# ---------------------------------------------------------------------------------- threads
@pytest.mark.parametrize("threads", [-1, -8, 1.5, True])
def test_bad_thread_counts_are_refused(threads):
    with pytest.raises(ConfigError, match="--threads"):
        runtime.set_threads(threads)


def test_zero_or_none_threads_keep_the_default():
    before = torch.get_num_threads()
    runtime.set_threads(0)
    runtime.set_threads(None)
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------------------- settings
def test_yaml_text_that_is_plainly_a_number_becomes_a_float():
    assert parse_overrides(["window_ms=1e9", "a=-2E-3", "b=fast", "c=1e"]) == [
        ("window_ms", 1e9),
        ("a", -2e-3),
        ("b", "fast"),
        ("c", "1e"),
    ]


@pytest.mark.parametrize(
    "item, key",
    [
        ("train.epochs=abc", "train.epochs must be an integer"),
        ("train.epochs=2.5", "train.epochs must be an integer"),
        ("train.lr=[1,2]", "train.lr must be a finite number"),
        ("train.lr=fast", "train.lr must be a finite number"),
        ("train.lr=.inf", "train.lr must be a finite number"),
        ("train.vflip=maybe", "train.vflip must be true or false"),
        ("train.crop=[1,2,3]", "train.crop must be a list of 2 values"),
        ("network.feature_channels=true", "network.feature_channels must be an integer"),
        ("window_ms=abc", "window_ms must be a finite number"),
    ],
)
def test_stereo_settings_of_the_wrong_type(item, key):
    from stereo_snn.stereo.config import load_config

    with pytest.raises(ConfigError, match=key):
        load_config("tiny", dict(parse_overrides([item])))


def test_stereo_setting_written_as_1e9_is_a_number():
    from stereo_snn.stereo.config import load_config

    assert load_config("tiny", dict(parse_overrides(["window_ms=1e3"]))).window_ms == 1000.0


@pytest.mark.parametrize(
    "item", ["train.epochs=abc", "train.lr=[1,2]", "train.lr=fast", "model.hybrid=3", "model.candidates=conv"]
)
def test_classification_settings_of_the_wrong_type(item):
    from classification.config import resolve_config

    with pytest.raises(ConfigError, match=item.split("=")[0]):
        resolve_config("digits", overrides=[item], command="train")


def test_config_preset_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    from stereo_snn.stereo.config import load_config

    (tmp_path / "tiny").mkdir()
    from stereo_snn.stereo.config import preset_path

    monkeypatch.chdir(tmp_path)
    assert load_config("tiny") == load_config(preset_path("tiny"))


# ---------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "exc, expected",
    [
        (PermissionError(13, "Permission denied", "/data/seq/events"), "/data/seq/events: permission denied"),
        (NotADirectoryError(20, "Not a directory", "/data/file"), "/data/file: not a folder"),
        (IsADirectoryError(21, "Is a directory", "/data/dir"), "/data/dir: is a folder, not a file"),
    ],
)
def test_os_errors_about_files_are_one_line_with_exit_code_2(monkeypatch, capsys, exc, expected):
    import stereo_snn.stereo.cli_visualize as vis

    def boom(args):
        raise exc

    monkeypatch.setattr(vis, "_cmd_visualize", boom)
    assert cli.main(["visualize", "x", "--out", "y"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"stereo-snn visualize: error: {expected}")


def test_classification_image_folder_problems(tmp_path, monkeypatch):
    from classification.data import _decode, scan_image_folder
    from stereo_snn.errors import DatasetError

    afile = tmp_path / "f.txt"
    afile.write_text("x")
    with pytest.raises(DatasetError, match="f.txt: is a file"):
        scan_image_folder(afile)
    monkeypatch.setattr(atomic.os, "access", lambda p, mode, *a, **k: str(p) != str(afile))
    with pytest.raises(DatasetError, match="f.txt: permission denied"):
        _decode(str(afile))


@pytest.mark.parametrize("item", ["threads=-1", "threads=2.5"])
def test_classification_negative_threads_are_refused(item):
    from classification.config import resolve_config

    with pytest.raises(ConfigError, match="threads"):
        resolve_config("digits", overrides=[item], command="train")
