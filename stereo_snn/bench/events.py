"""Events benchmark: numba voxel grid vs the torch reference, and DSEC window loading.

Run as ``python tools/bench_events.py`` or ``stereo-snn bench events``. Prints, measured in
one run:

1. voxel-grid throughput (events/s) of :func:`stereo_snn.events.voxel_grid` and of the torch
   reference :func:`stereo_snn.bench.reference.voxel_grid_reference` on the same events,
   and their ratio; the numba kernels' first call (JIT compile or cache load) is timed
   separately and excluded;
2. the time to load one window per camera from a Blosc/ZSTD DSEC-layout sequence (written
   to a temporary folder first), rectify it and build the voxel grids, split into
   slice (read + decompress), rectify and voxelise.

Times are wall-clock medians over ``--repeats`` runs. No test asserts on these figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..atomic import write_json
from ..errors import ConfigError
from ..events.recording import Events

WINDOW_US = 50_000


def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command-line options."""
    p = argparse.ArgumentParser(
        prog="bench_events",
        description="Voxel-grid throughput (numba vs torch reference) and DSEC window load+rectify+voxelise time.",
    )
    p.add_argument("--events", type=_positive("--events"), default=2_000_000, help="events for the throughput test (default 2000000)")
    p.add_argument("--repeats", type=_positive("--repeats"), default=5, help="timed runs per measurement (median reported; default 5)")
    p.add_argument("--ref-repeats", type=_positive("--ref-repeats"), default=3, help="timed runs of the slow torch reference (default 3)")
    p.add_argument("--height", type=_positive("--height"), default=480, help="sensor height in pixels (default 480, DSEC)")
    p.add_argument("--width", type=_positive("--width"), default=640, help="sensor width in pixels (default 640, DSEC)")
    p.add_argument("--bins", type=_positive("--bins"), default=15, help="voxel-grid time bins (default 15, DSEC)")
    p.add_argument(
        "--window-events", type=_positive("--window-events"), default=1_000_000,
        help="events per camera in the 50 ms window of the load test (default 1000000)",
    )
    p.add_argument("--no-load", action="store_true", help="skip the DSEC load test")
    p.add_argument("--seed", type=int, default=0, help="random seed for the synthetic events (default 0)")
    p.add_argument("--threads", type=_positive("--threads"), default=None, help="numba and torch threads (default: all cores)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON to PATH")
    return p


def synthetic_events(n: int, height: int, width: int, seed: int, float_coords: bool = True) -> Events:
    """``n`` events spread uniformly over the sensor and a 50 ms window (time-sorted).

    Uniform positions are the cache-unfriendly case for the scatter kernels (real events
    cluster on edges). float32 coordinates mimic rectified events; integer ones raw events.
    """
    rng = np.random.default_rng(seed)
    if float_coords:
        x = rng.uniform(0, width - 1, n).astype(np.float32)
        y = rng.uniform(0, height - 1, n).astype(np.float32)
    else:
        x = rng.integers(0, width, n).astype(np.uint16)
        y = rng.integers(0, height, n).astype(np.uint16)
    t = np.sort(rng.integers(0, WINDOW_US, n)).astype(np.int64) + 1_000_000_000_000
    p = rng.integers(0, 2, n).astype(np.int8)
    return Events(x, y, t, p)


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time (s) of ``repeats`` calls and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_voxel(args: argparse.Namespace) -> dict[str, Any]:
    """Numba voxel grid vs torch reference on the same events."""
    from ..events.represent import voxel_grid
    from .reference import voxel_grid_reference

    ev = synthetic_events(args.events, args.height, args.width, args.seed)
    shape = (args.bins, args.height, args.width)
    start = time.perf_counter()
    small = synthetic_events(1000, args.height, args.width, args.seed + 1)
    voxel_grid(*small, *shape)
    first_call = time.perf_counter() - start
    t_numba, grid = _timed(lambda: voxel_grid(*ev, *shape), args.repeats)
    t_numba_raw, _ = _timed(lambda: voxel_grid(*ev, *shape, normalize=False), args.repeats)
    t_ref, ref = _timed(lambda: voxel_grid_reference(*ev, *shape), args.ref_repeats)
    return {
        "events": args.events,
        "bins": args.bins,
        "first_call_s": first_call,
        "numba_s": t_numba,
        "numba_no_normalize_s": t_numba_raw,
        "torch_reference_s": t_ref,
        "numba_events_per_s": args.events / t_numba,
        "torch_events_per_s": args.events / t_ref,
        "speedup": t_ref / t_numba,
        "max_abs_diff": float(np.abs(grid - ref).max()),
    }


def _rectify_map(height: int, width: int, dx: float, dy: float) -> np.ndarray:
    """A non-identity rectify map: a slight zoom about the centre plus a shift (pixels)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    zoom = np.float32(0.98)
    return np.stack([(xs - cx) * zoom + cx + dx, (ys - cy) * zoom + cy + dy], axis=-1).astype(np.float32)


def write_sequence(root: Path, args: argparse.Namespace) -> tuple[Path, int, int]:
    """Write a DSEC-layout sequence (events + rectify maps) of 100 ms with ``2 *
    window_events`` events per camera; return (folder, window start, window end) in
    absolute microseconds, the window holding about ``window_events`` per camera."""
    from ..events.files import write_event_h5
    from ..events.rectify import write_rectify_map

    seq = root / "bench_seq"
    t_offset = 1_000_000_000_000
    for k, camera in enumerate(("left", "right")):
        rng = np.random.default_rng(args.seed + 10 + k)
        n = 2 * args.window_events
        ev = Events(
            rng.integers(0, args.width, n).astype(np.uint16),
            rng.integers(0, args.height, n).astype(np.uint16),
            np.sort(rng.integers(0, 2 * WINDOW_US, n)).astype(np.int64) + t_offset,
            rng.integers(0, 2, n).astype(np.int8),
        )
        folder = seq / "events" / camera
        folder.mkdir(parents=True, exist_ok=True)
        write_event_h5(folder / "events.h5", ev, t_offset_us=t_offset, sensor_size=(args.height, args.width))
        write_rectify_map(folder / "rectify_map.h5", _rectify_map(args.height, args.width, 0.4 - k, -0.3 + k / 2))
    start = t_offset + WINDOW_US // 2
    return seq, start, start + WINDOW_US


def bench_load(args: argparse.Namespace) -> dict[str, Any]:
    """Load + rectify + voxelise one 50 ms window per camera from a Blosc/ZSTD sequence."""
    from ..events.dsec import DSECSequence
    from ..events.rectify import rectify_events
    from ..events.represent import voxel_grid

    with tempfile.TemporaryDirectory(prefix="bench_events_") as tmp:
        start = time.perf_counter()
        seq_dir, t0, t1 = write_sequence(Path(tmp), args)
        write_s = time.perf_counter() - start
        with DSECSequence(seq_dir) as seq:
            start = time.perf_counter()
            for camera in ("left", "right"):
                seq.event_file(camera)
                seq.rectify_map(camera)
            open_s = time.perf_counter() - start
            parts: dict[str, list[float]] = {"slice_s": [], "rectify_s": [], "voxel_s": [], "total_s": []}
            counts = {}
            for _ in range(args.repeats):
                totals = dict.fromkeys(parts, 0.0)
                for camera in ("left", "right"):
                    a = time.perf_counter()
                    raw = seq.event_file(camera).slice(t0, t1)
                    b = time.perf_counter()
                    rect = rectify_events(raw, seq.rectify_map(camera))
                    c = time.perf_counter()
                    voxel_grid(*rect, args.bins, args.height, args.width)
                    d = time.perf_counter()
                    totals["slice_s"] += b - a
                    totals["rectify_s"] += c - b
                    totals["voxel_s"] += d - c
                    totals["total_s"] += d - a
                    counts[camera] = len(raw)
                for key, value in totals.items():
                    parts[key].append(value)
            # the same through the public one-call API, as the stereo application uses it
            e2e, _ = _timed(
                lambda: [
                    voxel_grid(*seq.events(cam, t0, t1), args.bins, args.height, args.width) for cam in ("left", "right")
                ],
                args.repeats,
            )
    result = {key: statistics.median(values) for key, values in parts.items()}
    result.update(
        {
            "events_left": counts["left"],
            "events_right": counts["right"],
            "write_sequence_s": write_s,
            "open_s": open_s,
            "end_to_end_s": e2e,
        }
    )
    return result


def _set_threads(threads: int | None) -> int:
    import numba
    import torch

    if threads is not None:
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise ConfigError(f"--threads {threads} exceeds the {numba.config.NUMBA_NUM_THREADS} threads numba can use here")
        numba.set_num_threads(threads)
        torch.set_num_threads(threads)
    return int(numba.get_num_threads())


def _print_table(result: dict[str, Any]) -> None:
    v = result["voxel"]
    print(f"events benchmark: {result['machine']}, {result['threads']} threads")
    print(f"voxel grid, {v['events']:,} events, {v['bins']} bins, {result['height']}x{result['width']}:")
    print(f"  {'implementation':<28}{'time (ms)':>12}{'events/s':>16}")
    print(f"  {'numba (normalized)':<28}{v['numba_s'] * 1e3:>12.1f}{v['numba_events_per_s']:>16,.0f}")
    print(f"  {'numba (no normalization)':<28}{v['numba_no_normalize_s'] * 1e3:>12.1f}{v['events'] / v['numba_no_normalize_s']:>16,.0f}")
    print(f"  {'torch reference':<28}{v['torch_reference_s'] * 1e3:>12.1f}{v['torch_events_per_s']:>16,.0f}")
    print(f"  speed-up: {v['speedup']:.1f}x   max |numba - reference|: {v['max_abs_diff']:.2e}")
    print(f"  first numba call (JIT compile or cache load, excluded above): {v['first_call_s']:.2f} s")
    load = result.get("load")
    if load:
        print(
            f"DSEC window ({WINDOW_US // 1000} ms, Blosc/ZSTD), {load['events_left']:,} + {load['events_right']:,} events, both cameras:"
        )
        for key, label in (("slice_s", "slice (read + decompress)"), ("rectify_s", "rectify"), ("voxel_s", "voxel grid")):
            print(f"  {label:<28}{load[key] * 1e3:>12.1f} ms")
        print(f"  {'total':<28}{load['total_s'] * 1e3:>12.1f} ms")
        print(f"  {'DSECSequence.events + voxel':<28}{load['end_to_end_s'] * 1e3:>12.1f} ms")
        print(f"  (writing the sequence took {load['write_sequence_s']:.1f} s, opening it {load['open_s'] * 1e3:.1f} ms)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = build_parser().parse_args(argv)
    threads = _set_threads(args.threads)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
        "threads": threads,
        "height": args.height,
        "width": args.width,
        "voxel": bench_voxel(args),
    }
    if not args.no_load:
        result["load"] = bench_load(args)
    _print_table(result)
    if args.json is not None:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
