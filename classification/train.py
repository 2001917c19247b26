"""Retraining a searched genotype: the classification training loop.

Checkpoints are written atomically after every epoch (``RUN/checkpoints/last.pt`` and
``best.pt``) with everything needed for an exact resume: model, optimiser, schedule, AMP
scaler, DGS history, RNG states and the metrics so far. The data order and augmentation
are functions of ``(seed, epoch)``, so a resumed run is bit-identical to an uninterrupted one
on CPU. DGS (the engine's :class:`~stereo_snn.search.SurrogateSearch`) runs on the two
halves of the training split; the test split is never used for any decision but "best".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stereo_snn.errors import CheckpointError, ConfigError
from stereo_snn.runtime import (RunDir, load_checkpoint, resolve_device, rng_state, save_checkpoint, seed_everything,
                                set_rng_state)
from stereo_snn.search import DGSConfig, SurrogateSearch, genotype_from_dict, genotype_to_dict, load_genotype, save_genotype
from stereo_snn.spiking import reset

from .data import DataBundle, build_data
from .evaluate import evaluate
from .network import SpikingClassifier, build_from_genotype, model_meta

__all__ = ["Limited", "resume_config", "make_optimizer", "make_scheduler", "dgs_config", "classification_loss", "setup", "train_run", "TrainResult"]


class Limited:
    """Re-iterable view of ``source.batches(epoch)`` limited to ``max_batches`` (None: all).

    Each new iteration advances the epoch, so an engine loop that re-iterates it per
    epoch sees a fresh shuffle every time.
    """

    def __init__(self, source: Any, max_batches: int | None = None, epoch: int = 0, device: torch.device | None = None):
        self.source, self.max_batches, self.epoch, self.device = source, max_batches, epoch, device

    def __len__(self) -> int:
        n = len(self.source)
        return n if self.max_batches is None else min(n, self.max_batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        for i, (x, y) in enumerate(self.source.batches(epoch)):
            if self.max_batches is not None and i >= self.max_batches:
                break
            if self.device is not None:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield x, y


def make_optimizer(params: Iterable[nn.Parameter], train: Mapping[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or Adam from the ``train`` settings."""
    kind = str(train["optimizer"]).lower()
    if kind == "sgd":
        return torch.optim.SGD(params, lr=float(train["lr"]), momentum=float(train["momentum"]), weight_decay=float(train["weight_decay"]))
    if kind == "adam":
        return torch.optim.Adam(params, lr=float(train["lr"]), weight_decay=float(train["weight_decay"]))
    raise ConfigError(f"train.optimizer {train['optimizer']!r}: expected sgd or adam")


def make_scheduler(optimizer: torch.optim.Optimizer, train: Mapping[str, Any]) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch learning-rate schedule: cosine from ``lr`` to ``lr_min`` over ``epochs``, or constant."""
    kind = str(train["schedule"]).lower()
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(train["epochs"]), eta_min=float(train["lr_min"]))
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ConfigError(f"train.schedule {train['schedule']!r}: expected cosine or constant")


def dgs_config(cfg: Mapping[str, Any]) -> DGSConfig:
    """The engine's :class:`DGSConfig` from the ``dgs`` settings."""
    d = cfg["dgs"]
    return DGSConfig(every=int(d["every"]), start=int(d["start"]), max_batches=int(d["max_batches"]),
                     deltas=tuple(float(v) for v in d["deltas"]), lr=float(d["lr"]), lookahead_lr=float(d["lookahead_lr"]),
                     b_min=float(d["b_min"]), b_max=float(d["b_max"]))


def classification_loss(label_smoothing: float = 0.0) -> Callable[[nn.Module, Any], torch.Tensor]:
    """``loss_fn(model, (x, y))``: cross-entropy of the logits (the engine's loss interface)."""

    def loss_fn(model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return loss_fn


@dataclass
class TrainResult:
    """Outcome of :func:`train_run`: run folder, final metrics, and whether all epochs are done."""

    run: RunDir
    metrics: dict[str, Any]
    finished: bool


def setup(cfg: Mapping[str, Any]) -> torch.device:
    """Seed everything, cap CPU threads if asked, and return the run's device."""
    seed_everything(int(cfg["seed"]))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    return resolve_device(cfg.get("device"))


def train_run(
    cfg: Mapping[str, Any],
    out: str | Path,
    resume: bool = False,
    epochs_this_run: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Retrain the genotype ``cfg['model']['genotype']`` on ``cfg['data']``; write a run folder at ``out``.

    ``resume`` continues from ``out/checkpoints/last.pt`` (settings from the current ``cfg``;
    the checkpoint's genotype). ``epochs_this_run`` stops after that many epochs (resume
    later). Returns the run, its metrics and whether every epoch is done.
    """
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    tcfg, mcfg = cfg["train"], cfg["model"]
    device = setup(cfg)
    ckpt_path = Path(out) / "checkpoints" / "last.pt"
    state: dict[str, Any] | None = None
    if resume:
        state = load_checkpoint(ckpt_path)
        for key in ("model", "optimizer", "scheduler", "genotype", "epoch", "meta"):
            if key not in state:
                raise CheckpointError(f"{ckpt_path}: not a classification training checkpoint (no {key!r})")
        genotype = genotype_from_dict(state["genotype"], source=f"{ckpt_path}:genotype")
    else:
        if not mcfg.get("genotype"):
            raise ConfigError("model.genotype: a genotype JSON is required (run `stereo-snn classify search` first, or pass --genotype)")
        genotype = load_genotype(mcfg["genotype"])
    data: DataBundle = build_data(cfg["data"], int(tcfg["batch_size"]), int(cfg["seed"]), eval_batch_size=int(tcfg["eval_batch_size"]))
    model: SpikingClassifier = build_from_genotype(genotype, mcfg, data.num_classes, data.in_channels, str(mcfg.get("genotype") or ckpt_path)).to(device)
    run = RunDir(out)  # created only once the data and the network are known to be good
    optimizer = make_optimizer(model.parameters(), tcfg)
    scheduler = make_scheduler(optimizer, tcfg)
    use_amp = bool(tcfg["amp"]) and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    dgs = SurrogateSearch(model, dgs_config(cfg)) if tcfg["dgs"] else None
    history: list[dict[str, Any]] = []
    start, best = 0, -1.0
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if "scaler" in state and use_amp:
                scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{ckpt_path}: does not fit the model/optimiser of these settings ({exc})") from exc
        if dgs is not None and state.get("dgs_history"):
            dgs.history = {k: list(v) for k, v in state["dgs_history"].items()}
        set_rng_state(state["rng"])
        start, best, history = int(state["epoch"]), float(state["best_top1"]), list(state["history"])
        log(f"resumed {ckpt_path} at epoch {start}")
    else:
        run.write_config({**cfg, "num_classes": data.num_classes, "class_names": data.class_names})
        save_genotype(run.root / "genotype.json", genotype)
    epochs = int(tcfg["epochs"])
    stop = epochs if epochs_this_run is None else min(epochs, start + int(epochs_this_run))
    loss_fn = classification_loss(float(tcfg["label_smoothing"]))
    aux_weight = float(mcfg.get("auxiliary_weight") or 0.0)
    clip = tcfg.get("grad_clip")
    max_batches = tcfg.get("max_batches")
    writer = SummaryWriter(str(run.tensorboard))
    t0 = time.time()
    try:
        for epoch in range(start, stop):
            model.train()
            if dgs is not None:
                dgs.maybe_run(epoch, Limited(data.search_train, None, epoch, device), Limited(data.search_val, None, epoch, device), loss_fn)
            lr = optimizer.param_groups[0]["lr"]
            seen, correct, total_loss = 0, 0, 0.0
            batches = Limited(data.train, max_batches, epoch, device)
            bar = tqdm(batches, total=len(batches), desc=f"train {epoch + 1}/{epochs}", disable=not progress, leave=False)
            for x, y in bar:
                reset(model)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    logits, aux = model(x, with_aux=True)
                    loss = F.cross_entropy(logits, y, label_smoothing=float(tcfg["label_smoothing"]))
                    if aux is not None and aux_weight > 0:
                        loss = loss + aux_weight * F.cross_entropy(aux, y, label_smoothing=float(tcfg["label_smoothing"]))
                if not torch.isfinite(loss.detach()):
                    raise ConfigError(f"train: the loss became {float(loss.detach())} at epoch {epoch + 1} (lower train.lr?)")
                scaler.scale(loss).backward()
                if clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), float(clip))
                scaler.step(optimizer)
                scaler.update()
                seen += len(y)
                correct += int((logits.argmax(1) == y).sum())
                total_loss += float(loss.detach()) * len(y)
                bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
            scheduler.step()
            test = evaluate(model, data.test, device, progress=False)
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": total_loss / max(seen, 1), "train_top1": 100.0 * correct / max(seen, 1),
                   "test_loss": test["loss"], "test_top1": test["top1"], "test_top5": test["top5"]}
            if dgs is not None:
                row["surrogate_b"] = {k: v[-1] for k, v in dgs.history.items()}
            history.append(row)
            for key in ("lr", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5"):
                writer.add_scalar(key.replace("_", "/", 1), row[key], epoch + 1)
            improved = test["top1"] > best
            best = max(best, test["top1"])
            ckpt = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "genotype": genotype_to_dict(genotype),
                "meta": model_meta(model),
                "config": dict(cfg),
                "epoch": epoch + 1,
                "best_top1": best,
                "history": history,
                "dgs_history": dgs.history if dgs is not None else {},
                "rng": rng_state(),
            }
            save_checkpoint(ckpt_path, ckpt)
            if improved:
                save_checkpoint(run.checkpoints / "best.pt", ckpt)
            log(f"epoch {epoch + 1}/{epochs}  lr {lr:.4g}  train loss {row['train_loss']:.4f} top-1 {row['train_top1']:.2f}%  "
                f"test top-1 {test['top1']:.2f}% top-5 {test['top5']:.2f}%")
    finally:
        writer.close()
    done = (history[-1]["epoch"] if history else start) >= epochs
    metrics = {
        "epochs_done": history[-1]["epoch"] if history else start,
        "epochs": epochs,
        "test_top1": history[-1]["test_top1"] if history else None,
        "test_top5": history[-1]["test_top5"] if history else None,
        "best_test_top1": best if history else None,
        "num_classes": data.num_classes,
        "wall_s_this_run": round(time.time() - t0, 1),
        "history": history,
    }
    run.write_metrics(metrics)
    return TrainResult(run, metrics, done)



def resume_config(out: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Settings of the run in ``out`` (from its last checkpoint), changed by ``overrides``."""
    from .config import apply_overrides

    path = Path(out) / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path}: holds no run settings ('config')")
    return apply_overrides(state["config"], overrides)
