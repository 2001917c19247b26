"""``stereo-snn simulate``: write simulated stereo event sequences with ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

# command-line flag -> SimConfig field, for the settings that map one to one
_FLAGS: dict[str, tuple[str, type, str]] = {
    "--name": ("name", str, "sequence name; with --sequences N > 1 the names are NAME_000, NAME_001, ..."),
    "--duration-ms": ("duration_ms", float, "length of each sequence (ms)"),
    "--height": ("height", int, "sensor height (pixels)"),
    "--width": ("width", int, "sensor width (pixels)"),
    "--seed": ("seed", int, "random seed of the first sequence (the others use seed+1, seed+2, ...)"),
    "--max-disparity": ("max_disparity", float, "largest disparity in the scene (pixels; default 0.15*width)"),
    "--min-disparity": ("min_disparity", float, "disparity of the background plane (pixels; default max/4)"),
    "--baseline": ("baseline_m", float, "stereo baseline (metres)"),
    "--fx": ("fx", float, "rectified focal length (pixels; default 0.9*width)"),
    "--speed": ("speed_px_s", float, "image speed of the nearest point (pixels/s; default 1.0*width)"),
    "--objects": ("num_objects", int, "most foreground objects per sequence (each draws N/2 to N; default 14)"),
    "--thin-fraction": (
        "thin_fraction",
        float,
        "fraction of objects that are thin: poles, wires, bars, fences (default 0; presets 0.3)",
    ),
    "--slant-max": ("slant_max_deg", float, "largest tilt of a slanted object (degrees; default 60)"),
    "--ego-motion": ("ego_motion", float, "scale of the rig's rotations and oscillations (0 = translation only)"),
    "--object-motion": ("object_motion", float, "scale of the objects' own motion and spin (0 = static objects)"),
    "--gt-rate": ("gt_rate_hz", float, "ground-truth maps per second (default 10)"),
    "--windows-only": (
        "gt_window_ms",
        float,
        "render only the MS milliseconds before each ground-truth map (plus --warmup-ms); faster, no events elsewhere",
    ),
    "--warmup-ms": ("warmup_ms", float, "with --windows-only: lead-in rendered before each window (default 10)"),
    "--render-rate": (
        "render_rate_hz",
        str,
        "rendered frames per second fed to the event model, or 'auto' "
        "(lowest multiple of 50 Hz within the per-frame motion limit; the presets' choice)",
    ),
    "--threshold": ("threshold_pos", float, "contrast threshold C+ and C- (log intensity)"),
    "--threshold-sigma": ("threshold_sigma", float, "per-pixel threshold mismatch (std, log intensity)"),
    "--refractory-us": ("refractory_us", int, "pixel refractory period (microseconds)"),
    "--noise-rate": ("noise_rate_hz", float, "background-activity events per pixel per second (default 0.1)"),
    "--hot-pixels": ("hot_pixel_fraction", float, "fraction of hot pixels per camera (default 1e-4)"),
    "--hot-pixel-rate": ("hot_pixel_rate_hz", float, "events per second of each hot pixel (default 200)"),
    "--warp": ("warp", float, "strength of the raw-to-rectified camera warp (0 = identity maps)"),
    "--start-us": ("start_time_us", int, "absolute time of the first frame (microseconds)"),
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand to the ``stereo-snn`` parser."""
    p = sub.add_parser(
        "simulate",
        help="simulate stereo event sequences with ground-truth disparity (DSEC or MVSEC layout)",
        description="Render a moving textured stereo scene, turn it into events (ESIM model) and write "
        "complete DSEC sequence folders or MVSEC files with ground-truth disparity at 10 Hz.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per sequence)")
    p.add_argument(
        "--preset",
        help="named settings at a real dataset's native size, disparity range and file "
        "layout: dsec or mvsec (YAML files in stereo_snn/events/simulator/presets/); other flags "
        "override them",
    )
    p.add_argument("--format", choices=("dsec", "mvsec"), help="output layout (default: the preset's, else dsec)")
    p.add_argument("--sequences", type=int, default=1, help="number of sequences (default 1)")
    p.add_argument("--textures", help="comma-separated texture kinds (noise,checkers,stripes,blobs,photo)")
    p.add_argument("--layouts", help="comma-separated scene layouts to draw from (open,street,room; repeats weight)")
    p.add_argument("--motions", help="comma-separated rig motions to draw from (drive,sideways,sway; repeats weight)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    for flag, (_, kind, text) in _FLAGS.items():
        p.add_argument(flag, type=kind, help=text)
    p.set_defaults(func=_run)
    _register_photo(sub)


def _run(args: argparse.Namespace) -> int:
    from .simulator import SimConfig, load_preset, summarize, write_sequences

    fmt, settings = load_preset(args.preset) if args.preset is not None else ("dsec", {})
    if args.format is not None:
        fmt = args.format
    for flag, (field, _, _) in _FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            settings[field] = value
    if args.threshold is not None:
        settings["threshold_neg"] = args.threshold
    for key in ("textures", "layouts", "motions"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    config = SimConfig.from_dict(settings)

    def report(recording, path: Path) -> None:
        print(f"{summarize(recording)} -> {path}", flush=True)

    paths = write_sequences(config, args.out, fmt, count=args.sequences, progress=not args.no_progress, on_done=report)
    print(f"wrote {len(paths)} {fmt.upper()} sequence(s) under {args.out}")
    return 0


def _register_photo(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate-photo``: event sequences from a real stereo photograph pair (test data only)."""
    p = sub.add_parser(
        "simulate-photo",
        help="event sequences from a real stereo photo pair with ground truth (test data only)",
        description="Sway a camera rig in front of a real rectified stereo pair (scikit-image's Middlebury "
        "motorcycle, or your own files), turn the frames into events and write DSEC or MVSEC layout with "
        "the pair's ground-truth disparity. For evaluation only: never train or tune on these.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per sequence)")
    p.add_argument(
        "--format",
        choices=("dsec", "mvsec"),
        default="dsec",
        help="output layout and size: dsec 640x480 (default), mvsec 346x260",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--pair", choices=("motorcycle",), help="a bundled pair (scikit-image's Middlebury 2014 motorcycle)"
    )
    src.add_argument("--left", type=Path, help="left image file (then --right and --disparity are required)")
    p.add_argument("--right", type=Path, help="right image file")
    p.add_argument("--disparity", type=Path, help="left-view disparity: .pfm, .png or .npy; left x matches right x - d")
    p.add_argument(
        "--disparity-scale",
        type=float,
        help="disparity = stored value / SCALE (default 256 for 16-bit PNG as KITTI/DSEC, else 1)",
    )
    p.add_argument(
        "--fx",
        type=float,
        help="focal length of the input images in pixels (default: their width; only used for depth in the files)",
    )
    p.add_argument("--baseline", type=float, default=0.1, help="stereo baseline of your pair in metres (default 0.1)")
    p.add_argument("--name", help="sequence name (default: the pair's name); NAME_000, ... with --sequences > 1")
    p.add_argument("--sequences", type=int, default=1, help="number of sequences, seeds SEED, SEED+1, ... (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sway and the event model (default 0)")
    p.add_argument("--duration-ms", type=float, default=1000.0, help="length of each sequence (default 1000 ms)")
    p.add_argument("--height", type=int, help="output height (default: the layout's)")
    p.add_argument("--width", type=int, help="output width (default: the layout's)")
    p.add_argument("--max-disparity", type=float, help="refuse ground truth above this many pixels")
    p.add_argument("--speed", type=float, help="mean image speed of the sway, px/s (default 0.1 x width)")
    p.add_argument("--rotation-deg", type=float, default=0.2, help="roll amplitude in degrees (default 0.2)")
    p.add_argument("--zoom", type=float, default=0.01, help="zoom amplitude as a fraction (default 0.01)")
    p.add_argument("--render-rate", type=float, help="frames per second (default: motion <= 1 px per frame)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_photo)


def _run_photo(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from .simulator.photo_pair import PhotoSwayConfig, bundled_pair, load_photo_pair, write_photo_sequences

    if args.pair is not None:
        if args.right is not None or args.disparity is not None:
            raise ConfigError("pair: --right/--disparity belong to --left, not to --pair")
        pair = bundled_pair(args.pair)
    else:
        if args.right is None or args.disparity is None:
            raise ConfigError("left: --left needs --right and --disparity")
        pair = load_photo_pair(
            args.left,
            args.right,
            args.disparity,
            disparity_scale=args.disparity_scale,
            fx=args.fx,
            baseline_m=args.baseline,
        )
    config = PhotoSwayConfig(
        name=args.name or pair.name,
        layout=args.format,
        height=args.height,
        width=args.width,
        duration_ms=args.duration_ms,
        render_rate_hz=args.render_rate,
        speed_px_s=args.speed,
        rotation_deg=args.rotation_deg,
        zoom=args.zoom,
        max_disparity=args.max_disparity,
        seed=args.seed,
    )
    paths = write_photo_sequences(
        pair,
        config,
        args.out,
        count=args.sequences,
        progress=not args.no_progress,
        on_done=lambda info, path: print(f"{info.summary()} -> {path}", flush=True),
    )
    print(f"wrote {len(paths)} {args.format.upper()} sequence(s) under {args.out} (test data only: never train on it)")
    return 0
