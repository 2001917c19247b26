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

Times are wall-clock medians over ``--repeats`` runs, each table also gives the median CPU
time of the process (all threads), which shows the work done even when other jobs share
the CPUs. Every measured function is called once untimed first (JIT compile or cache
load). ``--threads`` sets numba's and torch's thread counts; the header names numba's
threading layer. No test asserts on these figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..atomic import write_json
from ..errors import ConfigError
from ..events.recording import Events
from . import machine_description

WINDOW_US = 50_000
LAYOUTS = ("uniform", "edges")
T_ORIGIN_US = 1_000_000_000_000  # absolute time of the synthetic events' first microsecond


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
    p.add_argument(
        "--events",
        type=_positive("--events"),
        default=2_000_000,
        help="events for the throughput test (default 2000000)",
    )
    p.add_argument(
        "--repeats",
        type=_positive("--repeats"),
        default=5,
        help="timed runs per measurement (median reported; default 5)",
    )
    p.add_argument(
        "--ref-repeats",
        type=_positive("--ref-repeats"),
        default=3,
        help="timed runs of the slow torch reference (default 3)",
    )
    p.add_argument(
        "--height", type=_positive("--height"), default=480, help="sensor height in pixels (default 480, DSEC)"
    )
    p.add_argument("--width", type=_positive("--width"), default=640, help="sensor width in pixels (default 640, DSEC)")
    p.add_argument("--bins", type=_positive("--bins"), default=15, help="voxel-grid time bins (default 15, DSEC)")
    p.add_argument(
        "--window-events",
        type=_positive("--window-events"),
        default=1_000_000,
        help="events per camera in the 50 ms window of the load test (default 1000000)",
    )
    p.add_argument("--no-load", action="store_true", help="skip the DSEC load test")
    p.add_argument(
        "--layouts",
        nargs="+",
        choices=LAYOUTS,
        default=list(LAYOUTS),
        help="event layouts for the throughput test (default: uniform edges)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed for the synthetic events (default 0)")
    p.add_argument(
        "--threads", type=_positive("--threads"), default=None, help="numba and torch threads (default: all cores)"
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON to PATH")
    return p


def synthetic_events(
    n: int,
    height: int,
    width: int,
    seed: int,
    layout: str = "uniform",
    float_coords: bool = True,
    span_us: int = WINDOW_US,
) -> Events:
    """``n`` time-sorted events over ``span_us`` microseconds on a ``height`` x ``width`` sensor.

    layout "uniform": positions uniform over the sensor, the cache-unfriendly worst case for
    the scatter kernels. layout "edges": events on 200 short edge segments (10-80 px) that
    move at ~1500 px/s with 0.7 px jitter, clustered the way real event streams are.
    float32 coordinates mimic rectified events; integer ones raw events.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown event layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, span_us, n)).astype(np.int64)
    if layout == "uniform":
        xf = rng.uniform(0, width - 1, n)
        yf = rng.uniform(0, height - 1, n)
    else:
        k = 200
        seg = rng.integers(0, k, n)
        cx, cy = rng.uniform(0, width, k), rng.uniform(0, height, k)
        angle, length = rng.uniform(0, np.pi, k), rng.uniform(10, 80, k)
        vx, vy = rng.normal(0, 1500, k), rng.normal(0, 1500, k)  # pixels per second
        s = rng.uniform(-0.5, 0.5, n) * length[seg]
        sec = t * 1e-6
        xf = np.mod(cx[seg] + s * np.cos(angle[seg]) + vx[seg] * sec + rng.normal(0, 0.7, n), width - 1)
        yf = np.mod(cy[seg] + s * np.sin(angle[seg]) + vy[seg] * sec + rng.normal(0, 0.7, n), height - 1)
    if float_coords:
        x, y = xf.astype(np.float32), yf.astype(np.float32)
    else:
        x, y = np.round(xf).astype(np.uint16), np.round(yf).astype(np.uint16)
    p = rng.integers(0, 2, n).astype(np.int8)
    return Events(x, y, t + T_ORIGIN_US, p)


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any, float]:
    """Median wall time (s) of ``repeats`` calls, the last result, and the median CPU time
    (s, all threads of this process) of those calls."""
    times = []
    cpu = []
    result = None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), result, statistics.median(cpu)


def bench_voxel(args: argparse.Namespace, layout: str) -> dict[str, Any]:
    """Numba voxel grid vs torch reference on the same events of one layout."""
    from ..events.represent import voxel_grid
    from .reference import voxel_grid_reference

    ev = synthetic_events(args.events, args.height, args.width, args.seed, layout)
    shape = (args.bins, args.height, args.width)
    voxel_grid(*ev, *shape)  # untimed: page in the events, warm the caches
    t_numba, grid, cpu_numba = _timed(lambda: voxel_grid(*ev, *shape), args.repeats)
    t_numba_raw, _, cpu_numba_raw = _timed(lambda: voxel_grid(*ev, *shape, normalize=False), args.repeats)
    t_ref, ref, cpu_ref = _timed(lambda: voxel_grid_reference(*ev, *shape), args.ref_repeats)
    return {
        "layout": layout,
        "events": args.events,
        "bins": args.bins,
        "numba_s": t_numba,
        "numba_no_normalize_s": t_numba_raw,
        "torch_reference_s": t_ref,
        "numba_cpu_s": cpu_numba,
        "numba_no_normalize_cpu_s": cpu_numba_raw,
        "torch_reference_cpu_s": cpu_ref,
        "numba_events_per_s": args.events / t_numba,
        "torch_events_per_s": args.events / t_ref,
        "speedup": t_ref / t_numba,
        "max_abs_diff": float(np.abs(grid - ref).max()),
    }


def first_call_s(args: argparse.Namespace) -> float:
    """Wall time of the first voxel_grid call in this process (numba JIT compile, or
    loading the compiled kernels from numba's cache), on a small window."""
    from ..events.represent import voxel_grid

    small = synthetic_events(1000, args.height, args.width, args.seed + 1)
    start = time.perf_counter()
    voxel_grid(*small, args.bins, args.height, args.width)
    return time.perf_counter() - start


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
    t_offset = T_ORIGIN_US
    for k, camera in enumerate(("left", "right")):
        ev = synthetic_events(
            2 * args.window_events,
            args.height,
            args.width,
            args.seed + 10 + k,
            float_coords=False,
            span_us=2 * WINDOW_US,
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
    from ..events.pair import pair_is_concurrent, run_pair
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
            stages = ("slice", "rectify", "voxel", "total")
            parts: dict[str, list[float]] = {f"{stage}{unit}": [] for stage in stages for unit in ("_s", "_cpu_s")}
            counts = {}
            for repeat in range(args.repeats + 1):  # repeat 0: untimed warm-up (JIT cache load)
                totals = dict.fromkeys(parts, 0.0)
                for camera in ("left", "right"):
                    marks = [(time.perf_counter(), time.process_time())]
                    raw = seq.event_file(camera).slice(t0, t1)
                    marks.append((time.perf_counter(), time.process_time()))
                    rect = rectify_events(raw, seq.rectify_map(camera))
                    marks.append((time.perf_counter(), time.process_time()))
                    voxel_grid(*rect, args.bins, args.height, args.width)
                    marks.append((time.perf_counter(), time.process_time()))
                    for k, stage in enumerate(stages):
                        first, last = (0, 3) if stage == "total" else (k, k + 1)
                        totals[f"{stage}_s"] += marks[last][0] - marks[first][0]
                        totals[f"{stage}_cpu_s"] += marks[last][1] - marks[first][1]
                    counts[camera] = len(raw)
                if repeat:
                    for key, value in totals.items():
                        parts[key].append(value)

            # the same through the public one-call API, one camera after the other, and both
            # cameras at the same time (run_pair), as the stereo application loads a window
            def one(cam: str) -> Callable[[], np.ndarray]:
                return lambda: voxel_grid(*seq.events(cam, t0, t1), args.bins, args.height, args.width)

            e2e, _, e2e_cpu = _timed(lambda: [one(cam)() for cam in ("left", "right")], args.repeats)
            run_pair(one("left"), one("right"))  # warm-up: threading layer, thread start
            both, _, both_cpu = _timed(lambda: run_pair(one("left"), one("right")), args.repeats)
    result = {key: statistics.median(values) for key, values in parts.items()}
    result.update(
        {
            "events_left": counts["left"],
            "events_right": counts["right"],
            "write_sequence_s": write_s,
            "open_s": open_s,
            "end_to_end_s": e2e,
            "end_to_end_cpu_s": e2e_cpu,
            "pair_s": both,
            "pair_cpu_s": both_cpu,
            "pair_concurrent": pair_is_concurrent(),
        }
    )
    return result


def _set_threads(threads: int | None) -> tuple[int, int]:
    """Set numba's and torch's thread counts; return the previous (numba, torch) counts."""
    import numba
    import torch

    previous = (int(numba.get_num_threads()), int(torch.get_num_threads()))
    if threads is not None:
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise ConfigError(
                f"--threads {threads} exceeds the {numba.config.NUMBA_NUM_THREADS} threads numba can use here"
            )
        numba.set_num_threads(threads)
        torch.set_num_threads(threads)
    return previous


def _threading_layer() -> str:
    """numba's threading layer (known once a parallel kernel has run), or "n/a"."""
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:
        return "n/a"


def _load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def _print_table(result: dict[str, Any]) -> None:
    print(
        f"events benchmark: {result['machine']}, {result['cpus']} CPUs, {result['threads']} threads "
        f"(numba threading layer: {result['threading_layer']}, OMP_WAIT_POLICY={result['omp_wait_policy']}), "
        f"load average before: {result['load_average']}"
    )
    print(f"first voxel_grid call (JIT compile or cache load, excluded below): {result['first_call_s']:.2f} s")
    for v in result["voxel"]:
        print(
            f"voxel grid, {v['events']:,} events ({v['layout']}), {v['bins']} bins, {result['height']}x{result['width']}:"
        )
        print(f"  {'implementation':<28}{'time (ms)':>12}{'events/s':>16}{'CPU time (ms)':>16}")
        rows = (
            ("numba (normalized)", v["numba_s"], v["numba_cpu_s"]),
            ("numba (no normalization)", v["numba_no_normalize_s"], v["numba_no_normalize_cpu_s"]),
            ("torch reference", v["torch_reference_s"], v["torch_reference_cpu_s"]),
        )
        for label, wall, cpu in rows:
            print(f"  {label:<28}{wall * 1e3:>12.1f}{v['events'] / wall:>16,.0f}{cpu * 1e3:>16.1f}")
        print(f"  speed-up: {v['speedup']:.1f}x   max |numba - reference|: {v['max_abs_diff']:.2e}")
    load = result.get("load")
    if load:
        print(
            f"DSEC window ({WINDOW_US // 1000} ms, Blosc/ZSTD), {load['events_left']:,} + {load['events_right']:,} events, both cameras:"
        )
        print(f"  {'stage':<28}{'time (ms)':>12}{'CPU time (ms)':>16}")
        for stage, label in (
            ("slice", "slice (read + decompress)"),
            ("rectify", "rectify"),
            ("voxel", "voxel grid"),
            ("total", "total"),
        ):
            print(f"  {label:<28}{load[stage + '_s'] * 1e3:>12.1f}{load[stage + '_cpu_s'] * 1e3:>16.1f}")
        print(
            f"  {'DSECSequence.events + voxel':<28}{load['end_to_end_s'] * 1e3:>12.1f}{load['end_to_end_cpu_s'] * 1e3:>16.1f}"
        )
        label = "the same, run_pair" + ("" if load["pair_concurrent"] else " (sequential here)")
        print(f"  {label:<28}{load['pair_s'] * 1e3:>12.1f}{load['pair_cpu_s'] * 1e3:>16.1f}")
        print(
            f"  (writing the sequence took {load['write_sequence_s']:.1f} s, opening it {load['open_s'] * 1e3:.1f} ms)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table (and write ``--json``); returns the exit code."""
    args = build_parser().parse_args(argv)
    previous = _set_threads(args.threads)
    try:
        result = run(args)
    finally:
        _set_threads_back(previous)
    _print_table(result)
    if args.json is not None:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _set_threads_back(previous: tuple[int, int]) -> None:
    import numba
    import torch

    numba.set_num_threads(previous[0])
    torch.set_num_threads(previous[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything ``args`` asks for; returns the figures (seconds, events/s)."""
    import numba

    result: dict[str, Any] = {
        "machine": machine_description(),
        "cpus": os.cpu_count(),
        "threads": int(numba.get_num_threads()),
        "load_average": _load_average(),
        "height": args.height,
        "width": args.width,
        "first_call_s": first_call_s(args),
        "threading_layer": _threading_layer(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "voxel": [bench_voxel(args, layout) for layout in args.layouts],
    }
    if not args.no_load:
        result["load"] = bench_load(args)
    return result
