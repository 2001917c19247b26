"""Architecture search for image classification on the engine's bilevel ``Searcher``.

Weights train on one part of the training split, architecture parameters (cell alphas,
layer betas, neuron-type and spiking/ANN logits) on the rest; the energy term and DGS are
the engine's. The result is a genotype JSON (component ``backbone``) in the run folder.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from stereo_snn import distributed
from stereo_snn.atomic import write_json, write_text
from stereo_snn.fit import prepare_run_dir, write_history_scalars
from stereo_snn.runtime import RunDir
from stereo_snn.search import (
    REPORT_FILE,
    BilevelConfig,
    Genotype,
    MemoryConfig,
    Searcher,
    SurrogateSearch,
    save_genotype,
)

from .config import ClassifyConfig
from .data import build_data
from .network import COMPONENT, build_supernet
from .train import Limited, classification_loss, setup

__all__ = ["search_config", "search_run", "SearchResult"]


def search_config(cfg: ClassifyConfig) -> BilevelConfig:
    """The engine's :class:`BilevelConfig` from the ``search`` settings."""
    s = cfg.search
    return BilevelConfig(
        epochs=s.epochs,
        warmup_epochs=s.warmup_epochs,
        lr=s.lr,
        lr_min=s.lr_min,
        momentum=s.momentum,
        weight_decay=s.weight_decay,
        grad_clip=s.grad_clip,
        arch_lr=s.arch_lr,
        arch_weight_decay=s.arch_weight_decay,
        energy_weight=s.energy_weight,
        energy_target_mj=s.energy_target_mj,
        energy_dual_lr=s.energy_dual_lr,
        energy_constraint=s.energy_constraint,
        energy_fit=s.energy_fit,
        max_batches=s.max_batches,
        amp=s.amp,
    )


@dataclasses.dataclass
class SearchResult:
    """Outcome of :func:`search_run`: the run folder, the genotype and its file."""

    run: RunDir
    genotype: Genotype
    genotype_path: Path
    history: list[dict[str, Any]]


def search_run(
    cfg: ClassifyConfig, out: str | Path, overwrite: bool = False, log: Callable[[str], None] = print
) -> SearchResult:
    """Search a classifier's backbone on ``cfg.data``; write ``out/genotype.json``.

    Also writes the resolved settings (``config.json``), the per-epoch search history
    (``metrics.json``), the architecture summary (``arch.txt``), how far each architecture
    decision moved and whether it is beyond noise (``search_report.json``) and TensorBoard scalars.
    A non-empty ``out`` is refused unless ``overwrite``.
    """
    s = cfg.search
    device = setup(cfg)
    main, log = distributed.is_main(), distributed.main_only(log)
    distributed.check_batch(s.batch_size, "search.batch_size")
    data = build_data(cfg.data, s.batch_size, cfg.seed, search_fraction=s.train_fraction)
    model = build_supernet(cfg.model, data.num_classes, data.in_channels, s.energy_term, MemoryConfig.of(s)).to(device)
    run = prepare_run_dir(out, overwrite=overwrite)
    if main:
        run.write_config(
            {
                **cfg.to_dict(),
                "num_classes": data.num_classes,
                "class_names": data.class_names,
                "world_size": distributed.world_size(),
                "global_batch_size": s.batch_size,
            }
        )
    dgs = SurrogateSearch(model, cfg.dgs) if s.dgs else None
    searcher = Searcher(
        model, classification_loss(), search_config(cfg), components={COMPONENT: model.backbone}, dgs=dgs, log=log
    )
    t0 = time.time()
    genotype = searcher.run(
        Limited(data.search_train, None, 0, device, shard=True), Limited(data.search_val, None, 0, device, shard=True)
    )
    wall = time.time() - t0
    settings = {
        **genotype.settings,
        "application": "classification",
        "dataset": data.name,
        "num_classes": data.num_classes,
        "time_steps": cfg.model.time_steps,
        "search": cfg.to_dict()["search"],
        "seed": cfg.seed,
    }
    genotype = dataclasses.replace(genotype, settings=settings)
    path = run.root / "genotype.json"
    if not main:
        return SearchResult(run, genotype, path, searcher.history)
    save_genotype(run.root / "genotype.json", genotype)
    write_json(run.root / REPORT_FILE, searcher.report().to_dict())
    write_text(run.root / "arch.txt", model.backbone.arch_summary() + "\n")
    write_history_scalars(run, searcher.history, "search")
    run.write_metrics(
        {
            "wall_s": round(wall, 1),
            "epochs": s.epochs,
            "path": list(genotype.components[COMPONENT].path),
            "history": searcher.history,
            "dgs_b": dgs.current_b() if dgs is not None else {},
            "energy_multiplier_trace": searcher.multiplier_trace,
        }
    )
    return SearchResult(run, genotype, Path(path), searcher.history)
