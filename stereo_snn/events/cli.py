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
    "--objects": ("num_objects", int, "number of foreground objects"),
    "--ego-motion": ("ego_motion", float, "scale of the rig's jitter, forward motion and roll (0 = pure translation)"),
    "--object-motion": ("object_motion", float, "scale of the objects' own motion and spin (0 = static objects)"),
    "--gt-rate": ("gt_rate_hz", float, "ground-truth maps per second (default 10)"),
    "--render-rate": ("render_rate_hz", float, "rendered frames per second fed to the event model"),
    "--threshold": ("threshold_pos", float, "contrast threshold C+ and C- (log intensity)"),
    "--threshold-sigma": ("threshold_sigma", float, "per-pixel threshold mismatch (std, log intensity)"),
    "--refractory-us": ("refractory_us", int, "pixel refractory period (microseconds)"),
    "--noise-rate": ("noise_rate_hz", float, "shot-noise events per pixel per second"),
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
    p.add_argument("--format", choices=("dsec", "mvsec"), default="dsec", help="output layout (default dsec)")
    p.add_argument("--sequences", type=int, default=1, help="number of sequences (default 1)")
    p.add_argument("--textures", help="comma-separated texture kinds (noise,checkers,stripes,blobs,photo)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    for flag, (_, kind, text) in _FLAGS.items():
        p.add_argument(flag, type=kind, help=text)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from .simulator import SimConfig, summarize, write_sequences

    settings: dict[str, object] = {}
    for flag, (field, _, _) in _FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            settings[field] = value
    if args.threshold is not None:
        settings["threshold_neg"] = args.threshold
    if args.textures is not None:
        settings["textures"] = args.textures
    config = SimConfig.from_dict(settings)

    def report(recording, path: Path) -> None:
        print(f"{summarize(recording)} -> {path}", flush=True)

    paths = write_sequences(config, args.out, args.format, count=args.sequences,
                            progress=not args.no_progress, on_done=report)
    print(f"wrote {len(paths)} {args.format.upper()} sequence(s) under {args.out}")
    return 0
