"""Search benchmark: time and peak memory of one bilevel search step on a reference supernet.

Run as ``python tools/bench_search.py`` or ``stereo-snn bench search``. One step = an
architecture step (held-out batch, with the energy penalty) plus a weight step (training batch),
i.e. two forward and two backward passes through the supernet. Reported: the wall-clock median
over ``--repeats`` steps after ``--warmup`` untimed steps, the peak resident memory of the
process (``resource.ru_maxrss``), the process CPU time per step (the machine may be shared, so
wall time alone can mislead), the load average and, on CUDA, ``torch.cuda.max_memory_allocated``. Optionally
one DGS round of one batch pair is timed too. No test asserts on these figures.

Reference sizes: ``--dim 2``: input [T=4, B=2, 5, 64, 64] (5 SBT frames), channels 8,
4 layers, 3 nodes, 4 levels, moves down/same/up, candidates skip/conv_3x3_b3/conv_3x3_b5,
kinds lif/plif, hybrid on. ``--dim 3``: a cost volume [T=4, B=1, 16, 16, 32, 32], same
engine settings, 4 layers. ``--memory`` runs :mod:`.search_memory` instead (peak memory per
sample of each memory-saving mode).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Sequence

import torch
from torch import nn

from ..atomic import write_json
from ..runtime import resolve_device, seed_everything
from ..search import BilevelConfig, DGSConfig, Searcher, SpikingTrellis, SurrogateSearch, TrellisConfig
from . import peak_rss_mib, search_memory

__all__ = ["build_parser", "main", "run"]


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command-line options."""
    p = argparse.ArgumentParser(prog="bench_search", description="Time and peak memory of one search step.")
    p.add_argument("--dim", type=int, choices=(2, 3), default=2, help="2D feature supernet or 3D matching supernet")
    p.add_argument("--size", type=int, default=None, help="spatial size H=W (default 64 for 2D, 32 for 3D)")
    p.add_argument("--disparities", type=int, default=16, help="cost-volume depth D for --dim 3 (default 16)")
    p.add_argument("--time-steps", type=int, default=4, help="T (default 4)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 2 for 2D, 1 for 3D)")
    p.add_argument("--channels", type=int, default=8, help="node channels at level 0 (default 8)")
    p.add_argument("--layers", type=int, default=4, help="trellis layers (default 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps (median reported; default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--dgs", action="store_true", help="also time one DGS round of one batch pair")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    p.add_argument(
        "--memory",
        action="store_true",
        help="instead: peak memory per sample of each memory-saving mode (see --memory --help)",
    )
    return p


class _Bench(nn.Module):
    def __init__(self, cfg: TrellisConfig):
        super().__init__()
        self.body = SpikingTrellis(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, target = batch
    return nn.functional.mse_loss(model(x).mean(0), target)


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark; returns the figures."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    seed_everything(0)
    dim = args.dim
    size = args.size or (64 if dim == 2 else 32)
    batch = args.batch or (2 if dim == 2 else 1)
    in_ch = 5 if dim == 2 else 16
    spatial = (size, size) if dim == 2 else (args.disparities, size, size)
    cfg = TrellisConfig(dim=dim, in_channels=in_ch, channels=args.channels, layers=args.layers)
    model = _Bench(cfg).to(device)
    g = torch.Generator().manual_seed(0)

    def make_batch():
        x = (torch.rand(args.time_steps, batch, in_ch, *spatial, generator=g) < 0.2).float().to(device)
        return x, torch.rand(batch, model.body.out_channels, *spatial, generator=g).to(device)

    tr, va = make_batch(), make_batch()
    searcher = Searcher(
        model,
        _loss,
        BilevelConfig(epochs=1, warmup_epochs=0, energy_weight=0.1),
        {"body": model.body},
        log=lambda s: None,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        searcher.step(tr, va, epoch=0)
    times, cpu_times = [], []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        searcher.step(tr, va, epoch=0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    out = {
        "benchmark": "search_step",
        "supernet": {**cfg.to_dict(), "input_shape": [args.time_steps, batch, in_ch, *spatial]},
        "parameters": sum(p.numel() for p in model.parameters()),
        "arch_parameters": sum(p.numel() for p in model.body.arch_parameters()),
        "step_seconds_median": statistics.median(times),
        "step_seconds": times,
        "step_cpu_seconds_median": statistics.median(cpu_times),
        "load_average_1min": os.getloadavg()[0],
        "peak_rss_mib": peak_rss_mib(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    if device.type == "cuda":
        out["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["gpu"] = torch.cuda.get_device_name(device)
    if args.dgs:
        dgs = SurrogateSearch(model, DGSConfig(max_batches=1))
        t0, c0 = time.perf_counter(), time.process_time()
        dgs.run([tr], [va], _loss)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out["dgs_round_one_batch_seconds"] = time.perf_counter() - t0
        out["dgs_round_one_batch_cpu_seconds"] = time.process_time() - c0
        out["peak_rss_mib"] = peak_rss_mib()
        if device.type == "cuda":
            out["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints the figures (and writes ``--out``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--memory" in argv:
        return search_memory.main(argv)
    args = build_parser().parse_args(argv)
    for name in ("repeats", "time_steps", "channels", "layers", "disparities"):
        if getattr(args, name) < 1:
            build_parser().error(f"--{name.replace('_', '-')} must be >= 1")
    res = run(args)
    print(
        f"search step ({args.dim}D supernet, input {res['supernet']['input_shape']}, "
        f"{res['parameters']} parameters, {res['device']}, {res['threads']} threads): "
        f"{res['step_seconds_median']:.3f} s median of {len(res['step_seconds'])} "
        f"(CPU {res['step_cpu_seconds_median']:.3f} s, load average {res['load_average_1min']:.1f}); "
        f"peak RSS {res['peak_rss_mib']:.0f} MiB"
        + (
            f"; CUDA peak {res['cuda_max_memory_allocated_mib']:.0f} MiB"
            if "cuda_max_memory_allocated_mib" in res
            else ""
        )
        + (
            f"; DGS round (1 batch pair) {res['dgs_round_one_batch_seconds']:.3f} s "
            f"(CPU {res['dgs_round_one_batch_cpu_seconds']:.3f} s)"
            if "dgs_round_one_batch_seconds" in res
            else ""
        )
    )
    if args.out:
        write_json(args.out, res)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
