"""Shared plumbing: atomic writes, checkpoints, devices, the CLI error path."""

from __future__ import annotations

import json
import os

import pytest
import torch

from stereo_snn import atomic, cli, runtime
from stereo_snn.errors import CheckpointError, ConfigError, OutputError


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


def test_atomic_path_keeps_suffix_for_format_sniffing(tmp_path):
    with atomic.atomic_path(tmp_path / "pic.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "pic.png").read_bytes() == b"x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_unwritable_folder_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OutputError, match="ro"):
        atomic.write_text(ro / "x.txt", "x")


def test_ensure_dir_under_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="file"):
        atomic.ensure_dir(f / "sub")


def test_checkpoint_round_trip_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = runtime.save_checkpoint(tmp_path / "ck.pt", {"model": model.state_dict(), "epoch": 3, "cfg": {"lr": 0.1}})
    state = runtime.load_checkpoint(path)
    assert state["epoch"] == 3 and state["cfg"] == {"lr": 0.1}
    assert torch.equal(state["model"]["weight"], model.weight.detach())


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt"):
        runtime.load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        runtime.load_checkpoint(bad)


def test_checkpoint_refuses_arbitrary_objects(tmp_path):
    import argparse  # any class outside the weights-only allowlist needs code execution to load

    path = tmp_path / "evil.pt"
    torch.save({"obj": argparse.Namespace(a=1)}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        runtime.load_checkpoint(path)


def test_resolve_device():
    assert runtime.resolve_device("cpu").type == "cpu"
    assert runtime.resolve_device(None).type in {"cpu", "cuda"}
    with pytest.raises(ConfigError, match="nonsense"):
        runtime.resolve_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            runtime.resolve_device("cuda")


def test_seed_everything_reproduces():
    runtime.seed_everything(7)
    a = torch.rand(3)
    runtime.seed_everything(7)
    assert torch.equal(a, torch.rand(3))


def test_run_dir_layout(tmp_path):
    run = runtime.RunDir(tmp_path / "run")
    run.write_config({"x": 1})
    run.write_metrics({"mae": 0.5})
    assert run.read_json("metrics.json") == {"mae": 0.5}
    assert run.read_json("config.json")["x"] == 1
    assert run.checkpoints.is_dir() and run.figures.is_dir()
    with pytest.raises(ConfigError, match="nope.json"):
        run.read_json("nope.json")


def test_cli_help_and_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert "stereo-snn" in capsys.readouterr().out
    assert cli.main([]) == 2  # no command: help, non-zero


def test_events_len_is_the_event_count_and_replace_works():
    import numpy as np

    from stereo_snn.events.recording import Events, empty_events

    ev = Events(
        np.arange(3, dtype=np.uint16), np.zeros(3, np.uint16), np.arange(3, dtype=np.int64), np.ones(3, np.int8)
    )
    assert len(ev) == 3 and ev.count == 3
    moved = ev._replace(x=ev.x + 1)
    assert isinstance(moved, Events) and moved.x.tolist() == [1, 2, 3] and len(moved) == 3
    assert len(empty_events()) == 0
    with pytest.raises(TypeError):
        Events._make([ev.x, ev.y])


def test_atomic_outputs_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        out = atomic.write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o644


def test_settings_files_and_overrides(tmp_path):
    from stereo_snn.settings import load_mapping, parse_overrides

    (tmp_path / "a.yaml").write_text("train: {epochs: 3}\n")
    (tmp_path / "b.json").write_text('{"x": [1, 2]}')
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "list.yaml").write_text("- 1\n")
    assert load_mapping(tmp_path / "a.yaml") == {"train": {"epochs": 3}}
    assert load_mapping(tmp_path / "b.json") == {"x": [1, 2]}
    assert load_mapping(tmp_path / "empty.yaml") == {}
    with pytest.raises(ConfigError, match="list.yaml: the top level must be a mapping"):
        load_mapping(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        load_mapping(tmp_path / "missing.yaml")
    assert parse_overrides(["a.b=2", "c=[1, 2]", "d="]) == [("a.b", 2), ("c", [1, 2]), ("d", None)]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["novalue"])
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_overrides(["a=[1, 2"])


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    import random

    import numpy as np

    runtime.seed_everything(3)
    runtime.save_checkpoint(tmp_path / "rng.pt", {"rng": runtime.rng_state()})
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    runtime.seed_everything(99)
    runtime.set_rng_state(runtime.load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_rng_state_of_a_machine_with_more_gpus_restores_the_gpus_this_one_has(monkeypatch):
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.extend(states))
    state = {**runtime.rng_state(), "cuda": [torch.zeros(16, dtype=torch.uint8)] * 8}  # saved on 8 GPUs
    runtime.set_rng_state(state)
    assert len(restored) == 1  # setting devices 1..7 would fail with "invalid device ordinal"


def test_a_cuda_device_this_machine_lacks_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runtime.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"'cuda:2': this machine has 2 CUDA device\(s\), cuda:0 to cuda:1"):
        runtime.resolve_device("cuda:2")
