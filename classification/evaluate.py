"""Evaluating trained classifiers: top-1/top-5 on the test split, and the measured energy
report (the engine's ``energy_report``) of a checkpoint and of its all-ANN twin."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from stereo_snn import distributed
from stereo_snn.errors import CheckpointError
from stereo_snn.runtime import load_checkpoint, resolve_device
from stereo_snn.search import EnergyReport, ann_twin, energy_report, genotype_from_dict
from stereo_snn.spiking import reset

from .config import ClassifyConfig
from .data import build_data
from .network import build_from_meta

__all__ = ["evaluate", "load_trained", "evaluate_checkpoint", "ClassifierEnergy", "measure_energy", "energy_checkpoint"]


@torch.no_grad()
def evaluate(
    model: nn.Module, source: Any, device: torch.device, progress: bool = False, topk: int = 5
) -> dict[str, float]:
    """Top-1 / top-k accuracy (percent) and mean cross-entropy of ``model`` on ``source``.

    ``source`` yields ``(images [B, C, H, W], labels [B])`` from ``batches()``; k is capped
    at the class count. Returns ``{"top1", "top5", "loss", "images"}`` (top-k under "top5").
    Inside a torchrun process group each process scores rows ``rank, rank + W, ...`` of every
    batch and the counts are summed over the processes.
    """
    was_training = model.training
    model.eval()
    world, rank = distributed.world_size(), distributed.rank()
    n, top1, topk_hits, loss_sum = 0, 0, 0, 0.0
    try:
        for x, y in tqdm(source.batches(0), total=len(source), desc="evaluate", disable=not progress, leave=False):
            if world > 1:
                x, y = x[rank::world], y[rank::world]
                if not len(y):
                    continue
            x, y = x.to(device), y.to(device)
            reset(model)
            logits = model(x).float()
            k = min(topk, logits.shape[1])
            best = logits.topk(k, dim=1).indices
            top1 += int((best[:, 0] == y).sum())
            topk_hits += int((best == y[:, None]).any(dim=1).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
    finally:
        model.train(was_training)
    if world > 1:
        n, top1, topk_hits, loss_sum = distributed.sum_floats([n, top1, topk_hits, loss_sum])
        n = int(n)
    if n == 0:
        return {"top1": 0.0, "top5": 0.0, "loss": float("nan"), "images": 0}
    return {"top1": 100.0 * top1 / n, "top5": 100.0 * topk_hits / n, "loss": loss_sum / n, "images": n}


def load_trained(
    path: str | Path, device: torch.device | str | None = "cpu"
) -> tuple[nn.Module, ClassifyConfig, dict[str, Any]]:
    """Rebuild a trained classifier from a training checkpoint: ``(model, settings, checkpoint)``."""
    state = load_checkpoint(path)
    for key in ("model", "genotype", "meta", "config"):
        if key not in state:
            raise CheckpointError(f"{path}: not a classification checkpoint (no {key!r})")
    genotype = genotype_from_dict(state["genotype"], source=f"{path}:genotype")
    model = build_from_meta(genotype, state["meta"], source=str(path))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the network its genotype describes ({exc})") from exc
    cfg = ClassifyConfig.from_dict(state["config"], f"{path}: config")
    return model.to(resolve_device(device)), cfg, state


def _test_data(cfg: ClassifyConfig, batch_size: int) -> Any:
    return build_data(cfg.data, batch_size, cfg.seed, eval_batch_size=batch_size)


def evaluate_checkpoint(
    path: str | Path, overrides: Iterable[str] = (), device: str | None = None, progress: bool = True
) -> dict[str, Any]:
    """Top-1/top-5 of a checkpoint on its dataset's test split.

    The data settings are the checkpoint's, changed by ``overrides`` (``data.root=...``).
    """
    dev = resolve_device(device)
    model, cfg, state = load_trained(path, dev)
    cfg = cfg.with_overrides(overrides)
    data = _test_data(cfg, cfg.train.eval_batch_size)
    result = evaluate(model, data.test, dev, progress=progress)
    return {
        "checkpoint": str(path),
        "epochs_done": int(state.get("epochs_done", state.get("epoch", 0))),
        "dataset": data.name,
        "num_classes": data.num_classes,
        "time_steps": model.time_steps,
        **result,
    }


@dataclass(frozen=True)
class ClassifierEnergy:
    """Measured energy of a classifier and of its all-ANN twin on ``images`` test images.

    ``snn`` and ``ann`` are the engine's :class:`EnergyReport` of the whole batch (a real
    forward pass through spikingjelly's op counters); :meth:`per_image` divides by the image
    count. Compute energy (MAC + AC) is the headline; the memory-access term is beside it.
    ``checkpoint``, ``dataset`` and ``time_steps`` say what was measured when known.
    """

    images: int
    snn: EnergyReport
    ann: EnergyReport
    checkpoint: str | None = None
    dataset: str | None = None
    time_steps: int | None = None

    def per_image(self) -> dict[str, Any]:
        """``{"snn": {...}, "ann": {...}, "ann_over_snn_compute"}``: mJ, MACs and ACs per image."""
        n = self.images
        snn, ann = (
            {"compute_mj": r.compute_mj / n, "memory_mj": r.memory_mj / n, "macs": r.macs / n, "acs": r.acs / n}
            for r in (self.snn, self.ann)
        )
        return {
            "snn": snn,
            "ann": ann,
            "ann_over_snn_compute": ann["compute_mj"] / snn["compute_mj"] if snn["compute_mj"] else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: what was measured (when known), ``images``, ``per_image``, both reports."""
        head = {
            k: v
            for k, v in (("checkpoint", self.checkpoint), ("dataset", self.dataset), ("time_steps", self.time_steps))
            if v is not None
        }
        return {
            **head,
            "images": self.images,
            "per_image": self.per_image(),
            "snn": self.snn.to_dict(),
            "ann": self.ann.to_dict(),
        }


@torch.no_grad()
def measure_energy(model: nn.Module, images: torch.Tensor) -> ClassifierEnergy:
    """Measured energy of ``model`` and of its all-ANN twin on ``images`` [N, C, H, W]."""
    model.eval()
    return ClassifierEnergy(
        images.shape[0], energy_report(model, images), energy_report(ann_twin(model).eval(), images)
    )


def energy_checkpoint(
    path: str | Path, images: int | None = None, overrides: Iterable[str] = (), device: str | None = None
) -> ClassifierEnergy:
    """Energy report of a checkpoint on the first ``images`` test images (default: ``energy.images``)."""
    dev = resolve_device(device)
    model, cfg, _ = load_trained(path, dev)
    cfg = cfg.with_overrides(overrides)
    n = int(images or cfg.energy.images)
    data = _test_data(cfg, n)
    x, _ = next(iter(data.test.batches(0)))
    measured = measure_energy(model, x.to(dev))
    return dataclasses.replace(measured, checkpoint=str(path), dataset=data.name, time_steps=model.time_steps)
