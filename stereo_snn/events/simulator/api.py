"""Run the simulator: config -> StereoRecording, and recordings -> DSEC/MVSEC files."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from ...atomic import ensure_dir
from ...errors import ConfigError, OutputError
from ..recording import Events, StereoRecording
from .config import SimConfig
from .esim import EventGenerator
from .layouts import build_scene
from .scene import Scene, make_rectify_map

__all__ = [
    "simulate_stereo",
    "plan_sequences",
    "make_demo_sequences",
    "write_sequences",
    "summarize",
    "scene_for",
    "MAX_MOTION_PX_PER_FRAME",
]

MAX_MOTION_PX_PER_FRAME = 2.0  # linear interpolation between frames is trusted up to this motion

_CAMERAS = ("left", "right")


def _concat(chunks: list[Events]) -> Events:
    if not chunks:
        return Events(np.zeros(0, np.uint16), np.zeros(0, np.uint16), np.zeros(0, np.int64), np.zeros(0, np.int8))
    return Events(*(np.concatenate([c[i] for c in chunks]) for i in range(4)))


def simulate_stereo(config: SimConfig, progress: bool = False) -> StereoRecording:
    """Simulate a stereo event recording with ground-truth disparity.

    Frames are rendered one at a time at ``config.render_rate_hz`` for each camera (raw
    pixels, sampled through that camera's rectify map) and streamed into one
    :class:`~.esim.EventGenerator` per camera; only the current frame is kept in memory.
    Ground-truth disparity is rendered at ``config.gt_rate_hz`` from the first frame's time
    (inclusive) to the end of the span (inclusive) in the rectified left frame. With
    ``config.gt_window_ms`` set, only the frames of the ``gt_window_ms + warmup_ms`` before
    each ground-truth time are rendered (the event model restarts from settled reference
    levels at the start of each such span), so events exist only in those spans.

    Args:
        config: simulator settings (``None`` fields are resolved from the image size).
        progress: show a tqdm progress bar over rendered frames.

    Returns:
        A :class:`StereoRecording` whose events are raw integer pixels, t absolute µs
        (starting at ``config.start_time_us``, also its ``t_offset_us``), p in {0, 1}.

    Raises:
        ConfigError: impossible settings, e.g. scene motion too fast for the render rate.
    """
    cfg = config.resolved()
    root = np.random.SeedSequence(cfg.seed)
    scene_ss, lmap_ss, rmap_ss, lev_ss, rev_ss = root.spawn(5)
    scene = build_scene(cfg, np.random.default_rng(scene_ss))
    speed = scene.max_image_speed(cfg.duration_us * 1e-6)
    if cfg.render_rate_hz is None:
        cfg = dataclasses.replace(cfg, render_rate_hz=auto_render_rate(speed, cfg.gt_rate_hz))
    dt_us = cfg.frame_interval_us
    motion = speed * dt_us * 1e-6
    if motion > MAX_MOTION_PX_PER_FRAME:
        raise ConfigError(
            f"render_rate_hz: scene points move up to {motion:.2f} px per frame at {cfg.render_rate_hz} Hz "
            f"(limit {MAX_MOTION_PX_PER_FRAME}); raise render_rate_hz or lower speed_px_s/ego_motion/object_motion"
        )
    h, w = cfg.height, cfg.width
    maps = {
        "left": make_rectify_map(h, w, np.random.default_rng(lmap_ss), cfg.warp),
        "right": make_rectify_map(h, w, np.random.default_rng(rmap_ss), cfg.warp),
    }
    gens = {
        cam: EventGenerator(
            h,
            w,
            threshold_pos=cfg.threshold_pos,
            threshold_neg=cfg.threshold_neg,
            threshold_sigma=cfg.threshold_sigma,
            refractory_us=cfg.refractory_us,
            noise_rate_hz=cfg.noise_rate_hz,
            log_eps=cfg.log_eps,
            rng=np.random.default_rng(ss),
            hot_pixel_fraction=cfg.hot_pixel_fraction,
            hot_pixel_rate_hz=cfg.hot_pixel_rate_hz,
        )
        for cam, ss in zip(_CAMERAS, (lev_ss, rev_ss))
    }
    t0 = int(cfg.start_time_us)
    gt_period_us = 1e6 / cfg.gt_rate_hz
    gt_times = np.array(
        [t0 + int(round(i * gt_period_us)) for i in range(int(np.floor(cfg.duration_us / gt_period_us + 1e-9)) + 1)],
        np.int64,
    )
    if cfg.gt_window_ms is None:
        spans = [(t0, t0 + cfg.duration_us)]
    else:
        before_us = int(round((cfg.gt_window_ms + cfg.warmup_ms) * 1000))
        spans = merge_spans([(max(t0, int(g) - before_us), int(g)) for g in gt_times])
    samples = {
        cam: (np.ascontiguousarray(maps[cam][..., 0]), np.ascontiguousarray(maps[cam][..., 1])) for cam in _CAMERAS
    }
    chunks: dict[str, list[Events]] = {cam: [] for cam in _CAMERAS}
    buffers = {cam: (np.empty((h, w), np.float32), np.empty((h, w), np.float32)) for cam in _CAMERAS}
    frames = [span_frames(a, b, t0, dt_us) for a, b in spans]
    bar = tqdm(total=sum(map(len, frames)), desc=cfg.name, unit="frame", disable=not progress, leave=False)
    for span in frames:
        for k, t_us in enumerate(span):
            t_s = (t_us - t0) * 1e-6
            for cam in _CAMERAS:
                intensity, _ = scene.render(cam, *samples[cam], t_s, *buffers[cam])
                if k == 0:  # each span starts from settled reference levels
                    gens[cam].reset(intensity, t_us)
                else:
                    chunks[cam].append(gens[cam].step(intensity, t_us))
            bar.update()
    bar.close()
    gt = np.stack([scene.ground_truth((t - t0) * 1e-6) for t in gt_times]).astype(np.float32)
    return StereoRecording(
        name=cfg.name,
        height=h,
        width=w,
        left=_concat(chunks["left"]),
        right=_concat(chunks["right"]),
        rectify_left=maps["left"],
        rectify_right=maps["right"],
        gt_timestamps_us=gt_times,
        gt_disparity=gt,
        fx=scene.fx,
        fy=scene.fx,
        cx=scene.cx,
        cy=scene.cy,
        baseline_m=scene.baseline_m,
        t_offset_us=t0,
    )


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of closed time spans [a, b] (µs) as sorted, disjoint spans."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def span_frames(a: int, b: int, t0: int, dt_us: int) -> list[int]:
    """Frame times (µs) covering [a, b]: the points of the grid ``t0 + k * dt_us`` inside it,
    plus ``a`` and ``b`` themselves."""
    first = t0 + -(-(a - t0) // dt_us) * dt_us
    grid = list(range(first, b + 1, dt_us))
    return sorted({a, b, *grid})


def auto_render_rate(speed_px_s: float, gt_rate_hz: float) -> float:
    """The lowest multiple of 50 Hz (at least ``gt_rate_hz``) at which points moving at
    ``speed_px_s`` move at most :data:`MAX_MOTION_PX_PER_FRAME` per frame."""
    rate = 50.0 * math.ceil(speed_px_s / MAX_MOTION_PX_PER_FRAME / 50.0 - 1e-9)
    if rate > 1e6:
        raise ConfigError(
            f"render_rate_hz: auto would need {rate:g} Hz (above 1 MHz); lower speed_px_s/ego_motion/object_motion"
        )
    return max(rate, float(gt_rate_hz))


def scene_for(config: SimConfig) -> Scene:
    """The scene :func:`simulate_stereo` draws for ``config`` (same seed, same scene)."""
    cfg = config.resolved()
    return build_scene(cfg, np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(5)[0]))


def summarize(recording: StereoRecording) -> str:
    """One line: events per camera, ground-truth maps and the disparity range (pixels)."""
    valid = recording.gt_disparity[recording.gt_disparity > 0]
    rng = f"{valid.min():.1f}-{valid.max():.1f} px" if valid.size else "none valid"
    span_ms = (
        (recording.gt_timestamps_us[-1] - recording.gt_timestamps_us[0]) / 1000
        if len(recording.gt_timestamps_us)
        else 0
    )
    return (
        f"{recording.name}: {recording.width}x{recording.height}, {span_ms:.0f} ms, "
        f"events left {recording.left.count:,} right {recording.right.count:,}, "
        f"{len(recording.gt_timestamps_us)} GT maps, disparity {rng}"
    )


def _writer(fmt: str) -> Callable[[StereoRecording, Path], Path]:
    """The writer for ``fmt``: puts one recording into ``out/<name>/``, returns what it wrote
    (DSEC: the sequence folder; MVSEC: the ``<name>_data.hdf5`` file)."""
    if fmt == "dsec":
        from ..dsec import write_dsec_sequence

        return lambda rec, out: Path(write_dsec_sequence(rec, out))
    if fmt == "mvsec":
        from ..mvsec import scene_of, write_mvsec_recording

        # maps are per scene in MVSEC; every simulated sequence has its own warp, so each gets
        # its own folder and the scene name the reader derives from the file name
        return lambda rec, out: Path(write_mvsec_recording(rec, out / rec.name, scene_of(rec.name)))
    raise ConfigError(f"format: unknown output format {fmt!r} (choose dsec or mvsec)")


def _check_free(out_dir: Path, name: str) -> None:
    """Refuse to write into an existing non-empty ``out_dir/<name>``."""
    folder = out_dir / name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"{folder}: already exists and is not empty; choose another --out or --name")


def plan_sequences(
    config: Any, out_dir: str | os.PathLike, fmt: str, count: int
) -> tuple[Callable[[StereoRecording, Path], Path], Path, list[Any]]:
    """Check the output and plan ``count`` sequences before any is simulated.

    ``config`` is any frozen settings dataclass with ``name`` and ``seed`` fields; with
    ``count > 1`` sequence ``i`` gets name ``<name>_<i:03d>`` and seed ``seed + i``.

    Returns:
        (the writer for ``fmt``, the created output folder, one config per sequence).

    Raises:
        ConfigError: ``count < 1`` or an unknown format; OutputError: ``out_dir`` is not a
        writable folder or a sequence of the same name already exists there.
    """
    if count < 1:
        raise ConfigError(f"sequences: must be >= 1, got {count}")
    writer = _writer(fmt)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    ensure_dir(out)
    configs = [
        config if count == 1 else dataclasses.replace(config, name=f"{config.name}_{i:03d}", seed=config.seed + i)
        for i in range(count)
    ]
    for cfg in configs:
        _check_free(out, cfg.name)
    return writer, out, configs


def write_sequences(
    config: SimConfig,
    out_dir: str | os.PathLike,
    fmt: str = "dsec",
    count: int = 1,
    progress: bool = False,
    on_done: Callable[[StereoRecording, Path], Any] | None = None,
) -> list[Path]:
    """Simulate ``count`` sequences (seeds ``config.seed + i``, names ``<name>_<i:03d>`` when
    ``count > 1``) and write each into its own folder ``out_dir/<name>/``: a DSEC sequence
    folder, or the MVSEC files ``<name>_data.hdf5``, ``<name>_gt.hdf5`` and
    ``<scene>_{left,right}_{x,y}_map.txt`` (scene = name without its trailing number).

    Args:
        config: simulator settings of the first sequence.
        out_dir: output folder (created; existing sequences of the same name are refused).
        fmt: "dsec" or "mvsec".
        count: number of sequences.
        progress: show a progress bar per sequence.
        on_done: called with (recording, written path) after each sequence (e.g. to print).

    Returns:
        The written paths, one per sequence.

    Raises:
        ConfigError: bad settings; OutputError: the output folder is unwritable or a sequence
        of the same name already exists there.
    """
    writer, out, configs = plan_sequences(config, out_dir, fmt, count)
    paths = []
    for cfg in configs:
        recording = simulate_stereo(cfg, progress=progress)
        path = writer(recording, out)
        paths.append(path)
        if on_done is not None:
            on_done(recording, path)
    return paths


def make_demo_sequences(
    out_dir: str | os.PathLike,
    count: int,
    seed: int = 0,
    size: tuple[int, int] = (120, 160),
    duration_ms: float = 1000.0,
    progress: bool = False,
    **overrides: Any,
) -> list[Path]:
    """Make ``count`` small DSEC-layout sequences quickly (the stereo demo's dataset).

    Args:
        out_dir: folder that receives one sequence folder per sequence (``demo_000``, ...).
        count: number of sequences (seeds ``seed``, ``seed + 1``, ...).
        seed: seed of the first sequence.
        size: (height, width) in pixels.
        duration_ms: length of each sequence in milliseconds.
        progress: show progress bars.
        **overrides: any other :class:`SimConfig` setting.

    Returns:
        The sequence folders, in seed order.

    Raises:
        OutputError: a sequence folder of the same name already exists and is not empty
            (delete it, or reuse it instead of calling this again).
    """
    settings = {
        "name": "demo",
        "height": size[0],
        "width": size[1],
        "duration_ms": duration_ms,
        "seed": seed,
        **overrides,
    }
    config = SimConfig.from_dict(settings)
    if count == 1:
        config = SimConfig.from_dict({**settings, "name": f"{settings['name']}_000"})
    return write_sequences(config, out_dir, "dsec", count=count, progress=progress)
