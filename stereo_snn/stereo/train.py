"""Retraining a genotype: the training loop, validation, atomic checkpoints, exact resume.

The epoch loop, checkpoints, resume and TensorBoard are the shared run skeleton's
(:mod:`stereo_snn.fit`); this module supplies the stereo data, loss, validation and pictures.
A run folder holds ``config.json``, ``genotype.json``, ``checkpoints/{last,best}.pt`` (the
skeleton's fields plus config, genotype, seed and data size), ``metrics.json`` (per-epoch
history and the best validation metrics), ``figures/`` and ``tb/`` (scalars and prediction images).

Resume is exact on CPU: data order and crops are pure functions of (seed, epoch), and every
RNG state is restored, so N epochs straight equal N/2 epochs plus a resumed N/2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import distributed
from ..errors import CheckpointError
from ..fit import FitSettings, FitTask, StepLoss, fit, freeze_parts, prepare_run_dir, read_run_state
from ..runtime import resolve_device, rng_state, seed_everything, set_rng_state
from ..search import genotype_to_dict, save_genotype
from ..settings import setting_differences
from ..viz import colorize
from .config import StereoConfig
from .data import StereoSource, StereoWindowDataset, pad_collate, split_loaders
from .losses import disparity_loss
from .metrics import MetricAccumulator
from .network import build_network, coarse_step, forward_batch, load_state_checked, make_dgs, read_checkpoint

__all__ = [
    "TrainResult",
    "train_genotype",
    "training_loss",
    "evaluate_model",
    "make_loader",
    "rng_state",
    "set_rng_state",
]


@dataclass
class TrainResult:
    """What a training run produced: the run folder, the last epoch and the metric history."""

    run_dir: Path
    epochs: int
    history: list[dict[str, Any]]
    best: dict[str, Any] | None


def make_loader(
    dataset: StereoWindowDataset, batch_size: int, shuffle: bool, seed: int, epoch: int, shard: bool = False
) -> DataLoader:
    """A loader whose order is a pure function of (seed, epoch). With ``shard`` under torchrun
    it yields this process's share of each global batch of ``batch_size`` windows."""
    dataset.set_epoch(epoch)
    order_seed = int(seed) * 100_003 + int(epoch)
    sampler = distributed.make_sampler(dataset, shuffle, order_seed) if shard else None
    if sampler is not None:
        return DataLoader(
            dataset,
            batch_size=distributed.check_batch(batch_size, "train.batch_size"),
            sampler=sampler,
            collate_fn=pad_collate,
            num_workers=0,
        )
    gen = torch.Generator().manual_seed(order_seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, collate_fn=pad_collate, num_workers=0
    )


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    dataset: StereoWindowDataset,
    device: torch.device,
    batch_size: int = 1,
    kind: str = "dsec",
    focal_baseline: float | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Mean metrics (per image, averaged) of ``model`` on ``dataset`` and the per-image rows."""
    acc = MetricAccumulator(kind, focal_baseline=focal_baseline)
    model.eval()
    rows: list[dict[str, Any]] = []
    loader = make_loader(dataset, batch_size, shuffle=False, seed=0, epoch=0)
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        out = forward_batch(model, batch, device)
        pred = out["disparity"].float().cpu()
        gt = torch.where(batch["valid"], batch["disparity"], torch.zeros_like(batch["disparity"]))
        for i, (h, w) in enumerate(batch["sizes"]):
            res = acc.update(pred[i, :h, :w], gt[i, :h, :w])[0]
            rows.append({"name": batch["name"][i], "index": batch["index"][i], **(res or {"skipped": True})})
    return acc.compute(), rows


def _log_images(
    writer: Any,
    model: torch.nn.Module,
    dataset: StereoWindowDataset,
    device: torch.device,
    epoch: int,
    max_disparity: int,
) -> None:

    model.eval()
    with torch.no_grad():
        batch = pad_collate([dataset[0]])
        pred = forward_batch(model, batch, device)["disparity"][0].float().cpu().numpy()
    gt = batch["disparity"][0].numpy()
    for tag, img in (("prediction", pred), ("ground_truth", gt)):
        rgb = colorize(img, 0, max_disparity, invalid_mask=(img <= 0) if tag == "ground_truth" else None)[..., ::-1]
        writer.add_image(f"disparity/{tag}", np.ascontiguousarray(rgb), epoch, dataformats="HWC")


def training_loss(cfg: StereoConfig, device: torch.device) -> Callable[[torch.nn.Module, dict[str, Any]], torch.Tensor]:
    """``loss_fn(model, batch)``: the training loss of ``cfg.train`` (kind, sub-pixel scale, coarse
    weight) of the model's output on a collated batch, its inputs moved to ``device``."""
    tc = cfg.train

    def loss_fn(m: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return disparity_loss(
            forward_batch(m, batch, device),
            batch,
            tc.loss,
            tc.subpixel_b,
            tc.coarse_weight,
            fine_reach=cfg.network.fine_radius if tc.fine_loss == "reach" else None,
            max_disparity=cfg.max_disparity,
            coarse_loss=tc.coarse_loss,
            coarse_step=float(coarse_step(cfg.network.coarse_scale)),
        )

    return loss_fn


def train_genotype(
    cfg: StereoConfig,
    genotype: Any,
    train_sources: Sequence[StereoSource],
    val_sources: Sequence[StereoSource],
    out_dir: str | Path,
    seed: int = 0,
    device: str | None = None,
    resume: bool = False,
    progress: bool = True,
    model_factory: Callable[[StereoConfig, Any], torch.nn.Module] | None = None,
    epochs_this_run: int | None = None,
    overwrite: bool = False,
    init: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train the fixed network of ``genotype`` and keep the best checkpoint by validation MAE
    (by the training loss when there is no validation data), on the shared run skeleton
    (:func:`stereo_snn.fit.fit`).

    cfg.train sets epochs, batch size, Adam lr (cosine schedule to lr/100), crops, vertical
    flips, loss (smooth L1 / sub-pixel CE), DGS (the engine's controller every ``dgs_every``
    epochs once the weights have trained, on two halves of the training windows: the
    validation windows only choose ``best.pt``) and AMP (used only on CUDA).
    With ``resume`` the run continues from ``out_dir/checkpoints/last.pt``; ``epochs_this_run``
    stops after that many epochs so a run can be split into sessions. A new run refuses a
    non-empty ``out_dir`` unless ``overwrite``. ``init`` starts a new run from the weights of
    another stereo checkpoint of the same network (fine-tuning, e.g. to another sensor's data).
    """
    _, dev = distributed.setup(resolve_device(device))
    log = distributed.main_only(log)
    tc = cfg.train
    distributed.check_batch(tc.batch_size, "train.batch_size")
    settings = FitSettings(
        epochs=tc.epochs,
        epochs_this_run=epochs_this_run,
        grad_clip=tc.grad_clip,
        amp=tc.amp,
        best_metric=("val_mae", "train_loss"),
        best_mode="min",
        progress=progress,
    )
    run = prepare_run_dir(out_dir, resume=resume, overwrite=overwrite)
    factory = model_factory or build_network
    seed_everything(seed)
    model = factory(cfg, genotype).to(dev)
    opt = torch.optim.Adam(freeze_parts(model, tc.freeze), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tc.epochs, eta_min=tc.lr / 100)
    dgs = make_dgs(model, cfg) if tc.dgs_every > 0 else None
    state = None
    if resume:
        state = read_run_state(run.root, "stereo")
        last_path = run.checkpoints / "last.pt"
        saved = state.get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(f"{last_path}: holds no run settings ('config')")
        # settings added since the run began take their defaults, so an older run resumes
        saved = StereoConfig.from_dict(saved, f"{last_path}: config").to_dict()
        # the memory budget of the window cache changes no result: a resumed run may change it
        differences = setting_differences(saved, cfg.to_dict(), ignore=("cache_mb",))
        if differences:
            raise CheckpointError(
                f"{last_path}: the run's settings differ from the given ones ({'; '.join(differences)}); "
                "resume with the same settings"
            )
        load_state_checked(model, state["model"], str(last_path))  # names the keys that do not fit
    if init is not None and not resume:
        start, _ = read_checkpoint(init, ("model",), "stereo checkpoint")
        # names the keys that do not fit; parts the checkpoint lacks keep their initial values
        fresh = load_state_checked(model, start["model"], str(init), allow_missing=True)
        parts = Counter(key.split(".")[0] for key in fresh)  # by part: a new stage has hundreds of tensors
        built = ", ".join(f"{part} ({n} tensor{'s' if n > 1 else ''})" for part, n in parts.items())
        log(f"weights initialised from {init}" + (f" (not in it, left as built: {built})" if fresh else ""))
    if not resume and distributed.is_main():
        run.write_config(
            {
                "config": cfg.to_dict(),
                "seed": seed,
                "device": str(dev),
                "init": None if init is None else str(init),
                "world_size": distributed.world_size(),
                "global_batch_size": tc.batch_size,
            }
        )
        save_genotype(run.root / "genotype.json", genotype)

    k = tc.stream_windows
    train_ds = StereoWindowDataset(
        train_sources, cfg, crop=tc.crop, vflip=tc.vflip, seed=seed, cache_mb=cfg.cache_mb, history=k
    )
    val_ds = StereoWindowDataset(val_sources, cfg, seed=seed, history=k) if val_sources else None

    loss_fn = training_loss(cfg, dev)

    def evaluate(m: torch.nn.Module) -> dict[str, Any]:
        return {} if val_ds is None else {f"val_{k}": v for k, v in evaluate_model(m, val_ds, dev)[0].items()}

    def pictures(m: torch.nn.Module, epochs_done: int, writer: Any) -> None:
        if tc.image_every and epochs_done % tc.image_every == 0:
            _log_images(writer, m, val_ds or train_ds, dev, epochs_done, cfg.max_disparity)

    task = FitTask(
        application="stereo",
        model=model,
        optimizer=opt,
        scheduler=sched,
        train_batches=lambda epoch: make_loader(
            train_ds, tc.batch_size, shuffle=True, seed=seed, epoch=epoch, shard=True
        ),
        step_loss=lambda m, batch: StepLoss(loss_fn(m, batch)),
        evaluate=evaluate,
        dgs=dgs,
        dgs_loss=loss_fn,
        # two halves of the training windows (a new split per epoch); never the validation windows
        dgs_batches=lambda epoch: split_loaders(
            train_ds, tc.batch_size, seed * 1009 + epoch, "DGS (train.dgs_every)", "train.batch_size"
        ),
        extra_state={
            "config": cfg.to_dict(),
            "genotype": _genotype_dict(genotype),
            "seed": seed,
            "data_size": [max(s.height for s in train_sources), max(s.width for s in train_sources)],
        },
        on_epoch_end=pictures,
    )
    res = fit(task, run, settings, dev, resume_state=state, log=log)
    return TrainResult(run.root, res.epochs_done, res.history, res.best)


def _genotype_dict(genotype: Any) -> dict[str, Any]:
    return genotype_to_dict(genotype)
