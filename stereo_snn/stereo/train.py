"""Retraining a genotype: the training loop, validation, atomic checkpoints, exact resume.

A run folder (``stereo_snn.runtime.RunDir``) holds ``config.json``, ``genotype.json``,
``checkpoints/{last,best}.pt`` (written atomically every epoch with the model, optimiser,
scheduler, AMP scaler, epoch, all RNG states, config and genotype), ``metrics.json``
(per-epoch history and the best validation metrics), ``figures/`` and ``tb/``
(TensorBoard scalars and prediction images).

Resume is exact on CPU: data order and crops are pure functions of (seed, epoch), and every
RNG state is restored, so N epochs straight equal N/2 epochs plus a resumed N/2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import write_json
from ..errors import CheckpointError
from ..runtime import RunDir, load_checkpoint, resolve_device, rng_state, save_checkpoint, seed_everything, set_rng_state
from .config import StereoConfig
from .data import StereoSource, StereoWindowDataset, pad_collate
from .losses import disparity_loss

__all__ = ["TrainResult", "train_genotype", "evaluate_model", "make_loader", "rng_state", "set_rng_state"]


@dataclass
class TrainResult:
    """What a training run produced: the run folder, the last epoch and the metric history."""

    run_dir: Path
    epochs: int
    history: list[dict[str, Any]]
    best: dict[str, Any] | None


def make_loader(dataset: StereoWindowDataset, batch_size: int, shuffle: bool, seed: int, epoch: int) -> DataLoader:
    """A single-process loader whose order is a pure function of (seed, epoch)."""
    dataset.set_epoch(epoch)
    gen = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      collate_fn=pad_collate, num_workers=0)


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, dataset: StereoWindowDataset, device: torch.device,
                   batch_size: int = 1, kind: str = "dsec", focal_baseline: float | None = None,
                   progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Mean metrics (per image, averaged) of ``model`` on ``dataset`` and the per-image rows."""
    from .metrics import MetricAccumulator

    acc = MetricAccumulator(kind, focal_baseline=focal_baseline)
    model.eval()
    rows: list[dict[str, Any]] = []
    loader = make_loader(dataset, batch_size, shuffle=False, seed=0, epoch=0)
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        out = model(batch["left"].to(device), batch["right"].to(device))
        pred = out["disparity"].float().cpu()
        gt = torch.where(batch["valid"], batch["disparity"], torch.zeros_like(batch["disparity"]))
        for i, (h, w) in enumerate(batch["sizes"]):
            res = acc.update(pred[i, :h, :w], gt[i, :h, :w])[0]
            rows.append({"name": batch["name"][i], "index": batch["index"][i], **(res or {"skipped": True})})
    return acc.compute(), rows


def _tb_writer(run: RunDir):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run.tensorboard))


def _log_images(writer: Any, model: torch.nn.Module, dataset: StereoWindowDataset, device: torch.device,
                epoch: int, max_disparity: int) -> None:
    from ..viz import colorize

    model.eval()
    with torch.no_grad():
        batch = pad_collate([dataset[0]])
        pred = model(batch["left"].to(device), batch["right"].to(device))["disparity"][0].float().cpu().numpy()
    gt = batch["disparity"][0].numpy()
    for tag, img in (("prediction", pred), ("ground_truth", gt)):
        rgb = colorize(img, 0, max_disparity, invalid_mask=(img <= 0) if tag == "ground_truth" else None)[..., ::-1]
        writer.add_image(f"disparity/{tag}", np.ascontiguousarray(rgb), epoch, dataformats="HWC")


def train_genotype(cfg: StereoConfig, genotype: Any, train_sources: Sequence[StereoSource],
                   val_sources: Sequence[StereoSource], out_dir: str | Path, seed: int = 0,
                   device: str | None = None, resume: bool = False, progress: bool = True,
                   model_factory: Callable[[StereoConfig, Any], torch.nn.Module] | None = None,
                   until_epoch: int | None = None, log: Callable[[str], None] = print) -> TrainResult:
    """Train the fixed network of ``genotype`` and keep the best checkpoint by validation MAE.

    cfg.train sets epochs, batch size, Adam lr (cosine schedule to lr/100), crops, vertical
    flips, loss (smooth L1 / sub-pixel CE), DGS (the engine's controller, at epochs that are
    multiples of ``dgs_every``, training batches against validation batches) and AMP (used only on CUDA).
    With ``resume`` the run continues from ``out_dir/checkpoints/last.pt``; ``until_epoch``
    stops after that many epochs (of ``train.epochs``) so a run can be split into sessions.
    """
    from .network import build_network, make_dgs

    dev = resolve_device(device)
    tc = cfg.train
    run = RunDir(out_dir)
    last_path = run.checkpoints / "last.pt"
    factory = model_factory or build_network
    seed_everything(seed)
    model = factory(cfg, genotype).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tc.epochs, eta_min=tc.lr / 100)
    use_amp = bool(tc.amp) and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    dgs = make_dgs(model, cfg) if tc.dgs_every > 0 else None
    start_epoch, history, best = 0, [], None
    if resume:
        if not last_path.is_file():
            raise CheckpointError(f"{last_path}: nothing to resume (no last checkpoint in {run.root})")
        state = load_checkpoint(last_path, map_location=dev)
        if state.get("config") != cfg.to_dict():
            raise CheckpointError(f"{last_path}: the run's config differs from the given one; resume with the same settings")
        from .network import load_state_checked

        load_state_checked(model, state["model"], str(last_path))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if dgs is not None and "dgs_history" in state:
            dgs.history = {k: list(v) for k, v in state["dgs_history"].items()}
        start_epoch = int(state["epoch"]) + 1
        history = list(state.get("history", []))
        best = state.get("best")
        set_rng_state(state["rng"])
        log(f"resumed from {last_path} at epoch {start_epoch}")
    else:
        run.write_config({"config": cfg.to_dict(), "seed": seed, "device": str(dev)})
        from ..search import save_genotype

        save_genotype(run.root / "genotype.json", genotype)
    if start_epoch >= tc.epochs:
        log(f"{run.root}: already trained for {tc.epochs} epochs")
        return TrainResult(run.root, tc.epochs, history, best)

    train_ds = StereoWindowDataset(train_sources, cfg, crop=tc.crop, vflip=tc.vflip, seed=seed, cache=True)
    val_ds = StereoWindowDataset(val_sources, cfg, seed=seed, cache=True) if val_sources else None

    def loss_fn(m: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return disparity_loss(m(batch["left"].to(dev), batch["right"].to(dev)), batch, tc.loss, tc.subpixel_b, tc.coarse_weight)

    writer = _tb_writer(run)
    try:
        stop = tc.epochs if until_epoch is None else min(tc.epochs, int(until_epoch))
        for epoch in range(start_epoch, stop):
            if dgs is not None:
                dgs.maybe_run(epoch, make_loader(train_ds, tc.batch_size, True, seed + 1, epoch),
                              make_loader(val_ds or train_ds, tc.batch_size, True, seed + 2, epoch), loss_fn)
            model.train()
            loader = make_loader(train_ds, tc.batch_size, shuffle=True, seed=seed, epoch=epoch)
            losses = []
            bar = tqdm(loader, desc=f"train {epoch + 1}/{tc.epochs}", disable=not progress, leave=False)
            for batch in bar:
                left, right = batch["left"].to(dev), batch["right"].to(dev)
                opt.zero_grad(set_to_none=True)
                with torch.autocast(device_type=dev.type, enabled=use_amp):
                    out = model(left, right)
                    loss = disparity_loss(out, batch, tc.loss, tc.subpixel_b, tc.coarse_weight)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                scaler.step(opt)
                scaler.update()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
            sched.step()
            row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                                   "lr": float(opt.param_groups[0]["lr"])}
            if val_ds is not None:
                metrics, _ = evaluate_model(model, val_ds, dev)
                row.update({f"val_{k}": v for k, v in metrics.items()})
            if dgs is not None:
                row["surrogate_b"] = dgs.current_b()
            history.append(row)
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    writer.add_scalar(k.replace("_", "/", 1), v, epoch + 1)
            if tc.image_every and (epoch + 1) % tc.image_every == 0:
                _log_images(writer, model, val_ds or train_ds, dev, epoch + 1, cfg.max_disparity)
            score = row.get("val_mae")
            score = row["train_loss"] if score is None else score
            state = {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch, "rng": rng_state(), "config": cfg.to_dict(),
                "genotype": _genotype_dict(genotype), "history": history, "seed": seed,
                "data_size": [max(s.height for s in train_sources), max(s.width for s in train_sources)],
            }
            if dgs is not None:
                state["dgs_history"] = dgs.history
            if best is None or score < best["score"]:
                best = {"score": float(score), "epoch": epoch + 1, **row}
                state["best"] = best
                save_checkpoint(run.checkpoints / "best.pt", state)
            state["best"] = best
            save_checkpoint(last_path, state)
            write_json(run.root / "metrics.json", {"history": history, "best": best})
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    finally:
        writer.close()
    return TrainResult(run.root, len(history), history, best)


def _genotype_dict(genotype: Any) -> dict[str, Any]:
    from ..search import genotype_to_dict

    return genotype_to_dict(genotype)
