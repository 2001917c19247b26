"""``stereo-snn search | train | evaluate | infer | energy | demo``: argument parsing only.

Heavy modules (torch, the engine) are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..atomic import check_output_path
from ..errors import ConfigError
from ..experiment import add_ablation_command
from ..settings import add_run_options

__all__ = ["register"]


# ------------------------------------------------------------------------------- shared options
def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HEIGHTxWIDTH, e.g. 120x160") from exc
    if h < 6 or w < 6:
        raise argparse.ArgumentTypeError(f"size {text!r}: height and width must be >= 6 pixels")
    return h, w


#: largest frame side accepted from --height/--width (pixels); event cameras today stay below 2000
MAX_FRAME_SIDE = 8192


def frame_side(text: str) -> int:
    """argparse type of --height/--width: a whole number of pixels in 1..MAX_FRAME_SIDE."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of pixels") from exc
    if not 1 <= value <= MAX_FRAME_SIDE:
        raise argparse.ArgumentTypeError(f"{value}: must be between 1 and {MAX_FRAME_SIDE} pixels")
    return value


def _overrides(items: list[str] | None) -> dict[str, Any]:
    from ..settings import parse_overrides

    return dict(parse_overrides(items, example="train.epochs=20"))


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        help="YAML/JSON config file or preset name: dsec / mvsec (the settings of the "
        "bundled 640x480 / 346x260 models), tiny (tests and quick smoke runs); default: the genotype's own settings (train), else dsec",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set train.epochs=20 --set max_disparity=36 (repeatable)",
    )


def _add_data(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--data", help="folder of DSEC sequence folders / MVSEC *_data.hdf5 files (or one of them)")
    p.add_argument("--format", choices=("dsec", "mvsec"), default="dsec", help="layout of --data (default dsec)")
    p.add_argument(
        "--mvsec-split",
        type=int,
        choices=(1, 2, 3),
        help="MVSEC indoor_flying protocol: train on split K's training frames (validation: its held-out frames)",
    )
    p.add_argument(
        "--simulate", type=int, metavar="N", help="simulate N DSEC-layout sequences into OUT/data first and use them"
    )
    p.add_argument(
        "--sim-size", type=_size, default=(120, 160), metavar="HxW", help="simulated frame size (default 120x160)"
    )
    p.add_argument("--sim-duration-ms", type=float, default=1000.0, help="simulated sequence length (default 1000 ms)")
    p.add_argument("--sim-seed", type=int, default=0, help="seed of the first simulated sequence (default 0)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when present, else CPU)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _sources(args: argparse.Namespace, out: Path) -> list:
    from .data import open_sources

    if args.simulate:
        from ..events.simulator import make_demo_sequences

        if args.data:
            raise ConfigError("give either --data or --simulate, not both")
        from ..distributed import context

        if context().active:
            raise ConfigError(
                "--simulate under torchrun: every process would write the same sequences; simulate "
                "them with one process first (stereo-snn simulate), then give --data"
            )
        paths = make_demo_sequences(
            out / "data",
            args.simulate,
            seed=args.sim_seed,
            size=args.sim_size,
            duration_ms=args.sim_duration_ms,
            progress=not args.no_progress,
        )
        return open_sources(paths[0].parent, "dsec")
    if not args.data:
        raise ConfigError("no data: give --data FOLDER (with --format dsec|mvsec) or --simulate N")
    if args.mvsec_split:
        from .data import mvsec_protocol_sources

        return mvsec_protocol_sources(args.data, args.mvsec_split, "train")
    return open_sources(args.data, args.format)


def _config(args: argparse.Namespace, genotype: Any = None):
    from .config import StereoConfig, load_config

    sets = _overrides(args.set)
    if args.config is None and genotype is not None and "stereo_config" in genotype.settings:
        cfg = StereoConfig.from_dict(genotype.settings["stereo_config"], "genotype settings.stereo_config")
        return cfg.replace(**sets) if sets else cfg
    return load_config(args.config, sets)


# ------------------------------------------------------------------------------------ commands
def _cmd_search(args: argparse.Namespace) -> int:
    from ..fit import prepare_run_dir
    from ..runtime import set_threads
    from .search import run_search

    set_threads(args.threads)
    out = prepare_run_dir(args.out, overwrite=args.overwrite).root
    if args.derive_from:
        from .search import derive_from_supernet

        if args.data or args.simulate or args.config:
            raise ConfigError(
                "--derive-from decodes a saved supernet: give no --data, --simulate or --config "
                "(--set changes its decoding settings, e.g. network.max_skip)"
            )
        derive_from_supernet(args.derive_from, out, _overrides(args.set))
        return 0
    cfg = _config(args)
    sources = _sources(args, out)
    run_search(
        cfg, sources, out, seed=args.seed, device=args.device, max_batches=args.max_batches, overwrite=args.overwrite
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ..fit import prepare_run_dir
    from ..runtime import set_threads
    from ..search import load_genotype
    from .data import open_sources, split_validation
    from .train import train_genotype

    if args.until_epoch is not None:
        raise ConfigError("--until-epoch was replaced by --epochs-this-run N (the epochs to run in this session)")
    set_threads(args.threads)
    genotype = load_genotype(args.genotype)
    cfg = _config(args, genotype)
    out = prepare_run_dir(args.out, resume=args.resume, overwrite=args.overwrite).root
    sources = _sources(args, out) if not (args.resume and args.simulate) else open_sources(out / "data", "dsec")
    sources, val = split_validation(sources, args.val_count, args.val_data, args.format, args.data, args.mvsec_split)
    res = train_genotype(
        cfg,
        genotype,
        sources,
        val,
        out,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
        epochs_this_run=args.epochs_this_run,
        overwrite=args.overwrite,
        init=args.init,
    )
    print(f"trained {res.epochs} epoch(s); best: {json.dumps(res.best)}")
    print(f"checkpoints: {res.run_dir / 'checkpoints'}")
    return 0


def _predictor(args: argparse.Namespace, recordings: list):
    """The model for ``recordings``: --checkpoint (checked against the sensor size it was trained
    on unless --any-size), else the bundled model of their layout and size."""
    from .infer import Predictor
    from .models import check_sensor_size, choose_checkpoint
    from .network import load_model

    path = choose_checkpoint(recordings, args.checkpoint)
    loaded = load_model(path, args.device, getattr(args, "genotype", None))
    if not getattr(args, "any_size", False):
        check_sensor_size(recordings, loaded.info.get("data_size"), str(path))
    return Predictor(loaded.model, loaded.config, args.device), loaded


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import open_sources
    from .evaluate import evaluate_sources, range_warning, results_table
    from .infer import skip_summary
    from .metrics import Regions

    if args.json:
        check_output_path(args.json, [args.data, args.checkpoint, args.genotype], "--json")
    regions = Regions(near_px=args.near_px, edge_radius_px=args.edge_radius)
    if args.mvsec_split:
        from .data import mvsec_protocol_sources

        sources = mvsec_protocol_sources(args.data, args.mvsec_split, "test")
    else:
        sources = open_sources(args.data, args.format)
    predictor, _ = _predictor(args, sources)
    out_json = args.json or None
    result = evaluate_sources(
        predictor, sources, baseline=args.baseline, out_json=out_json, progress=not args.no_progress, regions=regions
    )
    print(results_table(result))
    warning = range_warning(result)
    if warning:
        print(warning)
    print(f"evaluated {len(result['per_image'])} window(s), {skip_summary(result['skipped'])}")
    if out_json:
        print(f"written: {out_json}")
    # consistent with infer and visualize: nothing evaluated is a failure
    return 0 if result["per_image"] else 1


def _timestamps(text: str | None) -> list[int] | None:
    if text is None:
        return None
    p = Path(text)
    raw = p.read_text(encoding="utf-8").replace(",", " ").split() if p.is_file() else text.replace(",", " ").split()
    try:
        return [int(float(v)) for v in raw if not v.startswith("#")]
    except ValueError as exc:
        raise ConfigError(f"--timestamps {text!r}: expected microsecond integers (comma separated or a file)") from exc


def _open_input(args: argparse.Namespace, window_us: int):
    """The recording named by a command's ``source`` / ``--format`` / ``--right`` / ``--test-csv``
    / ``--height`` / ``--width`` arguments (``window_us``: a generic pair's window length)."""
    from .data import open_source

    return open_source(
        args.source,
        args.format,
        right=args.right,
        test_csv=args.test_csv,
        height=args.height,
        width=args.width,
        window_us=window_us,
    )


def _cmd_infer(args: argparse.Namespace) -> int:
    from ..atomic import ensure_dir, write_json
    from ..events.dsec import zip_submission
    from .infer import infer_source, skip_summary

    inputs = [args.source, args.right, args.test_csv, args.checkpoint, args.genotype, args.timestamps]
    if args.zip:
        check_output_path(args.zip, inputs, "--zip")
    check_output_path(args.out, inputs, "--out", folder=True)
    out = ensure_dir(args.out)

    source = _open_input(args, 50_000)
    predictor, _ = _predictor(args, [source])
    if getattr(source, "window_us", predictor.window_us) != predictor.window_us:
        source = _open_input(args, int(predictor.window_us))  # generic files: one window per model window
    entries = source.entries_for(_timestamps(args.timestamps))
    report = infer_source(
        predictor,
        source,
        out,
        entries=entries,
        npy=args.npy,
        depth=args.depth,
        preview=args.preview,
        progress=not args.no_progress,
    )
    if args.zip:
        report.zip_path = zip_submission(out, args.zip)
    write_json(out / f"{source.name}_report.json", report.to_dict())
    print(
        f"{source.name}: wrote {len(report.written)} disparity PNG(s) to {out / source.name}, "
        f"{skip_summary(report.skipped)}"
    )
    if report.zip_path:
        print(f"zip: {report.zip_path}")
    return 0 if report.written or not entries else 1


def _cmd_energy(args: argparse.Namespace) -> int:
    import tempfile

    from ..atomic import write_json
    from .data import DSECSource, open_source
    from .energy import energy_table, first_window, measure_energy

    if args.json:
        check_output_path(args.json, [args.data, args.checkpoint, args.genotype], "--json")
    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            source = open_source(args.data, args.format)
            predictor, loaded = _predictor(args, [source])
        else:
            from ..events.simulator import make_demo_sequences
            from .models import default_checkpoint

            if args.checkpoint is None:
                args.checkpoint = str(default_checkpoint())
            predictor, loaded = _predictor(args, [])
            size = args.size or tuple(loaded.info.get("data_size") or (120, 160))
            source = DSECSource(make_demo_sequences(tmp, 1, seed=args.seed, size=size, duration_ms=300.0)[0])
        left, right = first_window(predictor, source)
        result = measure_energy(predictor, left, right, source.height, source.width)
    print("SNN (ours):")
    print(result.snn.table())
    print("\nall-ANN twin:")
    print(result.ann.table())
    print()
    print(energy_table(result))
    if args.json:
        write_json(args.json, result.to_dict())
        print(f"written: {args.json}")
    return 0


def _cmd_reconfigure(args: argparse.Namespace) -> int:
    from .network import reconfigure_checkpoint

    overrides = _overrides(args.set)
    reconfigure_checkpoint(args.checkpoint, overrides, args.out)
    print(f"wrote {args.out}: {args.checkpoint} with " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(
        args.out,
        checkpoint=args.checkpoint,
        size=args.size,
        duration_ms=args.duration_ms,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    return 0


def _cmd_ablations(args: argparse.Namespace) -> int:
    from ..experiment import plan_from_args, print_summary, run_ablations
    from .ablations import PLANS_DIR, StereoAblation

    plan = plan_from_args(args, PLANS_DIR)
    app = StereoAblation(plan, Path(args.out), device=args.device)
    summary = run_ablations(app, plan, args.out, resume=args.resume, overwrite=args.overwrite)
    print_summary(summary, args.out)
    return 0


# ----------------------------------------------------------------------------------- registrar
def register(sub: argparse._SubParsersAction) -> None:
    """Add the stereo subcommands to the ``stereo-snn`` parser."""
    from .demo import DEMO_SEED

    p = sub.add_parser(
        "search",
        help="bilevel architecture search of the stereo network",
        description="Search feature (2D) and matching (3D) cells and layer paths on DSEC, MVSEC "
        "or simulated sequences; writes OUT/genotype.json, figures and curves.",
    )
    p.add_argument("--out", required=True, help="run folder")
    _add_data(p)
    _add_config(p)
    _add_common(p)
    p.add_argument("--max-batches", type=int, default=None, help="limit batches per epoch (quick trials)")
    add_run_options(p, resume=False)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument(
        "--derive-from",
        metavar="SUPERNET",
        help="no search: decode this saved supernet (OUT/supernet.pt of an earlier search) again, "
        "with --set decoding settings such as network.max_skip=0",
    )
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser(
        "train",
        help="retrain a genotype (checkpoints every epoch, --resume)",
        description="Train the fixed network of a genotype file; smooth L1 or sub-pixel CE on "
        "valid pixels, crops and vertical flips, atomic checkpoints, exact --resume.",
    )
    p.add_argument("--genotype", required=True, help="genotype JSON from `stereo-snn search`")
    p.add_argument("--out", required=True, help="run folder (checkpoints/, metrics.json, tb/)")
    _add_data(p)
    p.add_argument("--val-data", help="validation sequences (default: the last --val-count training sequences)")
    p.add_argument("--val-count", type=int, default=1, help="sequences held out for validation when no --val-data")
    p.add_argument(
        "--init",
        help="start from the weights of this stereo checkpoint (same genotype and network "
        "settings; fine-tuning, e.g. a DSEC model to MVSEC data)",
    )
    _add_config(p)
    _add_common(p)
    add_run_options(p, resume=True)
    p.add_argument("--until-epoch", type=int, default=None, help=argparse.SUPPRESS)  # replaced by --epochs-this-run
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.set_defaults(func=_cmd_train)

    def model_opts(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--checkpoint",
            help="trained checkpoint (default: the bundled model of the recording's "
            "layout and sensor size: DSEC 640x480 or MVSEC 346x260)",
        )
        q.add_argument(
            "--any-size",
            action="store_true",
            help="run a --checkpoint on recordings of another sensor size than it was trained on",
        )
        q.add_argument("--genotype", help="build the network from this genotype file instead of the checkpoint's")
        q.add_argument("--device", default=None, help="cpu, cuda (default: CUDA when present)")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("evaluate", help="DSEC or MVSEC metrics of a model (and SGBM beside it)")
    p.add_argument("data", help="DSEC sequence folder(s) root or MVSEC files folder")
    p.add_argument("--format", choices=("dsec", "mvsec"), default="dsec")
    p.add_argument("--baseline", choices=("sgbm",), default=None, help="also evaluate OpenCV SGBM on the same windows")
    p.add_argument(
        "--mvsec-split",
        type=int,
        choices=(1, 2, 3),
        help="MVSEC indoor_flying protocol: evaluate split K's test frames (data = folder of *_data.hdf5)",
    )
    p.add_argument("--json", help="write the metrics (means, per sequence, per image, skipped windows) here")
    p.add_argument(
        "--near-px",
        type=float,
        default=None,
        metavar="PX",
        help="'near' pixels: gt disparity > PX (default: gt > 1.5 x the median of each image's valid "
        "gt, i.e. closer than 2/3 of its median depth, whatever the dataset's disparity range)",
    )
    p.add_argument(
        "--edge-radius",
        type=int,
        default=2,
        metavar="PX",
        help="'edge' pixels: valid pixels within PX of a gt disparity jump > 1 px between "
        "neighbouring valid pixels (default 2)",
    )
    model_opts(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("infer", help="disparity PNGs (DSEC submission layout) from event recordings")
    p.add_argument("source", help="DSEC sequence folder, MVSEC *_data.hdf5, or the left camera's event file")
    p.add_argument("--out", required=True, help="output root: OUT/<seq>/<6-digit index>.png")
    p.add_argument("--format", choices=("auto", "dsec", "mvsec", "generic"), default="auto")
    p.add_argument("--right", help="right camera's event file (generic files)")
    p.add_argument("--height", type=frame_side, help="frame height of generic files (default: from the files)")
    p.add_argument("--width", type=frame_side, help="frame width of generic files (default: from the files)")
    p.add_argument(
        "--timestamps",
        help="window end times in microseconds: 't1,t2,...' or a text file "
        "(default: the ground-truth / test entries, or every window for generic files)",
    )
    p.add_argument("--test-csv", help="DSEC test csv (<seq>.csv) or its folder, when not inside the sequence folder")
    p.add_argument("--zip", help="also zip OUT/<seq>/*.png into this submission file")
    p.add_argument("--npy", action="store_true", help="also write float32 disparity .npy (OUT/<seq>/extra/)")
    p.add_argument("--depth", action="store_true", help="also write depth in metres .npy from the calibration")
    p.add_argument("--preview", action="store_true", help="also write colour previews")
    model_opts(p)
    p.set_defaults(func=_cmd_infer)

    p = sub.add_parser("energy", help="measured energy per frame of a model and of its all-ANN twin")
    p.add_argument("--data", help="sequence to measure on (default: a simulated one)")
    p.add_argument("--format", choices=("auto", "dsec", "mvsec"), default="auto")
    p.add_argument("--size", type=_size, help="simulated frame size HxW (default: the model's training size)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help="seed of the simulated sequence")
    p.add_argument("--json", help="write the report here")
    model_opts(p)
    p.set_defaults(func=_cmd_energy)

    p = sub.add_parser(
        "reconfigure",
        help="a trained checkpoint with other weight-free settings (network.coarse_window), no retraining",
    )
    p.add_argument("checkpoint", help="trained stereo checkpoint")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="e.g. --set network.coarse_window=1")
    p.add_argument("--out", required=True, help="the new checkpoint (a new file)")
    p.set_defaults(func=_cmd_reconfigure)

    p = add_ablation_command(sub, "cpu", "stereo search")
    p.add_argument("--device", default=None, help="cpu, cuda (default: CUDA when present)")
    p.set_defaults(func=_cmd_ablations)

    p = sub.add_parser("demo", help="simulate an unseen sequence, run the bundled model, compare with SGBM")
    p.add_argument("--out", default="stereo-snn-demo", help="output folder (default ./stereo-snn-demo)")
    p.add_argument("--checkpoint", help="model checkpoint (default: the bundled model)")
    p.add_argument("--size", type=_size, help="frame size HxW (default: the model's training size)")
    p.add_argument("--duration-ms", type=float, default=600.0, help="sequence length (default 600 ms: 5 windows)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help=f"simulation seed (default {DEMO_SEED})")
    p.add_argument("--device", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_demo)
