"""``stereo-snn export``: a trained checkpoint of any application without its training state."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    p = sub.add_parser(
        "export",
        help="a trained checkpoint (stereo or classification) without the state only --resume needs",
        description=(
            "Write CHECKPOINT to --out without its optimiser moments, schedule, AMP scaler and RNG "
            "states: a smaller file to ship or bundle that infer, evaluate, --checkpoint and --init "
            "read as before. It cannot be resumed."
        ),
    )
    p.add_argument("checkpoint", help="a training checkpoint (e.g. RUN/checkpoints/best.pt)")
    p.add_argument("--out", required=True, help="the exported checkpoint (a new file)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from .fit import export_checkpoint

    before, after = export_checkpoint(args.checkpoint, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB (training state left out)")
    return 0
