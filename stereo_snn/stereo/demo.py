"""The out-of-the-box demo: simulate an unseen sequence, run the bundled model, compare.

Steps: simulate a small DSEC-layout stereo sequence (fixed seed, never used for training),
infer every ground-truth window with the bundled (or given) model into 16-bit PNGs,
evaluate it against the ground truth with OpenCV SGBM on the same windows beside it, draw a
side-by-side picture (events | prediction | ground truth | error), and measure the energy
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


def _demo_sequence(out: Path, seed: int, size: tuple[int, int], duration_ms: float, progress: bool) -> Path:
    """Simulate the demo sequence once (reused when the demo runs again with the same settings)."""
    from ..events.simulator import make_demo_sequences

    folder = out / f"sequence_seed{seed}_{size[0]}x{size[1]}_{int(duration_ms)}ms"
    existing = folder / "demo_000"
    if (existing / "disparity" / "timestamps.txt").is_file():
        return existing
    return make_demo_sequences(folder, 1, seed=seed, size=size, duration_ms=duration_ms, progress=progress)[0]


def run_demo(out_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             size: tuple[int, int] | None = None, duration_ms: float = 1000.0, seed: int = DEMO_SEED,
             device: str | None = None, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns metrics (SNN and SGBM) and energy per frame.

    size: (height, width) of the simulated sequence; default: the size the model was trained on.
    """
    from ..viz import disparity_figure, events_image
    from .data import DSECSource
    from .energy import energy_table, measure_energy
    from .evaluate import evaluate_sources, results_table
    from .infer import Predictor, infer_source, skip_summary
    from .network import load_model

    out = ensure_dir(out_dir)
    loaded = load_model(checkpoint, device)
    model, cfg = loaded.model, loaded.config
    if size is None:
        size = tuple(loaded.info.get("data_size") or (120, 160))
    log(f"demo: simulating a {size[0]}x{size[1]}, {duration_ms:.0f} ms stereo sequence (seed {seed})")
    seq_path = _demo_sequence(out, seed, (int(size[0]), int(size[1])), duration_ms, progress)
    source = DSECSource(seq_path)
    predictor = Predictor(model, cfg, device)
    report = infer_source(predictor, source, out / "disparity", progress=progress, log=log)
    log(f"demo: wrote {len(report.written)} disparity PNGs under {out / 'disparity' / source.name}, "
        f"{skip_summary(report.skipped)}")
    result = evaluate_sources(predictor, [source], baseline="sgbm", out_json=out / "metrics.json",
                              progress=progress, log=log)
    if not result["per_image"]:
        raise DatasetError(f"{seq_path}: no window with events and ground truth to show")
    # the picture: the window in the middle of the evaluated ones
    row = result["per_image"][len(result["per_image"]) // 2]
    entry = next(e for e in source.entries() if e.index == row["index"])
    left, right = predictor.window(source, entry)
    pred = predictor.predict_events(left, right, source.height, source.width)
    gt = source.disparity(entry)
    picture = disparity_figure(pred, gt, events_image(left, source.height, source.width), out / "demo.png",
                               cfg.max_disparity, title=f"{source.name} entry {entry.index} (t = {entry.t_us / 1e6:.2f} s)")
    energy = measure_energy(predictor, left, right, source.height, source.width)
    write_json(out / "energy.json", {k: v for k, v in energy.items() if k != "tables"})
    log("")
    log(f"metrics on {len(result['per_image'])} unseen simulated windows (per image, averaged):")
    log(results_table(result))
    log("")
    log("energy per frame (measured forward pass):")
    log(energy_table(energy))
    log("")
    log(f"picture: {picture}")
    return {"metrics": result["methods"], "energy": {k: v for k, v in energy.items() if k != "tables"},
            "picture": str(picture), "sequence": str(seq_path), "written": len(report.written)}
