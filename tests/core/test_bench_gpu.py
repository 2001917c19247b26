"""stereo-snn bench gpu: one line and exit 77 without CUDA; the same path end to end on the CPU at a
tiny size (JSON written); the device comparison passes identical runs and flags a changed weight."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from stereo_snn import cli
from stereo_snn.bench.gpu import EXIT_NO_CUDA, compare_models, main, relative_error, stereo_batch
from stereo_snn.errors import ConfigError

TINY = [
    "--device",
    "cpu",
    "--height",
    "24",
    "--width",
    "48",
    "--check-height",
    "12",
    "--check-width",
    "24",
    "--steps",
    "1",
    "--warmup",
    "0",
    "--image-size",
    "8",
    "--check-image-size",
    "4",
    "--classify-search-batch",
    "2",
    "--classify-train-batch",
    "2",
    *("--classify-set", "model.layers=2", "--classify-set", "model.auxiliary_layer=1"),
    *("--classify-set", "model.time_steps=2", "--classify-set", "model.channels=4"),
]


def test_without_cuda_it_says_so_in_one_line_and_exits_77(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["bench", "gpu", "--json", str(tmp_path / "gpu.json")]) == EXIT_NO_CUDA == 77
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "CUDA is not available" in err and "--device cpu" in err
    assert not (tmp_path / "gpu.json").exists()


def test_on_the_cpu_every_check_and_part_runs_and_the_json_is_written(tmp_path, capsys) -> None:
    out = tmp_path / "gpu.json"
    assert main([*TINY, "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["ok"] and r["device"] == "cpu" and r["gpu"] is None
    names = [c["name"] for c in r["checks"]]
    assert names == ["stereo search supernet", "stereo network", "cifar10 search supernet", "cifar10 network"]
    assert all(c["ok"] and c["output_error"] == 0.0 and c["grad_error"] == 0.0 for c in r["checks"])
    parts = {p["part"]: p for p in r["parts"]}
    assert list(parts) == ["stereo search", "stereo train", "stereo inference", "cifar10 search", "cifar10 train"]
    for p in parts.values():
        assert p["ok"] and p["steps"] == 1 and p["rate"] > 0 and p["peak_rss_mib"] > 0
    assert parts["stereo search"]["shape"] == [24, 48] and parts["stereo train"]["batch"] == 2
    assert parts["stereo inference"]["autocast_finite"] and parts["stereo inference"]["autocast"]["dtype"] == "bfloat16"
    assert parts["cifar10 train"]["dgs_round_one_batch_s"] > 0
    text = capsys.readouterr().out
    assert "stereo search supernet: cpu against cpu in float32" in text and "all checks passed" in text
    assert "cifar10 search: batch 2 at 8x8" in text


@pytest.fixture(scope="module")
def stereo_case():
    from stereo_snn.stereo.network import load_model
    from stereo_snn.stereo.train import training_loss

    loaded = load_model(None, device="cpu")
    batch = stereo_batch(loaded.config, 1, 12, 24, seed=0)
    return loaded.model, batch, lambda device: training_loss(loaded.config, device)


def test_identical_runs_agree_exactly(stereo_case) -> None:
    model, batch, make_loss = stereo_case
    c = compare_models("same", copy.deepcopy(model), copy.deepcopy(model), batch, make_loss, "cpu", "cpu")
    assert c.ok and c.output_error == 0.0 and c.grad_error == 0.0


def test_a_changed_weight_is_flagged(stereo_case) -> None:
    model, batch, make_loss = stereo_case
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.feature.stem.conv.weight.mul_(1.5)
    c = compare_models("changed", changed, copy.deepcopy(model), batch, make_loss, "cpu", "cpu")
    assert not c.ok and c.grad_error > c.grad_tolerance
    assert c.to_dict()["ok"] is False


def test_relative_error_edge_cases() -> None:
    zero = torch.zeros(3)
    assert relative_error(zero, zero) == 0.0
    assert relative_error(torch.ones(3), zero) == math.inf
    assert relative_error(torch.tensor([float("nan")]), torch.ones(1)) == math.inf
    assert relative_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0])) == pytest.approx(1 / math.sqrt(2))


def test_impossible_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="--steps"):
        main(["--device", "cpu", "--steps", "0"])
    with pytest.raises(ConfigError, match="--grad-tolerance"):
        main(["--device", "cpu", "--grad-tolerance", "0"])
    with pytest.raises(ConfigError, match="'nonsense': not a valid torch device"):
        main(["--device", "nonsense"])


def test_a_failing_part_is_recorded_with_its_error_and_the_others_go_on() -> None:
    from stereo_snn.bench.gpu import _part

    def out_of_memory(*_args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")

    row = _part("stereo search", out_of_memory, None, None, torch.device("cpu"), 1.0)
    assert row["ok"] is False and row["error"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert "Traceback" in row["traceback"] and row["peak_rss_mib"] > 0
