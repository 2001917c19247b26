"""``stereo-snn genotype show|energy``: inspect a genotype file, measure its networks' energy."""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``genotype`` command and its subcommands."""
    p = sub.add_parser("genotype", help="inspect a searched architecture (genotype JSON)")
    gsub = p.add_subparsers(dest="genotype_command", metavar="ACTION", required=True)
    show = gsub.add_parser("show", help="print the cells, level paths and neuron choices of a genotype file")
    show.add_argument("file", help="genotype JSON file")
    show.add_argument("--json", action="store_true", help="print the checked JSON instead of the summary")
    show.set_defaults(func=_show)
    en = gsub.add_parser("energy", help="measure a component's energy (spikingjelly op counters) and its ANN twin's")
    en.add_argument("file", help="genotype JSON file")
    en.add_argument("--component", default=None, help="component name (default: the only/first one)")
    en.add_argument(
        "--shape", required=True, help="input shape T,B,H,W (2D) or T,B,D,H,W (3D); channels come from the genotype"
    )
    en.add_argument("--rate", type=float, default=0.1, help="input spike probability per element (default 0.1)")
    en.add_argument("--seed", type=int, default=0, help="random seed of the input spikes and weights (default 0)")
    en.add_argument("--json", action="store_true", help="print the reports as JSON")
    en.set_defaults(func=_energy)


def _show(args: argparse.Namespace) -> int:
    from .genotype import genotype_to_dict, load_genotype

    g = load_genotype(args.file)
    if args.json:
        print(json.dumps(genotype_to_dict(g), indent=2))
        return 0
    print(f"{args.file}: genotype v{g.version}, created {g.created or '?'}")
    for name, comp in g.components.items():
        c = comp.config
        print(
            f"[{name}] {c.dim}D, in {c.in_channels} ch, {c.channels} ch at level 0, {c.layers} layers x "
            f"{c.steps} nodes, stem stride {c.stem_stride}, output level {c.out_level}"
        )
        print(f"[{name}] level path {list(comp.path)} (stride x{c.stem_stride} x 2^level)")
        for l, cell in enumerate(comp.cells):
            tau = (
                f"{cell.tau:.3f}"
                if isinstance(cell.tau, float)
                else f"per-channel {min(cell.tau):.2f}..{max(cell.tau):.2f}"
            )
            kind = cell.neuron if cell.spiking else "ANN (ReLU)"
            nodes = "; ".join(f"n{j}<-" + ",".join(f"{i}:{op}" for i, op in node) for j, node in enumerate(cell.edges))
            print(f"[{name}]  layer {l} @ level {comp.path[l]}: {kind}, tau {tau}, b {cell.surrogate_b:.2f} | {nodes}")
    return 0


def _energy(args: argparse.Namespace) -> int:
    import torch

    from ..runtime import seed_everything
    from .energy import ann_twin, energy_report
    from .genotype import load_genotype
    from .trellis import SpikingTrellis

    g = load_genotype(args.file)
    name = args.component or next(iter(g.components))
    if name not in g.components:
        raise ConfigError(f"--component {name!r}: {args.file} has {', '.join(g.components)}")
    comp = g.components[name]
    try:
        dims = [int(v) for v in args.shape.split(",")]
    except ValueError:
        raise ConfigError(f"--shape {args.shape!r}: comma-separated integers expected") from None
    if len(dims) != comp.config.dim + 2 or min(dims) < 1:
        want = "T,B,H,W" if comp.config.dim == 2 else "T,B,D,H,W"
        raise ConfigError(f"--shape {args.shape!r}: component {name!r} is {comp.config.dim}D, give {want} (>= 1)")
    if not 0.0 <= args.rate <= 1.0:
        raise ConfigError(f"--rate {args.rate}: must be in [0, 1]")
    seed_everything(args.seed)
    net = SpikingTrellis.from_genotype(comp)
    x = (torch.rand(dims[0], dims[1], comp.config.in_channels, *dims[2:]) < args.rate).float()
    snn, ann = energy_report(net, x), energy_report(ann_twin(net), x)
    if args.json:
        print(json.dumps({"component": name, "snn": snn.to_dict(), "ann_twin": ann.to_dict()}, indent=2))
        return 0
    print(f"[{name}] SNN, input {dims} spikes at rate {args.rate}:")
    print(snn.table())
    print(
        f"[{name}] ANN twin: compute {ann.compute_mj:.4e} mJ ({ann.macs} MACs, {ann.acs} ACs); "
        f"SNN / ANN compute energy = {snn.compute_mj / ann.compute_mj:.3f}"
    )
    return 0
