"""Choosing the model for a recording: bundled models by layout and sensor size, the sensor-size
check of a user's checkpoint, and the commands' one-line errors."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from stereo_snn.cli import main
from stereo_snn.stereo.models import ModelChoiceError, bundled_models, check_sensor_size, choose_checkpoint


@dataclass
class Rec:
    name: str
    layout: str
    height: int
    width: int


@pytest.fixture()
def index(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(
        json.dumps(
            {
                "models": [
                    {"name": "dsec", "layout": "dsec", "height": 480, "width": 640, "file": "d.pt"},
                    {"name": "mvsec", "layout": "mvsec", "height": 260, "width": 346, "file": "m.pt"},
                ]
            }
        )
    )
    return path


@pytest.mark.parametrize(
    "rec,file",
    [
        (Rec("a", "dsec", 480, 640), "d.pt"),
        (Rec("b", "mvsec", 260, 346), "m.pt"),
        (Rec("c", "generic", 260, 346), "m.pt"),
        (Rec("d", "generic", 480, 640), "d.pt"),
    ],
)
def test_the_bundled_model_of_the_recordings_layout_and_size_is_chosen(index, rec, file):
    assert choose_checkpoint([rec], None, index).name == file


@pytest.mark.parametrize(
    "recs,match",
    [
        ([Rec("big", "dsec", 720, 1280)], "no bundled model for a 1280x720 dsec recording"),
        ([Rec("odd", "dsec", 260, 346)], "no bundled model for a 346x260 dsec"),
        ([Rec("a", "dsec", 480, 640), Rec("b", "mvsec", 260, 346)], "differ in sensor size"),
    ],
)
def test_recordings_no_bundled_model_fits_are_refused_in_one_line(index, recs, match):
    with pytest.raises(ModelChoiceError, match=match):
        choose_checkpoint(recs, None, index)


def test_a_given_checkpoint_wins_and_is_checked_against_its_training_size(index, tmp_path):
    assert choose_checkpoint([Rec("a", "dsec", 480, 640)], tmp_path / "x.pt", index) == tmp_path / "x.pt"
    check_sensor_size([Rec("a", "dsec", 480, 640)], [480, 640], "x.pt")
    check_sensor_size([Rec("a", "dsec", 48, 64)], None, "x.pt")  # unknown training size: no check
    with pytest.raises(ModelChoiceError, match="trained on 640x480 recordings, but a is 346x260"):
        check_sensor_size([Rec("a", "generic", 260, 346)], [480, 640], "x.pt")


def test_a_broken_index_is_one_error(tmp_path):
    bad = tmp_path / "index.json"
    bad.write_text('{"models": [{"name": 1}]}')
    with pytest.raises(Exception, match="unreadable bundled model index"):
        bundled_models(bad)


def test_the_commands_refuse_a_checkpoint_trained_for_another_sensor_size(trained_run, tmp_path, capsys):
    from stereo_snn.events.simulator import make_demo_sequences

    other = make_demo_sequences(tmp_path / "sim", 1, seed=5, size=(36, 60), duration_ms=200.0)[0]
    ckpt = str(trained_run / "checkpoints" / "best.pt")
    assert main(["evaluate", str(other), "--checkpoint", ckpt, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on 64x48 recordings" in err[0] and "--any-size" in err[0]
    assert main(["evaluate", str(other), "--checkpoint", ckpt, "--any-size", "--no-progress"]) == 0


def test_the_installed_bundled_models_match_their_index_entries():
    from stereo_snn.stereo.network import load_model

    models = {m.name: m for m in bundled_models()}
    assert set(models) == {"dsec", "mvsec"}
    ranges = {"dsec": 128, "mvsec": 64}
    for name, m in models.items():
        loaded = load_model(m.path, device="cpu")
        assert loaded.config.network.design == "pyramid"
        assert loaded.config.max_disparity == ranges[name]
        assert list(loaded.info["data_size"]) == [m.height, m.width]


@pytest.mark.parametrize("name", ["dsec", "mvsec"])
def test_each_bundled_model_is_described_by_its_preset(name):
    """The preset of a bundled model holds the settings it was trained with (network,
    representation, steps, range, window), so a user's `--config NAME` rebuilds that network."""
    from stereo_snn.stereo.config import load_config
    from stereo_snn.stereo.network import load_model

    model = next(m for m in bundled_models() if m.name == name)
    trained = load_model(model.path, device="cpu").config
    preset = load_config(name)
    for key in ("network", "representation", "time_steps", "max_disparity", "window_ms"):
        assert getattr(trained, key) == getattr(preset, key), key
    assert (trained.max_disparity, name) in ((128, "dsec"), (64, "mvsec"))
