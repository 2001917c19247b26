"""Stereo inference benchmark: time and peak memory of one full-frame disparity prediction.

Run as ``python tools/bench_stereo.py`` or ``stereo-snn bench stereo``. One frame = one
stereo window: both cameras' events turned into the network input (the configured
representation, both views at once) and one forward pass of the trained network (the bundled
one unless ``--checkpoint``), at ``--height`` x ``--width`` (default the DSEC 480x640). The
events are synthetic (positions uniform over the sensor, the right view shifted by
``--shift`` pixels), so the figure is about cost, not accuracy. Reported: model load time,
input time, forward time (median of ``--repeats`` after one untimed frame), the CPU time of
the process per frame, the peak resident memory (``ru_maxrss``) and, on CUDA,
``torch.cuda.max_memory_allocated``. No test asserts on these figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Sequence

import numpy as np

from ..atomic import write_json
from . import machine_description, peak_rss_mib

__all__ = ["build_parser", "main", "run", "synthetic_pair"]


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command-line options."""
    p = argparse.ArgumentParser(prog="bench_stereo", description="Time and peak memory of one full-frame disparity prediction.")
    p.add_argument("--checkpoint", default=None, help="stereo checkpoint (default: the bundled model)")
    p.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480, DSEC)")
    p.add_argument("--width", type=int, default=640, help="frame width in pixels (default 640, DSEC)")
    p.add_argument("--events", type=int, default=500_000, help="events per camera in the window (default 500000)")
    p.add_argument("--shift", type=float, default=8.0, help="disparity of the synthetic right view (pixels, default 8)")
    p.add_argument("--repeats", type=int, default=2, help="timed frames (median reported; default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic events")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return p


def synthetic_pair(n: int, height: int, width: int, shift: float, window_us: int, seed: int) -> tuple[Any, Any]:
    """Left and right windows of ``n`` time-sorted events each, uniform over the sensor; the
    right view is the left one moved ``shift`` pixels to the left (rectified float x, y)."""
    from ..events.recording import Events

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, width - 1, n).astype(np.float32)
    y = rng.uniform(0, height - 1, n).astype(np.float32)
    t = np.sort(rng.integers(0, window_us, n)).astype(np.int64)
    p = rng.integers(0, 2, n).astype(np.int8)
    right_x = np.clip(x - np.float32(shift), 0, width - 1).astype(np.float32)
    return Events(x, y, t, p), Events(right_x, y.copy(), t.copy(), p.copy())


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure what ``args`` asks for; returns the figures (seconds, MiB)."""
    import torch

    from ..errors import ConfigError
    from ..stereo.infer import Predictor
    from ..stereo.network import load_model

    for name in ("height", "width", "events", "repeats"):
        if getattr(args, name) < 1:
            raise ConfigError(f"bench stereo: --{name} must be >= 1, got {getattr(args, name)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    loaded = load_model(args.checkpoint, device=args.device)
    load_s = time.perf_counter() - start
    pred = Predictor(loaded.model, loaded.config, args.device)
    window_us = int(round(loaded.config.window_ms * 1000))
    left, right = synthetic_pair(args.events, args.height, args.width, args.shift, window_us, args.seed)
    cuda = pred.device.type == "cuda"

    def frame() -> tuple[float, float, np.ndarray]:
        t0 = time.perf_counter()
        lt, rt = pred.inputs(left, right, args.height, args.width)
        t1 = time.perf_counter()
        disp = pred.predict_inputs(lt, rt)
        return t1 - t0, time.perf_counter() - t1, disp

    first_start = time.perf_counter()
    _, _, disp = frame()  # untimed: numba cache load, allocator warm-up, first-call imports
    first_s = time.perf_counter() - first_start
    inputs, forwards, cpus = [], [], []
    for _ in range(args.repeats):
        cpu0 = time.process_time()
        a, b, disp = frame()
        inputs.append(a)
        forwards.append(b)
        cpus.append(time.process_time() - cpu0)
    result = {
        "machine": machine_description(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(pred.device),
        "checkpoint": args.checkpoint or "bundled",
        "height": args.height,
        "width": args.width,
        "events_per_camera": args.events,
        "max_disparity": loaded.config.max_disparity,
        "load_s": load_s,
        "first_frame_s": first_s,
        "input_s": statistics.median(inputs),
        "forward_s": statistics.median(forwards),
        "frame_s": statistics.median(a + b for a, b in zip(inputs, forwards)),
        "frame_cpu_s": statistics.median(cpus),
        "peak_rss_mib": peak_rss_mib(),
        "output_shape": list(disp.shape),
        "load_average_1min": os.getloadavg()[0],
    }
    if cuda:
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(pred.device) / 2**20
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the figures (and write ``--json``); returns the exit code."""
    args = build_parser().parse_args(argv)
    r = run(args)
    print(f"stereo inference benchmark: {r['machine']}, {r['cpus']} CPUs, {r['torch_threads']} torch threads, "
          f"device {r['device']}, load average {r['load_average_1min']:.1f}")
    print(f"model: {r['checkpoint']} (max disparity {r['max_disparity']} px), loaded in {r['load_s']:.2f} s; "
          f"first frame (untimed warm-up) {r['first_frame_s']:.2f} s")
    print(f"frame {r['height']}x{r['width']}, {r['events_per_camera']:,} events per camera: "
          f"input {r['input_s'] * 1e3:.0f} ms + forward {r['forward_s']:.2f} s = {r['frame_s']:.2f} s "
          f"(CPU {r['frame_cpu_s']:.2f} s), output {tuple(r['output_shape'])}")
    line = f"peak RSS {r['peak_rss_mib']:.0f} MiB"
    if "cuda_max_allocated_mib" in r:
        line += f", CUDA max allocated {r['cuda_max_allocated_mib']:.0f} MiB"
    print(line)
    if args.json is not None:
        write_json(args.json, r)
        print(f"wrote {args.json}")
    return 0
