"""The out-of-the-box demo: simulate an unseen sequence, run the bundled model, compare.

Steps: simulate a DSEC-layout stereo sequence (fixed seed, never used for training; with
the bundled model a realistic 640x480 scene of the simulator's ``dsec`` preset),
infer every ground-truth window with the bundled (or given) model into 16-bit PNGs,
evaluate it against the ground truth with OpenCV SGBM on the same windows beside it, draw a
side-by-side picture (events | prediction | ground truth | error, the error scale set by the
99th percentile of the error so that it does not saturate), and measure the energy
per frame of the network and of its all-ANN twin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..atomic import ensure_dir, write_json
from ..errors import DatasetError

__all__ = ["DEMO_SEED", "run_demo"]

#: seed of the demo sequence; the bundled model's training sequences use seeds 0..99
DEMO_SEED = 4242


def _demo_sequence(
    out: Path, seed: int, size: tuple[int, int], duration_ms: float, progress: bool, preset: str | None
) -> Path:
    """Simulate the demo sequence once (reused when the demo runs again with the same settings).

    ``preset``: the simulator preset of the model's layout (realistic scenes at that sensor's
    size, only the frames the ground-truth windows need); None: the small default scenes."""
    from ..events.simulator import make_demo_sequences

    tag = f"_{preset}" if preset else ""
    folder = out / f"sequence_seed{seed}_{size[0]}x{size[1]}_{int(duration_ms)}ms{tag}"
    existing = folder / "demo_000"
    if (existing / "disparity" / "timestamps.txt").is_file():
        return existing
    settings: dict[str, Any] = {}
    if preset:
        from ..events.simulator.presets import load_preset

        _, settings = load_preset(preset)
        settings = {**settings, "gt_window_ms": 50.0}
    return make_demo_sequences(
        folder,
        1,
        seed=seed,
        size=size,
        duration_ms=duration_ms,
        progress=progress,
        **{k: v for k, v in settings.items() if k not in ("height", "width", "duration_ms")},
    )[0]


def error_scale(pred: Any, gt: Any) -> float:
    """Upper end of an error colour scale that does not saturate: the 99th percentile of the
    absolute error on valid ground-truth pixels, rounded up to a whole pixel (at least 1 px)."""
    import numpy as np

    from ..images import dsec_valid_mask

    g = np.asarray(gt, dtype=np.float64)
    valid = dsec_valid_mask(g)
    if not valid.any():
        return 1.0
    err = np.abs(np.asarray(pred, dtype=np.float64)[valid] - g[valid])
    return float(max(1.0, np.ceil(np.percentile(err, 99))))


def run_demo(
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    size: tuple[int, int] | None = None,
    duration_ms: float = 600.0,
    seed: int = DEMO_SEED,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns metrics (SNN and SGBM) and energy per frame.

    checkpoint: None = the bundled DSEC model on a realistic DSEC-size (640x480) sequence made
    with the simulator's ``dsec`` preset; a user's checkpoint runs on the small default scenes.
    size: (height, width) of the simulated sequence; default: the size the model was trained on.
    """
    from ..viz import disparity_figure, events_image
    from .data import DSECSource
    from .energy import energy_table, measure_energy
    from .evaluate import evaluate_sources, results_table
    from .infer import Predictor, infer_source, skip_summary
    from .models import bundled_models
    from .network import load_model

    out = ensure_dir(out_dir)
    preset = None
    if checkpoint is None:
        bundled = next(m for m in bundled_models() if m.layout == "dsec")
        checkpoint, preset = bundled.path, "dsec"
    loaded = load_model(checkpoint, device)
    model, cfg = loaded.model, loaded.config
    if size is None:
        size = tuple(loaded.info.get("data_size") or (120, 160))
    log(
        f"demo: simulating a {size[0]}x{size[1]}, {duration_ms:.0f} ms stereo sequence (seed {seed}"
        f"{', preset ' + preset if preset else ''})"
    )
    seq_path = _demo_sequence(out, seed, (int(size[0]), int(size[1])), duration_ms, progress, preset)
    source = DSECSource(seq_path)
    predictor = Predictor(model, cfg, device)
    report = infer_source(predictor, source, out / "disparity", progress=progress, log=log)
    log(
        f"demo: wrote {len(report.written)} disparity PNGs under {out / 'disparity' / source.name}, "
        f"{skip_summary(report.skipped)}"
    )
    result = evaluate_sources(
        predictor, [source], baseline="sgbm", out_json=out / "metrics.json", progress=progress, log=log
    )
    if not result["per_image"]:
        raise DatasetError(f"{seq_path}: no window with events and ground truth to show")
    # the picture: the window in the middle of the evaluated ones
    row = result["per_image"][len(result["per_image"]) // 2]
    entry = next(e for e in source.entries() if e.index == row["index"])
    left, right = predictor.window(source, entry)
    pred = predictor.predict_window(source, entry, left, right)
    gt = source.disparity(entry)
    picture = disparity_figure(
        pred,
        gt,
        events_image(left, source.height, source.width),
        out / "demo.png",
        cfg.max_disparity,
        max_error=error_scale(pred, gt),
        title=f"{source.name} entry {entry.index} (t = {entry.t_us / 1e6:.2f} s)",
    )
    energy = measure_energy(predictor, left, right, source.height, source.width)
    write_json(out / "energy.json", energy.to_dict())
    log("")
    log(f"metrics on {len(result['per_image'])} unseen simulated windows (per image, averaged):")
    log(results_table(result))
    log("")
    log("energy per frame (measured forward pass):")
    log(energy_table(energy))
    log("")
    log(f"picture: {picture}")
    return {
        "metrics": result["methods"],
        "energy": energy.to_dict(),
        "picture": str(picture),
        "sequence": str(seq_path),
        "written": len(report.written),
    }
