"""``stereo-snn visualize``: pictures of an event recording (argument parsing only).

Event frames, voxel-grid bins, disparity and depth colour maps, error maps against the
ground truth, side-by-side panels with colour bars, and an animation over the sequence;
the drawing lives in :func:`stereo_snn.viz.visualize_sequence`. Windows that end at or
before the recording's first event (the first DSEC ground-truth map) are left out quietly
and counted in the summary line; windows that fail to draw are listed one per line.
"""

from __future__ import annotations

import argparse

from ..errors import ConfigError, DatasetError

__all__ = ["register"]

_DEFAULT_WHAT = "events,disparity,panel"


def _what(text: str) -> list[str]:
    items = [w.strip() for w in text.split(",") if w.strip()]
    if not items:
        raise ConfigError(f"--what {text!r}: give a comma-separated list, e.g. {_DEFAULT_WHAT}")
    return items


def _cmd_visualize(args: argparse.Namespace) -> int:
    from ..atomic import check_output_path, ensure_dir
    from ..viz import visualize_sequence
    from ..windows import read_windows, skip_summary
    from .cli import _open_input, _timestamps

    if not 0 < args.window_ms < float("inf"):
        raise ConfigError(f"--window-ms must be a positive, finite number of milliseconds, got {args.window_ms}")
    if args.max_disparity is not None and not 0 < args.max_disparity < float("inf"):
        raise ConfigError(f"--max-disparity must be a positive, finite number of pixels, got {args.max_disparity}")
    if args.stride < 1 or (args.limit is not None and args.limit < 1):
        raise ConfigError("--stride and --limit must be >= 1")
    if args.animation and not args.animation.lower().endswith((".gif", ".mp4")):
        raise ConfigError(f"--animation {args.animation}: must end in .gif or .mp4")
    if args.animation:
        check_output_path(
            args.animation, [args.source, args.right, args.test_csv, args.prediction, args.timestamps], "--animation"
        )
    what = _what(args.what)
    window_us = int(round(args.window_ms * 1000))
    source = _open_input(args, window_us)
    entries = source.entries_for(_timestamps(args.timestamps))[:: args.stride][: args.limit]
    start_us, _ = source.time_range_us()
    quiet: list[dict] = []  # windows before the first event: counted, not drawn
    todo = [w.entry for w in read_windows(entries, lambda e: e, quiet, start_us=start_us, window_us=window_us)]
    if entries and not todo:
        raise DatasetError(f"{source.name}: every window ends before the recording's first event ({start_us} us)")
    out = ensure_dir(args.out)
    report = visualize_sequence(
        source,
        out,
        todo,
        what=what,
        window_us=window_us,
        prediction_dir=args.prediction,
        animation=args.animation,
        fps=args.fps,
        max_disp=args.max_disparity,
        bins=args.bins,
        progress=not args.no_progress,
    )
    for skip in report.skipped:
        print(f"  skipped #{skip['index']} (t = {skip['t_us']} us): {skip['reason']}")
    scale = (
        f" (disparity colour scale 0-{report.max_disp:g} px)"
        if report.max_disp is not None and {"disparity", "error", "panel"} & set(what)
        else ""
    )
    drawn = len(todo) - len(report.skipped)
    print(
        f"{source.name}: wrote {len(report.written)} picture(s) for {drawn} window(s) to {out}{scale}, "
        f"{skip_summary(quiet + report.skipped)}"
    )
    if report.animation:
        print(f"animation: {report.animation}")
    return 0 if drawn > 0 else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``visualize`` subcommand."""
    from ..viz import VISUALIZE_ITEMS
    from .cli import frame_side

    p = sub.add_parser(
        "visualize",
        help="event frames, voxel grids, disparity/depth/error maps, panels, animations",
        description="Draw pictures of a DSEC sequence folder, an MVSEC *_data.hdf5 or a pair of generic "
        "event files, one set per window (the WINDOW-MS before each ground-truth/test timestamp "
        "or each --timestamps value): OUT/<item>/<6-digit index>.png.",
    )
    p.add_argument("source", help="DSEC sequence folder, MVSEC *_data.hdf5, or the left camera's event file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--format",
        choices=("auto", "dsec", "mvsec", "generic"),
        default="auto",
        help="layout of SOURCE (default: auto-detect)",
    )
    p.add_argument("--right", help="right camera's event file (generic files)")
    p.add_argument("--height", type=frame_side, help="frame height of generic files (default: from the files)")
    p.add_argument("--width", type=frame_side, help="frame width of generic files (default: from the files)")
    p.add_argument("--test-csv", help="DSEC test csv (<seq>.csv) or its folder, when not inside the sequence")
    p.add_argument(
        "--timestamps",
        help="window end times in microseconds: 't1,t2,...' or a text file "
        "(default: the ground-truth / test entries, or every window for generic files)",
    )
    p.add_argument("--window-ms", type=float, default=50.0, help="event window before each timestamp (default 50)")
    p.add_argument(
        "--what",
        default=_DEFAULT_WHAT,
        help=f"comma-separated pictures to draw, from {','.join(VISUALIZE_ITEMS)} (default {_DEFAULT_WHAT})",
    )
    p.add_argument(
        "--prediction",
        metavar="DIR",
        help="`stereo-snn infer` output (DIR/<seq>/<index>.png) to draw prediction and error panels",
    )
    p.add_argument("--animation", metavar="FILE", help="also write an animation over the windows (.gif or .mp4)")
    p.add_argument("--fps", type=float, default=5.0, help="animation frames per second (default 5)")
    p.add_argument(
        "--max-disparity",
        type=float,
        help="top of the disparity colour scale in pixels (default: from the ground truth and predictions)",
    )
    p.add_argument("--bins", type=int, default=10, help="voxel-grid bins for --what voxel (default 10)")
    p.add_argument("--stride", type=int, default=1, help="draw every STRIDE-th window (default 1)")
    p.add_argument("--limit", type=int, help="draw at most LIMIT windows")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_visualize)
