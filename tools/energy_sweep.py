#!/usr/bin/env python3
"""Energy-target sweep on the bundled digits: search at each target, retrain briefly, measure.

For every target (mJ per image; ``none`` = no energy term) it runs the ``digits`` search
preset with ``search.energy_target_mj`` set, retrains the derived genotype with the
``digits`` training preset, and measures the trained network: compute energy per image
(the engine's ``energy_report`` on test images) and test top-1. Prints a Markdown table and
writes ``OUT/sweep.json``. Extra ``key=value`` settings apply to the search and the training
(e.g. ``search.epochs=4 train.epochs=3``).

    python tools/energy_sweep.py OUT --targets none 2e-3 1e-3 5e-4 --set search.epochs=4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from classification.config import resolve_config
from classification.evaluate import energy_checkpoint, evaluate_checkpoint
from classification.search import search_run
from classification.train import train_run
from stereo_snn.atomic import write_json


def sweep(out: Path, targets: list[float | None], overrides: list[str], images: int = 64) -> list[dict]:
    """One row per target: the target, the search's last expected energy and multiplier, the
    measured energy per image (mJ) and test top-1 of the retrained network."""
    rows = []
    for target in targets:
        name = "free" if target is None else f"target_{target:g}"
        extra = [] if target is None else [f"search.energy_target_mj={target}"]
        t0 = time.time()
        found = search_run(
            resolve_config("digits", command="search", overrides=[*overrides, *extra]),
            out / name / "search",
            overwrite=True,
            log=lambda line: None,
        )
        cfg = resolve_config("digits", command="train", overrides=[*overrides, f"model.genotype={found.genotype_path}"])
        trained = train_run(cfg, out / name / "train", progress=False, overwrite=True, log=lambda line: None)
        ckpt = trained.run.checkpoints / "last.pt"
        per = energy_checkpoint(ckpt, images=images).per_image()
        last = found.history[-1]
        cells = found.genotype.components["backbone"].cells
        rows.append(
            {
                "target_mj": target,
                "expected_mj": last.get("energy_mj"),
                "multiplier": last.get("energy_multiplier"),
                "measured_mj": per["snn"]["compute_mj"],
                "test_top1": evaluate_checkpoint(ckpt, progress=False)["top1"],
                "spiking_cells": sum(c.spiking for c in cells),
                "conv_edges": sum(op != "skip_connect" for c in cells for node in c.edges for _, op in node),
                "wall_s": round(time.time() - t0, 1),
            }
        )
        print(rows[-1], flush=True)
    write_json(out / "sweep.json", rows)
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| target mJ/image | expected mJ | multiplier | measured mJ/image | top-1 % | spiking cells | conv edges |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = "none" if r["target_mj"] is None else f"{r['target_mj']:.2e}"
        lam = "-" if r["multiplier"] is None else f"{r['multiplier']:.2f}"
        lines.append(
            f"| {target} | {r['expected_mj']:.2e} | {lam} | {r['measured_mj']:.2e} | {r['test_top1']:.1f} "
            f"| {r['spiking_cells']} | {r['conv_edges']} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="output folder (one run folder per target, sweep.json)")
    p.add_argument("--targets", nargs="+", required=True, help="mJ per image, or 'none' for no energy term")
    p.add_argument("--images", type=int, default=64, help="test images the energy is measured on")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="settings for the search and the training",
    )
    args = p.parse_args(argv)
    targets = [None if t == "none" else float(t) for t in args.targets]
    print(table(sweep(args.out, targets, args.overrides, args.images)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
