"""``stereo-snn classify search|train|evaluate|energy|demo``: argument parsing only.

Heavy modules (torch, the engine) are imported inside the command functions, so that
``stereo-snn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from stereo_snn.experiment import add_ablation_command
from stereo_snn.settings import add_run_options, add_set_option

__all__ = ["register"]


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default=None,
        help="shipped recipe: cifar10, cifar100, imagenet, digits (the command picks NAME_search / NAME_train) "
        "or a full name such as cifar10_train; default: digits unless --config is given",
    )
    p.add_argument("--config", default=None, metavar="FILE", help="YAML settings file applied after the preset")
    add_set_option(p, "change one setting, e.g. --set train.epochs=10 --set data.root=datasets/cifar10 (repeatable)")


def _resolve(args: argparse.Namespace, command: str) -> Any:
    from .config import resolve_config

    preset = args.preset if args.preset or args.config else "digits"
    return resolve_config(preset, args.config, args.overrides, command=command)


def _cmd_search(args: argparse.Namespace) -> int:
    from .search import search_run

    result = search_run(_resolve(args, "search"), args.out, overwrite=args.overwrite)
    print(f"genotype written to {result.genotype_path}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from stereo_snn.fit import prepare_run_dir

    from .train import resume_config, train_run

    prepare_run_dir(args.out, resume=args.resume, overwrite=args.overwrite)  # refuses what must not be overwritten
    if args.resume:
        cfg = resume_config(args.out, args.overrides)
    else:
        cfg = _resolve(args, "train")
        if args.genotype:
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, genotype=args.genotype))
    result = train_run(
        cfg,
        args.out,
        resume=args.resume,
        epochs_this_run=args.epochs_this_run,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    m = result.metrics
    state = "finished" if result.finished else f"stopped after epoch {m['epochs_done']} (continue with --resume)"
    print(
        f"{state}: test top-1 {m['test_top1']:.2f}%  top-5 {m['test_top5']:.2f}%  (best top-1 {m['best_test_top1']:.2f}%) "
        f"-> {result.run.root}"
    )
    return 0


def _write_json(path: str | None, obj: dict[str, Any]) -> None:
    from stereo_snn.distributed import context

    if path and context().is_main:
        from stereo_snn.atomic import write_json

        write_json(path, obj)


def _check_json(args: argparse.Namespace) -> None:
    """Refuse --json on a folder or on the checkpoint before any work."""
    if args.json:
        from stereo_snn.atomic import check_output_path

        check_output_path(args.json, [args.checkpoint], "--json")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint

    _check_json(args)
    result = evaluate_checkpoint(args.checkpoint, args.overrides, device=args.device, progress=not args.no_progress)
    _write_json(args.json, result)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_energy(args: argparse.Namespace) -> int:
    from .evaluate import energy_checkpoint

    _check_json(args)
    result = energy_checkpoint(args.checkpoint, args.images, args.overrides, device=args.device)
    _write_json(args.json, result.to_dict())
    per = result.per_image()
    print(f"SNN ({result.dataset}, T={result.time_steps}, {result.images} images)\n{result.snn.table()}\n")
    print(f"ANN twin\n{result.ann.table()}\n")
    ratio = per["ann_over_snn_compute"]
    print(
        f"per image, compute (MAC+AC): SNN {per['snn']['compute_mj'] * 1e3:.4f} uJ, ANN twin {per['ann']['compute_mj'] * 1e3:.4f} uJ"
        + (f" (ANN/SNN {ratio:.2f}x)" if ratio else "")
    )
    print(
        f"per image, memory-access term (beside it): SNN {per['snn']['memory_mj'] * 1e3:.4f} uJ, "
        f"ANN twin {per['ann']['memory_mj'] * 1e3:.4f} uJ"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_summary, run_demo

    summary = run_demo(args.out, args.overrides, progress=not args.no_progress)
    print(demo_summary(summary))
    return 0


def _cmd_ablations(args: argparse.Namespace) -> int:
    from stereo_snn.experiment import plan_from_args, print_summary, run_ablations

    from .ablations import PLANS_DIR, ClassifyAblation

    plan = plan_from_args(args, PLANS_DIR)
    summary = run_ablations(ClassifyAblation(plan), plan, args.out, resume=args.resume, overwrite=args.overwrite)
    print_summary(summary, args.out)
    return 0


def register(subparsers: Any) -> None:
    """Add the ``classify`` command and its subcommands to the ``stereo-snn`` parser."""
    top = subparsers.add_parser(
        "classify",
        help="image classification with searched spiking networks (CIFAR, ImageNet, digits)",
        description="Search, train, evaluate and measure spiking image classifiers.",
    )
    sub = top.add_subparsers(dest="classify_command", metavar="SUBCOMMAND")
    top.set_defaults(func=lambda a: (top.print_help(sys.stderr), 2)[1])

    p = sub.add_parser("search", help="search an architecture; writes OUT/genotype.json")
    _config_args(p)
    p.add_argument("--out", required=True, help="run folder")
    add_run_options(p, resume=False)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("train", help="retrain a genotype; checkpoints every epoch, exact --resume")
    _config_args(p)
    p.add_argument("--genotype", default=None, metavar="FILE", help="genotype JSON (sets model.genotype)")
    p.add_argument("--out", required=True, help="run folder")
    add_run_options(p, resume=True)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    for name, helptext, func in (
        ("evaluate", "top-1/top-5 of a checkpoint on the test split", _cmd_evaluate),
        ("energy", "measured energy of a checkpoint and of its all-ANN twin", _cmd_energy),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("checkpoint", help="a training checkpoint (RUN/checkpoints/last.pt or best.pt)")
        add_set_option(p, "change a setting of the checkpoint's run, e.g. data.root=/data/cifar10")
        p.add_argument("--device", default=None, help="auto (default), cpu, cuda, ...")
        p.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON")
        if name == "energy":
            p.add_argument("--images", type=int, default=None, help="test images to measure (default: energy.images)")
        else:
            p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.set_defaults(func=func)

    p = add_ablation_command(sub, "digits", "classifier search")
    p.set_defaults(func=_cmd_ablations)

    p = sub.add_parser(
        "demo", help="search + train on the bundled digits (a few minutes on a CPU); prints accuracy and energy"
    )
    p.add_argument("--out", default="runs/classify-demo", help="run folder (default: runs/classify-demo)")
    add_set_option(p, "change a setting of both the search and the training, e.g. threads=2")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)
