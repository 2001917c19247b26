"""Two CPU processes (gloo) against one: a stereo training epoch, a classification training
epoch and a stereo search step give the one-process result with the same global batch, and
bad distributed settings give one clear line.

Tolerance: the processes average their gradients, which is exact (checked to 1e-6 on a network
without batch normalisation). The real networks normalise each process's share of the batch by
its own batch-norm statistics (as PyTorch's DistributedDataParallel does without SyncBatchNorm,
which has no CPU kernel), and spiking layers amplify that difference in the early layers. So
the tests ask: identical weights on both ranks; epoch losses within 5 % of the one-process run;
the update of the output layer within 20 % (relative L2) of the one-process update.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch

from stereo_snn.errors import ConfigError

TINY_CLASSIFY = [
    "model.time_steps=2",
    "model.layers=2",
    "model.channels=4",
    "model.levels=2",
    "model.neuron_kinds=[lif]",
    "threads=1",
    "train.epochs=2",
    "train.batch_size=16",
    "train.eval_batch_size=64",
    "train.max_batches=3",
    "train.dgs=false",
    "data.limit_train=48",
    "data.limit_test=32",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiet(_msg: str) -> None:
    pass


def _stereo_cfg():
    from stereo_snn.stereo.config import load_config

    return load_config("tiny").replace(
        **{
            "train.epochs": 1,
            "train.image_every": 0,
            "search.epochs": 1,
            "search.warmup_epochs": 0,
            "search.crop": [24, 36],
        }
    )


def _jobs(root: Path, sim_root: Path, genotype_file: Path, tag: str) -> dict:
    """The three runs (and the models they trained), written under ``root/<job>_<tag>``."""
    from classification import config as C
    from classification.train import train_run
    from stereo_snn.search import load_genotype
    from stereo_snn.stereo.data import open_sources
    from stereo_snn.stereo.network import build_network
    from stereo_snn.stereo.search import run_search
    from stereo_snn.stereo.train import train_genotype

    cfg, genotype = _stereo_cfg(), load_genotype(genotype_file)
    sources = open_sources(sim_root)[:1]
    built = []

    def factory(c, g):
        built.append(build_network(c, g))
        return built[-1]

    stereo = train_genotype(
        cfg,
        genotype,
        sources,
        [],
        root / f"train_{tag}",
        seed=4,
        device="cpu",
        progress=False,
        model_factory=factory,
        log=_quiet,
    )
    ccfg = C.resolve_config(
        "digits", command="train", overrides=[*TINY_CLASSIFY, f"model.genotype={root / 'classify_genotype.json'}"]
    )
    classify = train_run(ccfg, root / f"classify_{tag}", epochs_this_run=1, progress=False, log=_quiet)
    found = run_search(cfg, sources, root / f"search_{tag}", seed=1, device="cpu", max_batches=1, log=_quiet)
    return {
        "stereo_loss": stereo.history[-1]["train_loss"],
        "classify_loss": classify.metrics["history"][-1]["train_loss"],
        "genotype": json.dumps([list(c.path) for c in found.components.values()]),
        "stereo_weights": {k: v.clone() for k, v in built[0].state_dict().items()},
    }


def _averaged_gradient_error() -> float:
    """Max difference between the averaged gradient of this process's rows and the gradient of
    the whole batch (a network without batch normalisation)."""
    from stereo_snn import distributed

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    torch.nn.functional.mse_loss(net(x), y).backward()
    whole = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    xs, ys = distributed.shard_rows(x, y)
    torch.nn.functional.mse_loss(net(xs), ys).backward()
    distributed.average_gradients(net.parameters())
    return max(float((p.grad - g).abs().max()) for p, g in zip(net.parameters(), whole))


def _scores() -> dict:
    """A classifier's test scores on 32 digits in batches of 10 (the last batch has 2 rows)."""
    from classification import config as C
    from classification.data import build_data
    from classification.evaluate import evaluate
    from classification.network import build_supernet

    cfg = C.resolve_config("digits", command="train", overrides=TINY_CLASSIFY)
    data = build_data(cfg.data, 16, 0, eval_batch_size=10)
    torch.manual_seed(5)
    return evaluate(build_supernet(cfg.model, 10, 1), data.test, torch.device("cpu"))


def _worker(rank: int, world: int, port: int, root: str, sim_root: str, genotype_file: str) -> None:
    import os

    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    from stereo_snn import distributed

    out = _jobs(Path(root), Path(sim_root), Path(genotype_file), "ddp")
    out["gradient_error"] = _averaged_gradient_error()
    out["scores"] = _scores()
    try:
        distributed.check_batch(3, "train.batch_size")
        out["odd_batch"] = ""
    except ConfigError as exc:
        out["odd_batch"] = str(exc)
    torch.save(out, Path(root) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sim_root, genotype_file):
    """The jobs once with two processes (spawned, gloo) and once in this process."""
    import torch.multiprocessing as mp

    from classification import config as C
    from classification.network import build_supernet
    from stereo_snn.search import Genotype, save_genotype

    root = tmp_path_factory.mktemp("ddp")
    ccfg = C.resolve_config("digits", command="train", overrides=TINY_CLASSIFY)
    torch.manual_seed(0)
    net = build_supernet(ccfg.model, 10, 1)
    save_genotype(root / "classify_genotype.json", Genotype({"backbone": net.backbone.derive()}))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = _jobs(root, sim_root, genotype_file, "one")
        single["scores"] = _scores()
    finally:
        torch.set_num_threads(before)
    mp.spawn(_worker, args=(2, _free_port(), str(root), str(sim_root), str(genotype_file)), nprocs=2, join=True)
    ranks = [torch.load(root / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return root, single, ranks


def _relative_update_gap(after_a: dict, after_b: dict, before: dict) -> float:
    """||update_a - update_b|| / ||update_b|| over the trained weights (not the batch-norm statistics)."""
    keys = [k for k in before if before[k].is_floating_point() and "running_" not in k]
    num = sum(float((after_a[k].float() - after_b[k].float()).pow(2).sum()) for k in keys)
    den = sum(float((after_b[k].float() - before[k].float()).pow(2).sum()) for k in keys)
    return (num / den) ** 0.5


def test_two_processes_train_like_one_with_the_same_global_batch(runs, genotype_file):
    from classification import config as C
    from classification.network import build_from_genotype
    from stereo_snn.runtime import load_checkpoint, seed_everything
    from stereo_snn.search import load_genotype

    root, single, ranks = runs
    # the ranks hold the same weights (gradients averaged, rank 0's batch-norm statistics)
    for k, v in ranks[0]["stereo_weights"].items():
        assert torch.equal(v, ranks[1]["stereo_weights"][k]), k
    # stereo (Adam, whose first steps move every weight by about lr whatever the gradient's size,
    # so the weights are compared through the loss)
    assert ranks[0]["stereo_loss"] == pytest.approx(single["stereo_loss"], rel=0.05)
    # classification (SGD): the update of the weights
    ccfg = C.resolve_config("digits", command="train", overrides=TINY_CLASSIFY)
    seed_everything(ccfg.seed)
    before = build_from_genotype(load_genotype(root / "classify_genotype.json"), ccfg.model, 10, 1).state_dict()
    one = load_checkpoint(root / "classify_one" / "checkpoints" / "last.pt")["model"]
    two = load_checkpoint(root / "classify_ddp" / "checkpoints" / "last.pt")["model"]
    head = {k: v for k, v in before.items() if k.startswith("classifier.")}
    assert _relative_update_gap(two, one, head) < 0.2
    assert ranks[0]["classify_loss"] == pytest.approx(single["classify_loss"], rel=0.05)
    assert ranks[0]["classify_loss"] == ranks[1]["classify_loss"]  # metrics are reduced over the ranks
    # only rank 0 wrote the run folders; they record the world size and the global batch
    config = json.loads((root / "train_ddp" / "config.json").read_text())
    assert config["world_size"] == 2 and config["global_batch_size"] == 2
    assert json.loads((root / "classify_ddp" / "config.json").read_text())["global_batch_size"] == 16
    assert load_checkpoint(root / "train_ddp" / "checkpoints" / "last.pt")["world_size"] == 2


def test_two_processes_search_like_one(runs):
    root, single, ranks = runs
    assert ranks[0]["genotype"] == ranks[1]["genotype"]
    one, two = (
        json.loads((root / f"search_{tag}" / "metrics.json").read_text())["history"][0] for tag in ("one", "ddp")
    )
    assert two["loss"] == pytest.approx(one["loss"], rel=0.05)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=0.05)


def test_a_two_process_run_resumes_in_one_process(runs):
    from classification.train import resume_config, train_run

    root = runs[0]
    done = train_run(
        resume_config(root / "classify_ddp"), root / "classify_ddp", resume=True, progress=False, log=_quiet
    )
    assert done.finished and [r["epoch"] for r in done.metrics["history"]] == [1, 2]


def test_evaluation_is_split_over_the_processes_and_summed(runs):
    _, single, ranks = runs
    assert ranks[0]["scores"] == ranks[1]["scores"]
    assert ranks[0]["scores"]["images"] == single["scores"]["images"] == 32
    assert ranks[0]["scores"] == pytest.approx(single["scores"], rel=1e-6)


def test_averaged_gradients_are_the_whole_batch_gradient(runs):
    _, _, ranks = runs
    assert max(r["gradient_error"] for r in ranks) < 1e-6


def test_a_world_size_that_does_not_divide_the_batch_is_refused(runs):
    _, _, ranks = runs
    assert ranks[0]["odd_batch"] == ranks[1]["odd_batch"]
    assert "train.batch_size 3: the global batch must be a multiple of the 2 processes" in ranks[0]["odd_batch"]


@pytest.mark.parametrize("env", [{"RANK": "0"}, {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}])
def test_a_half_set_distributed_environment_is_one_line(monkeypatch, capsys, tmp_path, env):
    from stereo_snn import cli
    from stereo_snn.distributed import ENV_VARS

    for key in ENV_VARS:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["classify", "train", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "distributed environment half set" in err[0] and "torchrun" in err[0]


def test_simulating_under_torchrun_is_refused(monkeypatch, capsys, tmp_path):
    from stereo_snn import cli

    for key, value in {
        "RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29999",
    }.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["search", "--simulate", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rank 0: --simulate under torchrun" in err[0]


def test_more_processes_per_node_than_gpus_is_one_clear_error(monkeypatch):
    import torch

    from stereo_snn.distributed import setup
    from stereo_snn.errors import ConfigError

    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match="LOCAL_RANK 3 needs GPU 3, but 2 GPU"):
        setup(torch.device("cuda"))  # refused before any CUDA call (set_device would say "invalid device ordinal")
