"""Bilevel architecture search of the stereo network (engine's Searcher), its plots and files.

The windows with ground truth are split in two halves by a seeded shuffle: the weights
train on one, the architecture parameters on the other (first-order DARTS). The run folder
gets ``genotype.json``, ``search_report.json`` (how far each architecture decision moved and
whether it is beyond noise, :mod:`stereo_snn.search.report`), ``figures/genotype.png`` (derived cells and layer paths),
``figures/search_curves.png``, ``metrics.json`` (per-epoch history) and TensorBoard scalars.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .. import distributed
from ..atomic import atomic_path, write_json
from ..fit import prepare_run_dir, write_history_scalars
from ..runtime import RunDir, resolve_device, save_checkpoint, seed_everything
from ..search import REPORT_FILE, BilevelConfig, Genotype, Searcher, save_genotype
from .config import StereoConfig
from .data import StereoSource, StereoWindowDataset, split_loaders
from .losses import disparity_loss
from .network import RUNS_PER_FRAME, build_supernet, load_state_checked, make_dgs, read_checkpoint

__all__ = ["run_search", "derive_from_supernet", "plot_genotype", "plot_curves"]


def run_search(
    cfg: StereoConfig,
    sources: Sequence[StereoSource],
    out_dir: str | Path,
    seed: int = 0,
    device: str | None = None,
    max_batches: int | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> Genotype:
    """Search the feature and matching cells/paths on ``sources``; returns the derived Genotype.

    cfg.search sets epochs, batch size, weight lr (cosine to lr_min), arch lr and weight
    decay, warm-up epochs, the energy weight and DGS rounds (``dgs_every`` epochs). A
    non-empty ``out_dir`` is refused unless ``overwrite`` (:func:`stereo_snn.fit.prepare_run_dir`).

    Example (one epoch of one batch on a tiny simulated sequence; a real search runs for hours):

    >>> import tempfile
    >>> from stereo_snn.events.simulator import make_demo_sequences
    >>> from stereo_snn.stereo.config import load_config
    >>> from stereo_snn.stereo.data import open_sources
    >>> from stereo_snn.stereo.search import run_search
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = make_demo_sequences(f"{tmp.name}/data", 1, size=(24, 36), duration_ms=200.0)
    >>> cfg = load_config("tiny").replace(**{"search.epochs": 1, "search.warmup_epochs": 0})
    >>> genotype = run_search(cfg, open_sources(f"{tmp.name}/data"), f"{tmp.name}/search", max_batches=1,
    ...                       log=lambda line: None)
    >>> sorted(genotype.components)  # written to <out_dir>/genotype.json as well
    ['feature', 'matching']
    >>> tmp.cleanup()
    """
    sc = cfg.search
    _, dev = distributed.setup(resolve_device(device))
    main, log = distributed.is_main(), distributed.main_only(log)
    distributed.check_batch(sc.batch_size, "search.batch_size")
    seed_everything(seed)
    run = prepare_run_dir(out_dir, overwrite=overwrite)
    if main:
        run.write_config(
            {
                "config": cfg.to_dict(),
                "seed": seed,
                "device": str(dev),
                "command": "search",
                "world_size": distributed.world_size(),
                "global_batch_size": sc.batch_size,
            }
        )
    dataset = StereoWindowDataset(sources, cfg, crop=sc.crop, vflip=cfg.train.vflip, seed=seed, cache_mb=cfg.cache_mb)
    train_half, val_half = split_loaders(dataset, sc.batch_size, seed)
    log(
        f"search: {len(dataset)} windows from {len(sources)} sequence(s), {len(train_half.dataset)} weight / "
        f"{len(val_half.dataset)} architecture, device {dev}"
    )
    model = build_supernet(cfg).to(dev)

    def loss_fn(m: torch.nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        return disparity_loss(m(batch["left"].to(dev), batch["right"].to(dev)), batch, "smooth_l1")

    engine_cfg = BilevelConfig(
        epochs=sc.epochs,
        warmup_epochs=sc.warmup_epochs,
        lr=sc.lr,
        lr_min=sc.lr_min,
        arch_lr=sc.arch_lr,
        arch_weight_decay=sc.arch_weight_decay,
        energy_weight=sc.energy_weight,
        energy_target_mj=sc.energy_target_mj,
        energy_dual_lr=sc.energy_dual_lr,
        energy_constraint=sc.energy_constraint,
        energy_fit=sc.energy_fit,
        max_batches=max_batches,
        amp=sc.amp,
    )
    dgs = make_dgs(model, cfg, "search") if sc.dgs_every > 0 else None
    searcher = Searcher(
        model, loss_fn, engine_cfg, components=model.components(), dgs=dgs, log=log, runs_per_sample=RUNS_PER_FRAME
    )
    genotype = searcher.run(train_half, val_half)
    genotype = dataclasses.replace(
        genotype,
        settings={**dict(genotype.settings), "stereo_config": cfg.to_dict(), "seed": seed, "windows": len(dataset)},
    )
    if not main:
        return genotype
    save_genotype(run.root / "genotype.json", genotype)
    write_json(run.root / REPORT_FILE, searcher.report().to_dict())
    # the searched supernet itself: decode it again later without searching (derive_from_supernet)
    save_checkpoint(
        run.root / "supernet.pt",
        {"model": model.state_dict(), "config": cfg.to_dict(), "seed": seed, "windows": len(dataset)},
    )
    history = [_plain_row(r) for r in searcher.history]
    run.write_metrics({"history": history, "energy_multiplier_trace": searcher.multiplier_trace})
    plot_genotype(genotype, run.figures / "genotype.png")
    plot_curves(history, run.figures / "search_curves.png", title="search")
    write_history_scalars(run, history, "search")
    log(f"search: genotype written to {run.root / 'genotype.json'}")
    return genotype


def derive_from_supernet(
    supernet: str | Path,
    out_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> Any:
    """Decode a searched supernet (``OUT/supernet.pt`` of :func:`run_search`) again, without
    searching: its config with ``overrides`` applied (decoding settings such as
    ``network.max_skip``; settings that change the supernet's parameters do not fit its
    weights and raise CheckpointError). Writes ``out_dir/genotype.json`` and
    ``out_dir/figures/genotype.png``; returns the Genotype."""
    state, cfg = read_checkpoint(supernet, ("model", "config"), "stereo supernet")
    if "alphas" not in dict(state["config"].get("network") or {}):
        cfg = cfg.replace(**{"network.alphas": "per_node"})  # saved before the setting: per-node alphas
    if overrides:
        cfg = cfg.replace(**overrides)
    model = build_supernet(cfg)
    load_state_checked(model, state["model"], str(supernet))
    genotype = Genotype(
        {name: part.derive() for name, part in model.components().items()},
        {"stereo_config": cfg.to_dict(), "seed": state.get("seed"), "derived_from": str(supernet)},
    )
    run = RunDir(out_dir)
    save_genotype(run.root / "genotype.json", genotype)
    plot_genotype(genotype, run.figures / "genotype.png")
    log(f"search: genotype decoded from {supernet} written to {run.root / 'genotype.json'}")
    return genotype


def _plain_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[str(k)] = v
    return out


def _numeric_series(history: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Every numeric quantity of the per-epoch rows (NaN where a row lacks it), in first-seen order."""
    keys: list[str] = []
    for row in history:
        keys += [
            k
            for k, v in row.items()
            if k != "epoch" and k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
    return {k: [float(r[k]) if isinstance(r.get(k), (int, float)) else float("nan") for r in history] for k in keys}


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """One panel per numeric quantity of ``history`` (per-epoch dicts) against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series = _numeric_series(history)
    n = max(1, len(series))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    for ax, (k, vals) in zip(axes.flat, series.items()):
        ax.plot(epochs, vals, marker="o")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(k)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_genotype(genotype: Any, path: str | Path) -> Path:
    """Draw each component's layer path (level per layer) and its derived cells.

    A cell is drawn as a small graph: inputs c(k-2), c(k-1) on the left, nodes to the
    right, each kept edge labelled with its op; the title gives the neuron kind, tau,
    surrogate temperature b and whether the cell is spiking or ANN.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = list(genotype.components.items())
    ncols = 1 + max(len(c.cells) for _, c in comps)
    fig, axes = plt.subplots(len(comps), ncols, figsize=(3.2 * ncols, 3.0 * len(comps)), squeeze=False)
    for row, (name, comp) in enumerate(comps):
        ax = axes[row, 0]
        levels = list(comp.path)
        ax.plot(range(1, len(levels) + 1), levels, marker="o", color="tab:blue")
        ax.set_ylim(comp.config.levels - 0.5, -0.5)
        ax.set_yticks(range(comp.config.levels))
        ax.set_yticklabels([f"1/{3 * 2**s}" for s in range(comp.config.levels)])
        ax.set_xticks(range(1, len(levels) + 1))
        ax.set_xlabel("layer")
        ax.set_ylabel("resolution")
        ax.set_title(f"{name}: layer path")
        ax.grid(alpha=0.3)
        for col in range(1, ncols):
            ax = axes[row, col]
            ax.axis("off")
            if col - 1 >= len(comp.cells):
                continue
            _draw_cell(ax, comp.cells[col - 1], f"{name} cell {col}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def _draw_cell(ax: Any, cell: Any, title: str) -> None:
    steps = len(cell.edges)
    pos = {0: (0.0, 0.75), 1: (0.0, 0.25)}
    for j in range(steps):
        pos[2 + j] = (0.45 + 0.5 * j / max(1, steps - 1) if steps > 1 else 0.7, 0.9 - 0.8 * j / max(1, steps - 1))
    names = {0: "c(k-2)", 1: "c(k-1)", **{2 + j: f"n{j}" for j in range(steps)}}
    for j, node_edges in enumerate(cell.edges):
        for src, op in node_edges:
            (x0, y0), (x1, y1) = pos[int(src)], pos[2 + j]
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops=dict(arrowstyle="->", color="tab:gray" if op == "skip_connect" else "tab:red", lw=1.2),
            )
            ax.text(
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                op,
                fontsize=6.5,
                ha="center",
                va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
            )
    for k, (x, y) in pos.items():
        ax.text(
            x,
            y,
            names[k],
            ha="center",
            va="center",
            fontsize=8,
            bbox=dict(boxstyle="round", fc="lightblue" if k < 2 else "khaki"),
        )
    tau = cell.tau if isinstance(cell.tau, (int, float)) else float(np.mean(cell.tau))
    kind = f"{cell.neuron} tau={tau:.2f} b={cell.surrogate_b:.1f}" if cell.spiking else "ANN (ReLU)"
    ax.set_title(f"{title}\n{kind}", fontsize=8)
    ax.set_xlim(-0.2, 1.2)
    ax.set_ylim(0.0, 1.0)
