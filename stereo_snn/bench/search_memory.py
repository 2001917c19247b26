"""Search memory benchmark: peak memory per sample of one search step, per memory-saving mode.

Run as ``stereo-snn bench search --memory`` (or ``python tools/bench_search.py --memory``).
For each supernet (``cifar``: the classification supernet of the ``cifar10_search`` preset,
T = 6, 8 layers; ``stereo``: the pyramid stereo supernet of the ``dsec`` preset on 256x512
crops), each mode (a ``+``-joined set of ``pcK`` partial channels, ``sample`` one sampled op
per edge, ``ckpt`` checkpointed cells, ``amp`` autocast; ``plain`` = none) and each batch size,
a fresh process builds the supernet and runs one search step (architecture step + weight
step); its peak resident memory (``ru_maxrss``) is read at the end. Two batch sizes give a
line: the slope is the memory per sample, the intercept the fixed part (interpreter, torch,
parameters, optimiser state). Larger batches are extrapolated linearly from these: on the
CPU, within a memory cap (``--max-rss-gb``: a process that grows beyond it is stopped and its
mode reported as over the cap). A stereo mode too large for the cap at 256x512 is measured on
smaller ``--crop`` s and its per-sample figure scaled by the area to ``--target-crop`` (every
stage of the pyramid network works at a fixed fraction of the crop, with a fixed number of
disparity candidates). No test asserts on these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import ConfigError

__all__ = ["DEFAULT_MODES", "mode_settings", "measure", "project", "main", "build_parser"]

DEFAULT_MODES = (
    "plain",
    "pc4",
    "sample",
    "ckpt",
    "amp",
    "pc4+sample",
    "pc4+ckpt",
    "sample+ckpt",
    "pc4+sample+ckpt",
    "pc4+sample+ckpt+amp",
)
TARGETS = {"cifar": 100, "stereo": 4}  # the published-size batches: CIFAR-10 search, DSEC-scale stereo search
GPU_GB = 80.0


def mode_settings(mode: str) -> dict[str, Any]:
    """The ``search`` settings of a mode name (``plain`` or ``+``-joined ``pcK``, ``sample``,
    ``ckpt``, ``amp``); ConfigError on an unknown part."""
    out: dict[str, Any] = {}
    for part in mode.split("+"):
        if part == "plain":
            continue
        if part == "sample":
            out["sample_ops"] = True
        elif part == "ckpt":
            out["checkpoint_cells"] = True
        elif part == "amp":
            out["amp"] = True
        elif part.startswith("pc") and part[2:].isdigit() and int(part[2:]) >= 1:
            out["partial_channels"] = int(part[2:])
        else:
            raise ConfigError(f"--modes {mode!r}: unknown part {part!r} (plain, pcK, sample, ckpt, amp joined by +)")
    return out


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one supernet and run one search step; figures of this process."""
    import torch

    from ..runtime import seed_everything
    from ..search import BilevelConfig, Searcher

    torch.set_num_threads(int(spec["threads"]))
    seed_everything(0)
    settings = mode_settings(spec["mode"])
    b = int(spec["batch"])
    if spec["net"] == "cifar":
        from classification.config import resolve_config
        from classification.network import COMPONENT, build_supernet
        from classification.train import classification_loss

        from ..search import MemoryConfig

        cfg = resolve_config(spec["cifar_preset"], overrides=[f"search.{k}={v}" for k, v in settings.items()])
        size = int(spec["image_size"])
        model = build_supernet(cfg.model, 10, 3, MemoryConfig.of(cfg.search))
        components = {COMPONENT: model.backbone}
        loss_fn = classification_loss()

        def batch() -> Any:
            return torch.randn(b, 3, size, size), torch.randint(0, 10, (b,))

        amp = cfg.search.amp
        shape = [cfg.model.time_steps, b, 3, size, size]
    else:
        from ..stereo.config import load_config
        from ..stereo.losses import disparity_loss
        from ..stereo.network import build_supernet as build_stereo

        cfg = load_config(spec["stereo_preset"]).replace(**{f"search.{k}": v for k, v in settings.items()})
        h, w = (int(v) for v in spec["crop"])
        model = build_stereo(cfg)
        components = model.components()
        shape = [cfg.time_steps, b, cfg.input_channels, h, w]

        def rep() -> torch.Tensor:
            return torch.randn(*shape) * (torch.rand(*shape) < 0.1)

        def batch() -> Any:
            gt = torch.rand(b, h, w) * (cfg.max_disparity - 1)
            return {"left": rep(), "right": rep(), "disparity": gt, "valid": torch.ones(b, h, w, dtype=torch.bool)}

        def loss_fn(m: torch.nn.Module, bt: Any) -> torch.Tensor:
            return disparity_loss(m(bt["left"], bt["right"]), bt, "smooth_l1")

        amp = cfg.search.amp
    tr, va = batch(), batch()
    built = _rss_mib()
    searcher = Searcher(
        model, loss_fn, BilevelConfig(epochs=1, warmup_epochs=0, amp=amp), components, log=lambda s: None
    )
    t0 = time.process_time()
    out = searcher.step(tr, va, epoch=0)
    return {
        "peak_rss_mib": _rss_mib(),
        "built_rss_mib": built,
        "step_cpu_seconds": time.process_time() - t0,
        "parameters": sum(p.numel() for p in model.parameters()),
        "input_shape": shape,
        "loss": out["loss"],
    }


def _current_rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _run_child(spec: dict[str, Any], max_rss_mib: float) -> dict[str, Any]:
    """One measurement in a fresh process; stopped (``over_cap``) when it grows beyond the cap."""
    cmd = [sys.executable, "-m", "stereo_snn.bench.search_memory", "--child", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    over = False
    while proc.poll() is None:
        if _current_rss_mib(proc.pid) > max_rss_mib:
            proc.kill()
            over = True
            break
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    if over:
        return {"over_cap": True}
    if proc.returncode != 0:
        raise RuntimeError(f"search memory measurement {spec} failed:\n{stderr.strip()[-2000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


@dataclass
class Line:
    """Peak memory of one net and mode as ``fixed + per_sample * batch`` (MiB)."""

    net: str
    mode: str
    fixed_mib: float
    per_sample_mib: float
    points: list[tuple[int, float]]
    over_cap: bool = False
    area_scale: float = 1.0

    def at(self, batch: int) -> float:
        """Extrapolated peak memory at ``batch`` samples (MiB), per-sample part scaled by ``area_scale``."""
        return self.fixed_mib + self.per_sample_mib * self.area_scale * batch


def measure(args: argparse.Namespace, log: Any = print) -> list[Line]:
    """Every net x mode x batch in a fresh process; one :class:`Line` per net and mode."""
    lines = []
    stereo_scale = (args.target_crop[0] * args.target_crop[1]) / (args.crop[0] * args.crop[1])
    for net in args.nets:
        for mode in args.modes:
            points, over = [], False
            for b in args.batches:
                spec = {
                    "net": net,
                    "mode": mode,
                    "batch": b,
                    "threads": args.threads,
                    "cifar_preset": args.cifar_preset,
                    "stereo_preset": args.stereo_preset,
                    "image_size": args.image_size,
                    "crop": list(args.crop),
                }
                res = _run_child(spec, args.max_rss_gb * 1024.0)
                if res.get("over_cap"):
                    log(f"  {net} {mode} batch {b}: over the {args.max_rss_gb:g} GB cap, stopped")
                    over = True
                    break
                points.append((b, res["peak_rss_mib"]))
                log(
                    f"  {net} {mode} batch {b}: peak RSS {res['peak_rss_mib']:.0f} MiB "
                    f"(input {res['input_shape']}, step CPU {res['step_cpu_seconds']:.1f} s)"
                )
            if over or len(points) < 2:
                lines.append(Line(net, mode, float("nan"), float("nan"), points, over_cap=over))
                continue
            (b0, m0), (b1, m1) = points[0], points[-1]
            slope = (m1 - m0) / (b1 - b0)
            lines.append(
                Line(net, mode, m0 - slope * b0, slope, points, area_scale=stereo_scale if net == "stereo" else 1.0)
            )
    return lines


def project(lines: Sequence[Line], targets: dict[str, int] = TARGETS, gpu_gb: float = GPU_GB) -> str:
    """Markdown table: fixed part, memory per sample, the extrapolated peak at each net's
    published-size batch and whether it fits ``gpu_gb``."""
    rows = [
        "| supernet | mode | fixed (MiB) | per sample (MiB) | batch | extrapolated peak (GB) | fits 80 GB |",
        "|---|---|---|---|---|---|---|",
    ]
    for ln in lines:
        n = targets.get(ln.net, 1)
        if ln.over_cap or ln.per_sample_mib != ln.per_sample_mib:
            rows.append(f"| {ln.net} | {ln.mode} | - | - | {n} | over the measuring cap | - |")
            continue
        gb = ln.at(n) / 1024.0
        per = f"{ln.per_sample_mib:.1f}"
        if ln.area_scale != 1:
            per = f"{ln.per_sample_mib * ln.area_scale:.0f} (= {per} x{ln.area_scale:.3g}, area)"
        rows.append(
            f"| {ln.net} | {ln.mode} | {ln.fixed_mib:.0f} | {per} | {n} | {gb:.1f} | "
            f"{'yes' if gb <= gpu_gb else 'no'} |"
        )
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    """Options of the memory benchmark (``stereo-snn bench search --memory ...``)."""
    p = argparse.ArgumentParser(
        prog="bench_search --memory", description="Peak memory per sample of a search step, per memory-saving mode."
    )
    p.add_argument("--memory", action="store_true", help="(selects this benchmark)")
    p.add_argument("--nets", nargs="+", choices=("cifar", "stereo"), default=["cifar", "stereo"])
    p.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES), help="plain or +-joined pcK, sample, ckpt, amp")
    p.add_argument("--batches", nargs=2, type=int, default=[1, 2], help="the two batch sizes measured (default 1 2)")
    p.add_argument("--cifar-preset", default="cifar10_search", help="classification preset of the cifar supernet")
    p.add_argument("--image-size", type=int, default=32, help="image side of the cifar supernet, pixels (default 32)")
    p.add_argument("--stereo-preset", default="dsec", help="stereo preset of the stereo supernet (default dsec)")
    p.add_argument("--crop", nargs=2, type=int, default=[256, 512], help="stereo crop H W, pixels (default 256 512)")
    p.add_argument(
        "--target-crop",
        nargs=2,
        type=int,
        default=[256, 512],
        help="stereo crop of the projection (default 256 512): the per-sample figure measured at --crop is "
        "scaled by the area ratio",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per measurement (default 1)")
    p.add_argument("--max-rss-gb", type=float, default=6.0, help="stop a measurement beyond this RSS (default 6)")
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: measure, print each point and the projection table."""
    args = build_parser().parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    for mode in args.modes:
        mode_settings(mode)
    b0, b1 = args.batches
    if not 1 <= b0 < b1:
        build_parser().error("--batches: two sizes, 1 <= first < second")
    print(
        f"search memory benchmark: peak RSS of one search step (fresh process each, {args.threads} thread(s), "
        f"batches {b0} and {b1}, cap {args.max_rss_gb:g} GB); load average {os.getloadavg()[0]:.1f}"
    )
    lines = measure(args)
    print("per sample = slope between the two batches; the peak at the published batch is extrapolated linearly")
    if "stereo" in args.nets and list(args.crop) != list(args.target_crop):
        print(
            f"stereo: measured on {args.crop[0]}x{args.crop[1]} crops, per sample scaled by the area to "
            f"{args.target_crop[0]}x{args.target_crop[1]}"
        )
    print(project(lines))
    if args.out:
        from ..atomic import write_json

        write_json(
            args.out,
            {
                "benchmark": "search_memory",
                "batches": [b0, b1],
                "threads": args.threads,
                "crop": list(args.crop),
                "target_crop": list(args.target_crop),
                "image_size": args.image_size,
                "lines": [ln.__dict__ for ln in lines],
                "targets": TARGETS,
            },
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
