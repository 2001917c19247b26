"""``stereo-snn bench events|gpu|search|stereo``: run a benchmark and print its figures."""

from __future__ import annotations

import argparse
import importlib

_BENCHES = {
    "events": "stereo_snn.bench.events",
    "gpu": "stereo_snn.bench.gpu",
    "search": "stereo_snn.bench.search",
    "stereo": "stereo_snn.bench.stereo",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a speed/memory benchmark (events, search, stereo) or the GPU check (gpu)")
    p.add_argument("name", choices=sorted(_BENCHES), help="which benchmark")
    p.add_argument("options", nargs=argparse.REMAINDER, help="options passed to the benchmark (see --help of each)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(_BENCHES[args.name])
    return int(module.main(args.options) or 0)
