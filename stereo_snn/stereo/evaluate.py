"""Evaluation on ground truth: DSEC metrics (MAE, 1PE, 2PE, RMSE) or MVSEC metrics (mean
depth error, one-pixel accuracy, mean disparity error), per image then averaged, with
OpenCV SGBM on event frames of the very same windows beside them (``baseline="sgbm"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from ..atomic import write_json
from ..errors import ConfigError, StereoSNNError
from .data import MVSECSource, StereoSource
from .infer import Predictor

__all__ = ["evaluate_sources", "metric_kind", "results_table"]


def metric_kind(sources: Sequence[StereoSource]) -> str:
    """"mvsec" when every source is an MVSEC recording, "dsec" when none is."""
    kinds = {"mvsec" if isinstance(s, MVSECSource) else "dsec" for s in sources}
    if len(kinds) != 1:
        raise ConfigError("evaluate: mixing MVSEC and DSEC-layout sources in one evaluation is not supported")
    return kinds.pop()


def evaluate_sources(predictor: Predictor, sources: Sequence[StereoSource], baseline: str | None = None,
                     out_json: str | os.PathLike | None = None, progress: bool = True,
                     log: Callable[[str], None] = print, sgbm_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metrics of the network (and SGBM with ``baseline="sgbm"``) on every ground-truth window.

    Windows without events or without valid ground truth are skipped and listed. Returns
    ``{"kind", "methods": {"snn": {...}, "sgbm": {...}}, "per_image": [...], "skipped": [...]}``
    and writes it to ``out_json`` when given.
    """
    from .baseline import sgbm_disparity
    from .metrics import MetricAccumulator

    if baseline not in (None, "sgbm"):
        raise ConfigError(f"evaluate: unknown baseline {baseline!r} (only 'sgbm')")
    kind = metric_kind(sources)
    accs: dict[str, dict[str, MetricAccumulator]] = {}
    methods = ["snn"] + (["sgbm"] if baseline else [])
    per_image: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    total: dict[str, MetricAccumulator] = {}
    for src in sources:
        fb = src.focal_baseline if kind == "mvsec" else None
        for m in methods:
            total.setdefault(m, MetricAccumulator(kind, focal_baseline=fb))
            accs.setdefault(src.name, {})[m] = MetricAccumulator(kind, focal_baseline=fb)
        start, _ = src.time_range_us()
        entries = [e for e in src.entries() if e.gt_row is not None]
        for entry in tqdm(entries, desc=f"evaluate {src.name}", disable=not progress, leave=False):
            if entry.t_us - predictor.window_us < start:
                skipped.append({"sequence": src.name, "index": entry.index, "reason": "window starts before the recording"})
                continue
            try:
                left, right = predictor.window(src, entry)
                preds = {"snn": predictor.predict_events(left, right, src.height, src.width)}
            except (StereoSNNError, RuntimeError) as exc:
                skipped.append({"sequence": src.name, "index": entry.index, "reason": str(exc)})
                log(f"skipped {src.name} entry {entry.index}: {exc}")
                continue
            if baseline == "sgbm":
                preds["sgbm"] = sgbm_disparity(left, right, src.height, src.width, predictor.cfg.max_disparity,
                                               **(sgbm_params or {}))
            gt = src.disparity(entry)
            row: dict[str, Any] = {"sequence": src.name, "index": entry.index}
            for m, pred in preds.items():
                res = accs[src.name][m].update(pred, gt)[0]
                total[m].update(pred, gt)
                row[m] = res
            if row["snn"] is None:
                skipped.append({"sequence": src.name, "index": entry.index, "reason": "no valid ground-truth pixel"})
                continue
            per_image.append(row)
    result = {
        "kind": kind,
        "methods": {m: total[m].compute() for m in methods},
        "per_sequence": {name: {m: a.compute() for m, a in d.items()} for name, d in accs.items()},
        "per_image": per_image,
        "skipped": skipped,
    }
    if out_json is not None:
        write_json(Path(out_json), result)
    return result


def results_table(result: dict[str, Any]) -> str:
    """The methods of an :func:`evaluate_sources` result side by side (the metrics helper's table)."""
    from .metrics import format_table

    names = {"snn": "SNN (ours)", "sgbm": "SGBM (OpenCV)"}
    return format_table({names.get(m, m): v for m, v in result["methods"].items()})

