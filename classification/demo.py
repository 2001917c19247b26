"""The digits demo: search, retrain, evaluate and measure energy on scikit-learn's bundled
handwritten digits (real data, 8x8 pixels, 10 classes), in a few minutes on a 2-core CPU."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

from stereo_snn.atomic import write_json

from .config import resolve_config
from .evaluate import energy_checkpoint, evaluate_checkpoint
from .search import search_run
from .train import train_run

__all__ = ["run_demo", "demo_summary"]


def run_demo(
    out: str | Path, overrides: Iterable[str] = (), progress: bool = True, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the digits demo into ``out`` (``search/``, ``train/``, ``demo.json``); returns the summary.

    ``overrides`` (``key=value``) apply to both the search and the training settings.
    """
    out = Path(out)
    overrides = list(overrides)
    t0, c0 = time.time(), time.process_time()
    log("== search (digits_search preset) ==")
    found = search_run(
        resolve_config("digits", command="search", overrides=overrides), out / "search", overwrite=True, log=log
    )
    t_search = time.time() - t0
    log(f"genotype: {found.genotype_path}")
    log("== retrain (digits_train preset) ==")
    cfg = resolve_config("digits", command="train", overrides=[*overrides, f"model.genotype={found.genotype_path}"])
    trained = train_run(cfg, out / "train", progress=progress, overwrite=True, log=log)
    t_train = time.time() - t0 - t_search
    ckpt = trained.run.checkpoints / "last.pt"
    ev = evaluate_checkpoint(ckpt, progress=False)
    energy = energy_checkpoint(ckpt)
    per = energy.per_image()
    summary = {
        "test_top1": ev["top1"],
        "test_top5": ev["top5"],
        "test_images": ev["images"],
        "time_steps": ev["time_steps"],
        "energy_per_image_uj": {
            "snn_compute": per["snn"]["compute_mj"] * 1e3,
            "ann_twin_compute": per["ann"]["compute_mj"] * 1e3,
            "snn_memory": per["snn"]["memory_mj"] * 1e3,
            "ann_twin_memory": per["ann"]["memory_mj"] * 1e3,
        },
        "ann_over_snn_compute": per["ann_over_snn_compute"],
        "path": list(found.genotype.components["backbone"].path),
        "wall_s": {"search": round(t_search, 1), "train": round(t_train, 1), "total": round(time.time() - t0, 1)},
        "cpu_s": round(time.process_time() - c0, 1),
        "genotype": str(found.genotype_path),
        "checkpoint": str(ckpt),
    }
    write_json(out / "demo.json", summary)
    return summary


def demo_summary(summary: dict[str, Any]) -> str:
    """The demo's result as a few printable lines."""
    e = summary["energy_per_image_uj"]
    ratio = summary["ann_over_snn_compute"]
    return "\n".join(
        [
            f"digits test accuracy: top-1 {summary['test_top1']:.2f}%  top-5 {summary['test_top5']:.2f}%  ({summary['test_images']} test images, T={summary['time_steps']})",
            f"energy per image (compute, MAC+AC): SNN {e['snn_compute']:.3f} uJ   ANN twin {e['ann_twin_compute']:.3f} uJ"
            + (f"   (ANN/SNN {ratio:.2f}x)" if ratio else ""),
            f"memory-access term per image (reported beside it): SNN {e['snn_memory']:.3f} uJ   ANN twin {e['ann_twin_memory']:.3f} uJ",
            f"layer path {summary['path']}; wall time: search {summary['wall_s']['search']} s, train {summary['wall_s']['train']} s, "
            f"total {summary['wall_s']['total']} s (process CPU time {summary['cpu_s']} s)",
        ]
    )
