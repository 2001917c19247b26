"""Retraining a searched genotype: the classification task on the shared run skeleton.

The epoch loop, checkpoints (``RUN/checkpoints/last.pt`` and ``best.pt``, written atomically
after every epoch), exact resume and TensorBoard are :func:`stereo_snn.fit.fit`'s; this module
supplies the classifier, its data, the cross-entropy loss (with the auxiliary head) and the
test-split evaluation. The data order and augmentation are functions of ``(seed, epoch)``, so a
resumed run is bit-identical to an uninterrupted one on CPU. DGS (the engine's
:class:`~stereo_snn.search.SurrogateSearch`) runs on the two halves of the training split; the
test split is never used for any decision but "best".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from stereo_snn import distributed
from stereo_snn.errors import CheckpointError, ConfigError
from stereo_snn.fit import FitResult, FitSettings, FitTask, StepLoss, fit, prepare_run_dir, read_run_state
from stereo_snn.runtime import RunDir, resolve_device, seed_everything
from stereo_snn.search import SurrogateSearch, genotype_from_dict, genotype_to_dict, load_genotype, save_genotype

from .config import ClassifyConfig, TrainConfig
from .data import DataBundle, build_data
from .evaluate import evaluate
from .network import SpikingClassifier, build_from_genotype, model_meta

__all__ = [
    "Limited",
    "resume_config",
    "make_optimizer",
    "make_scheduler",
    "classification_loss",
    "training_step_loss",
    "setup",
    "train_run",
    "TrainResult",
]


class Limited:
    """Re-iterable view of ``source.batches(epoch)`` limited to ``max_batches`` (None: all).

    Each new iteration advances the epoch, so an engine loop that re-iterates it per
    epoch sees a fresh shuffle every time. With ``shard`` under torchrun each global batch
    is cut to this process's rows (:func:`stereo_snn.distributed.shard_rows`).
    """

    def __init__(
        self,
        source: Any,
        max_batches: int | None = None,
        epoch: int = 0,
        device: torch.device | None = None,
        shard: bool = False,
    ):
        self.source, self.max_batches, self.epoch, self.device = source, max_batches, epoch, device
        self.shard = shard

    def __len__(self) -> int:
        n = len(self.source)
        return n if self.max_batches is None else min(n, self.max_batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        for i, (x, y) in enumerate(self.source.batches(epoch)):
            if self.max_batches is not None and i >= self.max_batches:
                break
            if self.shard:
                x, y = distributed.shard_rows(x, y)
            if self.device is not None:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield x, y


def make_optimizer(params: Iterable[nn.Parameter], train: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or Adam from the ``train`` settings."""
    if train.optimizer.lower() == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)
    return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch learning-rate schedule: cosine from ``lr`` to ``lr_min`` over ``epochs``, or constant."""
    if train.schedule.lower() == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.epochs, eta_min=train.lr_min)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def classification_loss(label_smoothing: float = 0.0) -> Callable[[nn.Module, Any], torch.Tensor]:
    """``loss_fn(model, (x, y))``: cross-entropy of the logits (the engine's loss interface)."""

    def loss_fn(model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return loss_fn


def training_step_loss(train: TrainConfig, auxiliary_weight: float) -> Callable[[nn.Module, Any], StepLoss]:
    """``step_loss(model, (x, y))`` of retraining: cross-entropy (``train.label_smoothing``) of the
    logits plus ``auxiliary_weight`` x that of the auxiliary head when the model has one; weighted
    by the batch size, with the correct predictions as ``train_top1`` (percent once averaged)."""

    def step_loss(m: nn.Module, batch: Any) -> StepLoss:
        x, y = batch
        logits, aux = m(x, with_aux=True)
        loss = F.cross_entropy(logits, y, label_smoothing=train.label_smoothing)
        if aux is not None and auxiliary_weight > 0:
            loss = loss + auxiliary_weight * F.cross_entropy(aux, y, label_smoothing=train.label_smoothing)
        return StepLoss(loss, len(y), {"train_top1": 100.0 * int((logits.argmax(1) == y).sum())})

    return step_loss


@dataclass
class TrainResult:
    """Outcome of :func:`train_run`: run folder, final metrics, and whether all epochs are done."""

    run: RunDir
    metrics: dict[str, Any]
    finished: bool


def setup(cfg: ClassifyConfig) -> torch.device:
    """Seed everything, cap CPU threads if asked, join the torchrun process group when there is
    one, and return this process's device."""
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return distributed.setup(resolve_device(cfg.device))[1]


def train_run(
    cfg: ClassifyConfig,
    out: str | Path,
    resume: bool = False,
    epochs_this_run: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Retrain the genotype ``cfg.model.genotype`` on ``cfg.data``; write a run folder at ``out``.

    ``resume`` continues from ``out/checkpoints/last.pt`` (settings from the current ``cfg``;
    the checkpoint's genotype). ``epochs_this_run`` stops after that many epochs (resume
    later). A new run refuses a non-empty ``out`` unless ``overwrite``. Returns the run, its
    metrics and whether every epoch is done.
    """
    tc, mc = cfg.train, cfg.model
    settings = FitSettings(
        epochs=tc.epochs,
        epochs_this_run=epochs_this_run,
        grad_clip=tc.grad_clip,
        amp=tc.amp,
        best_metric=("test_top1",),
        best_mode="max",
        progress=progress,
    )
    device = setup(cfg)
    log = distributed.main_only(log)
    distributed.check_batch(tc.batch_size, "train.batch_size")
    run = prepare_run_dir(out, resume=resume, overwrite=overwrite)
    ckpt_path = run.root / "checkpoints" / "last.pt"
    state: dict[str, Any] | None = None
    if resume:
        state = read_run_state(out, "classification")
        for key in ("genotype", "meta"):
            if key not in state:
                raise CheckpointError(f"{ckpt_path}: not a classification training checkpoint (no {key!r})")
        genotype = genotype_from_dict(state["genotype"], source=f"{ckpt_path}:genotype")
    else:
        if not mc.genotype:
            raise ConfigError(
                "model.genotype: a genotype JSON is required (run `stereo-snn classify search` first, or pass --genotype)"
            )
        genotype = load_genotype(mc.genotype)
    data: DataBundle = build_data(cfg.data, tc.batch_size, cfg.seed, eval_batch_size=tc.eval_batch_size)
    model: SpikingClassifier = build_from_genotype(
        genotype, mc, data.num_classes, data.in_channels, str(mc.genotype or ckpt_path)
    ).to(device)
    optimizer = make_optimizer(model.parameters(), tc)
    scheduler = make_scheduler(optimizer, tc)
    dgs = SurrogateSearch(model, cfg.dgs) if tc.dgs else None
    if state is None and distributed.is_main():
        run.write_config(
            {
                **cfg.to_dict(),
                "num_classes": data.num_classes,
                "class_names": data.class_names,
                "world_size": distributed.world_size(),
                "global_batch_size": tc.batch_size,
            }
        )
        save_genotype(run.root / "genotype.json", genotype)
    dgs_loss = classification_loss(tc.label_smoothing)

    def test(m: nn.Module) -> dict[str, float]:
        result = evaluate(m, data.test, device, progress=False)
        return {"test_loss": result["loss"], "test_top1": result["top1"], "test_top5": result["top5"]}

    def describe(row: dict[str, Any]) -> str:
        return (
            f"epoch {row['epoch']}/{tc.epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f} "
            f"top-1 {row['train_top1']:.2f}%  test top-1 {row['test_top1']:.2f}% top-5 {row['test_top5']:.2f}%"
        )

    def summary(history: list[dict[str, Any]], best: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "test_top1": history[-1]["test_top1"] if history else None,
            "test_top5": history[-1]["test_top5"] if history else None,
            "best_test_top1": best["score"] if best else None,
            "num_classes": data.num_classes,
        }

    task = FitTask(
        application="classification",
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        train_batches=lambda epoch: Limited(data.train, tc.max_batches, epoch, device, shard=True),
        step_loss=training_step_loss(tc, mc.auxiliary_weight),
        evaluate=test,
        dgs=dgs,
        dgs_loss=dgs_loss,
        dgs_batches=lambda epoch: (
            Limited(data.search_train, None, epoch, device),
            Limited(data.search_val, None, epoch, device),
        ),
        extra_state={"genotype": genotype_to_dict(genotype), "meta": model_meta(model), "config": cfg.to_dict()},
        describe=describe,
        summary=summary,
    )
    result: FitResult = fit(task, run, settings, device, resume_state=state, log=log)
    return TrainResult(run, result.metrics, result.finished)


def resume_config(out: str | Path, overrides: Iterable[str] = ()) -> ClassifyConfig:
    """Settings of the run in ``out`` (from its last checkpoint), changed by ``overrides``."""
    path = Path(out) / "checkpoints" / "last.pt"
    state = read_run_state(out, "classification")
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path}: holds no run settings ('config')")
    return ClassifyConfig.from_dict(state["config"], f"{path}: config").with_overrides(overrides)
