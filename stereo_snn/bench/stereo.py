"""Stereo inference benchmark: time and peak memory of one full-frame disparity prediction.

Run as ``python tools/bench_stereo.py`` or ``stereo-snn bench stereo``. One frame = one
stereo window: both cameras' events turned into the network input (the configured
representation, both views at once) and one forward pass of the trained network. By default
every bundled model is measured at its own sensor size (DSEC 640x480, MVSEC 346x260) with
``--events-per-pixel`` events per camera (1.63: 500 000 at 640x480); ``--height``/``--width``
(and ``--checkpoint``, default the bundled DSEC model) measure one other frame. The
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
    p = argparse.ArgumentParser(
        prog="bench_stereo", description="Time and peak memory of one full-frame disparity prediction."
    )
    p.add_argument("--checkpoint", default=None, help="stereo checkpoint (default: the bundled models)")
    p.add_argument("--height", type=int, default=None, help="frame height in pixels (default: each bundled model's)")
    p.add_argument("--width", type=int, default=None, help="frame width in pixels (default: each bundled model's)")
    p.add_argument(
        "--events",
        type=int,
        default=None,
        help="events per camera in the window (default: --events-per-pixel x the frame's pixels)",
    )
    p.add_argument(
        "--events-per-pixel",
        type=float,
        default=500_000 / (640 * 480),
        help="events per camera per pixel when --events is not given (default 1.63)",
    )
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


def frames_to_measure(args: argparse.Namespace) -> list[tuple[Any, str, int, int, int]]:
    """(checkpoint path, label, height, width, events per camera) of every frame to measure."""
    from ..errors import ConfigError
    from ..stereo.models import bundled_models, default_checkpoint

    if (args.height is None) != (args.width is None):
        raise ConfigError("bench stereo: give both --height and --width, or neither")
    for name in ("height", "width", "events"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"bench stereo: --{name} must be >= 1, got {value}")
    if args.repeats < 1:
        raise ConfigError(f"bench stereo: --repeats must be >= 1, got {args.repeats}")
    if not args.events_per_pixel > 0:
        raise ConfigError(f"bench stereo: --events-per-pixel must be > 0, got {args.events_per_pixel}")

    def events(h: int, w: int) -> int:
        return int(args.events) if args.events is not None else max(1, int(round(args.events_per_pixel * h * w)))

    if args.height is not None:
        ckpt = args.checkpoint or default_checkpoint()
        return [(ckpt, args.checkpoint or "bundled dsec", args.height, args.width, events(args.height, args.width))]
    models = bundled_models()
    if args.checkpoint:
        from ..stereo.network import read_checkpoint

        # the frame size it was trained on, without building the network (that is timed, once)
        state, _ = read_checkpoint(args.checkpoint, ("model", "config", "genotype"), "stereo checkpoint")
        h, w = state.get("data_size") or (480, 640)
        return [(args.checkpoint, args.checkpoint, int(h), int(w), events(int(h), int(w)))]
    return [(m.path, f"bundled {m.name}", m.height, m.width, events(m.height, m.width)) for m in models]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure what ``args`` asks for; returns ``{"machine", ..., "frames": [figures per frame]}``
    (seconds, MiB; ``fps`` = 1 / frame time)."""
    import torch

    todo = frames_to_measure(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = [_measure(args, *item) for item in todo]
    result = {
        "machine": machine_description(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "frames": frames,
        "peak_rss_mib": peak_rss_mib(),
        "load_average_1min": os.getloadavg()[0],
    }
    return result


def _measure(
    args: argparse.Namespace, checkpoint: Any, label: str, height: int, width: int, n_events: int
) -> dict[str, Any]:
    import torch

    from ..stereo.infer import Predictor
    from ..stereo.network import load_model

    start = time.perf_counter()
    loaded = load_model(checkpoint, device=args.device)
    load_s = time.perf_counter() - start
    pred = Predictor(loaded.model, loaded.config, args.device)
    window_us = int(round(loaded.config.window_ms * 1000))
    left, right = synthetic_pair(n_events, height, width, args.shift, window_us, args.seed)
    cuda = pred.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(pred.device)

    def frame() -> tuple[float, float, np.ndarray]:
        t0 = time.perf_counter()
        lt, rt = pred.inputs(left, right, height, width)
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
    frame_s = statistics.median(a + b for a, b in zip(inputs, forwards))
    result = {
        "checkpoint": label,
        "device": str(pred.device),
        "height": height,
        "width": width,
        "events_per_camera": n_events,
        "max_disparity": loaded.config.max_disparity,
        "load_s": load_s,
        "first_frame_s": first_s,
        "input_s": statistics.median(inputs),
        "forward_s": statistics.median(forwards),
        "frame_s": frame_s,
        "fps": 1.0 / frame_s,
        "frame_cpu_s": statistics.median(cpus),
        "peak_rss_mib": peak_rss_mib(),
        "output_shape": list(disp.shape),
    }
    if cuda:
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(pred.device) / 2**20
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the figures (and write ``--json``); returns the exit code."""
    args = build_parser().parse_args(argv)
    r = run(args)
    print(
        f"stereo inference benchmark: {r['machine']}, {r['cpus']} CPUs, {r['torch_threads']} torch threads, "
        f"load average {r['load_average_1min']:.1f}"
    )
    for f in r["frames"]:
        print(
            f"{f['checkpoint']} (max disparity {f['max_disparity']} px) on {f['device']}: loaded in "
            f"{f['load_s']:.2f} s; first frame (untimed warm-up) {f['first_frame_s']:.2f} s"
        )
        line = (
            f"  frame {f['height']}x{f['width']}, {f['events_per_camera']:,} events per camera: "
            f"input {f['input_s'] * 1e3:.0f} ms + forward {f['forward_s']:.2f} s = {f['frame_s']:.2f} s "
            f"({f['fps']:.2f} frames/s, CPU {f['frame_cpu_s']:.2f} s), output {tuple(f['output_shape'])}, "
            f"peak RSS so far {f['peak_rss_mib']:.0f} MiB"
        )
        if "cuda_max_allocated_mib" in f:
            line += f", CUDA max allocated {f['cuda_max_allocated_mib']:.0f} MiB"
        print(line)
    if args.json is not None:
        write_json(args.json, r)
        print(f"wrote {args.json}")
    return 0
