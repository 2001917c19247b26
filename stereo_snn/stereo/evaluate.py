"""Evaluation on ground truth: DSEC metrics (MAE, 1PE, 2PE, RMSE) or MVSEC metrics (mean
depth error, one-pixel accuracy, mean disparity error), per image then averaged, with
OpenCV SGBM on event frames of the very same windows beside them (``baseline="sgbm"``),
searching each window's true disparity range (the largest valid ground truth; the network
only knows its own ``max_disparity``). Windows whose ground truth exceeds the model's range
are listed in ``beyond_range`` and the command says so in one line.
Both kinds also get the near / edge region metrics (:class:`~.metrics.Regions`: MAE and 2PE
in disparity pixels on the near pixels and near ground-truth discontinuities).

Windows that start before the recording's first event (the first DSEC ground-truth map has
none before it) and maps without a valid ground-truth pixel are skipped quietly: listed in
the result with their reason and counted, never printed one by one. Windows that fail
(no events in a camera, unreadable data) are skipped too, each with one line through ``log``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from ..atomic import write_json
from ..errors import ConfigError, StereoSNNError
from ..events.recording import Events
from ..images import dsec_valid_mask
from ..windows import NO_GROUND_TRUTH, read_windows, skip_record
from .baseline import sgbm_disparity
from .data import Entry, MVSECSource, StereoSource
from .infer import Predictor
from .metrics import DSEC_KEYS, MVSEC_KEYS, MetricAccumulator, Regions, format_table

__all__ = ["evaluate_sources", "metric_kind", "results_table", "range_warning"]


def metric_kind(sources: Sequence[StereoSource]) -> str:
    """ "mvsec" when every source is an MVSEC recording, "dsec" when none is."""
    kinds = {"mvsec" if isinstance(s, MVSECSource) else "dsec" for s in sources}
    if len(kinds) != 1:
        raise ConfigError("evaluate: mixing MVSEC and DSEC-layout sources in one evaluation is not supported")
    return kinds.pop()


def evaluate_sources(
    predictor: Predictor,
    sources: Sequence[StereoSource],
    baseline: str | None = None,
    out_json: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    sgbm_params: dict[str, Any] | None = None,
    regions: Regions | None = None,
) -> dict[str, Any]:
    """Metrics of the network (and SGBM with ``baseline="sgbm"``) on every ground-truth window.

    ``regions`` sets the near / edge / occluded region metrics (default :class:`~.metrics.Regions()`:
    near = gt > 1.5 x the image's median valid gt, edge = within 2 px of a gt jump > 1 px,
    occluded = match hidden in the right view by a surface nearer by > 1 px, or outside it).
    Returns ``{"kind", "regions", "methods": {"snn": {...}, "sgbm": {...}}, "per_sequence",
    "per_image": [...], "skipped": [{"sequence", "index", "t_us", "reason"}, ...],
    "beyond_range": [{"sequence", "index", "gt_max"}, ...], "max_disparity"}`` and writes it to
    ``out_json`` when given.
    """
    if baseline not in (None, "sgbm"):
        raise ConfigError(f"evaluate: unknown baseline {baseline!r} (only 'sgbm')")
    regions = regions if regions is not None else Regions()
    kind = metric_kind(sources)
    accs: dict[str, dict[str, MetricAccumulator]] = {}
    methods = ["snn"] + (["sgbm"] if baseline else [])
    per_image: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    beyond: list[dict[str, Any]] = []
    total: dict[str, MetricAccumulator] = {}
    for src in sources:
        fb = src.focal_baseline if kind == "mvsec" else None
        for m in methods:
            total.setdefault(m, MetricAccumulator(kind, focal_baseline=fb, regions=regions))
            accs.setdefault(src.name, {})[m] = MetricAccumulator(kind, focal_baseline=fb, regions=regions)
        start, _ = src.time_range_us()
        entries = [e for e in src.entries() if e.gt_row is not None]

        def read(entry: Entry, src: StereoSource = src) -> tuple[Events, Events, np.ndarray]:
            left, right = predictor.window(src, entry)
            return left, right, predictor.predict_window(src, entry, left, right)

        bar = tqdm(entries, desc=f"evaluate {src.name}", disable=not progress, leave=False)
        for window in read_windows(
            bar,
            read,
            skipped,
            start_us=start,
            window_us=predictor.window_us,
            whole_window=True,
            errors=(StereoSNNError, RuntimeError),
            sequence=src.name,
            log=log,
        ):
            entry, (left, right, snn) = window.entry, window.value
            preds = {"snn": snn}
            gt = src.disparity(entry)
            scene_max = _scene_max_disparity(gt)
            if scene_max > predictor.cfg.max_disparity:
                beyond.append({"sequence": src.name, "index": entry.index, "gt_max": scene_max})
            if baseline == "sgbm":
                # the baseline searches the scene's true range (the model is not told it)
                preds["sgbm"] = sgbm_disparity(
                    left,
                    right,
                    src.height,
                    src.width,
                    max(1, math.ceil(scene_max)) if scene_max > 0 else predictor.cfg.max_disparity,
                    **(sgbm_params or {}),
                )
            row: dict[str, Any] = {"sequence": src.name, "index": entry.index}
            for m, pred in preds.items():
                res = accs[src.name][m].update(pred, gt)[0]
                total[m].update(pred, gt)
                row[m] = res
            if row["snn"] is None:
                skipped.append(skip_record(entry, NO_GROUND_TRUTH, src.name))
                continue
            per_image.append(row)
    result = {
        "kind": kind,
        "regions": {**dataclasses.asdict(regions), "description": regions.describe()},
        "methods": {m: total[m].compute() for m in methods},
        "per_sequence": {name: {m: a.compute() for m, a in d.items()} for name, d in accs.items()},
        "per_image": per_image,
        "skipped": skipped,
        "beyond_range": beyond,
        "max_disparity": predictor.cfg.max_disparity,
    }
    if out_json is not None:
        write_json(Path(out_json), result)
    return result


def _scene_max_disparity(gt: np.ndarray | None) -> float:
    """Largest valid (finite, > 0) ground-truth disparity of a window in pixels; 0 without any."""
    if gt is None:
        return 0.0
    g = np.asarray(gt, dtype=np.float64)
    valid = g[dsec_valid_mask(g)]
    return float(valid.max()) if valid.size else 0.0


def range_warning(result: dict[str, Any]) -> str | None:
    """One line when some windows' ground truth exceeds the model's disparity range, else None."""
    beyond = result.get("beyond_range") or []
    if not beyond:
        return None
    top = max(b["gt_max"] for b in beyond)
    return (
        f"warning: the ground truth of {len(beyond)} window(s) exceeds the model's {result['max_disparity']} px "
        f"range (up to {top:.1f} px); those pixels count as errors: use a model with a larger max_disparity"
    )


def results_table(result: dict[str, Any]) -> str:
    """The methods of an :func:`evaluate_sources` result side by side (the metrics helper's
    table): the kind's metrics, ``near``, ``edge`` and ``occluded`` MAE (px), images and skipped
    images, then one line saying what the regions mean. The region 2PE values and pixel counts are
    in the result / JSON only."""
    names = {"snn": "SNN (ours)", "sgbm": "SGBM (OpenCV)"}
    methods = result["methods"]
    base = MVSEC_KEYS if result["kind"] == "mvsec" else DSEC_KEYS
    keys = [
        k
        for k in (*base, "near_mae", "edge_mae", "occluded_mae", "images", "skipped_images")
        if any(k in v for v in methods.values())
    ]
    table = format_table({names.get(m, m): v for m, v in methods.items()}, keys)
    regions = result.get("regions")
    return f"{table}\n{regions['description']}" if regions else table
