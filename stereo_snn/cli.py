"""The ``stereo-snn`` command line: parse arguments, call the library, nothing else.

Each application registers its subcommands from its own ``cli`` module (listed in
``_REGISTRARS``) so that the applications stay independent and heavy imports (torch)
happen only when a subcommand that needs them runs. Every registrar module exposes
``register(subparsers)`` and sets ``func`` on each parser it adds; ``func(args)``
returns an exit code (or None for 0).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import StereoSNNError

_REGISTRARS = [
    "stereo_snn.events.cli",
    "stereo_snn.search.cli",
    "stereo_snn.bench.cli",
    "stereo_snn.fit_cli",
    "stereo_snn.stereo.cli",
    "stereo_snn.stereo.cli_visualize",
    "classification.cli",
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="stereo-snn",
        description="Event-camera stereo with searched spiking neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"stereo-snn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _REGISTRARS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # application not present yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    where = ""
    try:
        where = _torchrun_process()
        code = args.func(args)
    except StereoSNNError as exc:
        print(f"stereo-snn {args.command}: error: {where}{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a real bug, keep the traceback
            raise
        print(f"stereo-snn {args.command}: error: {os_problem(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stereo-snn {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def os_problem(exc: OSError) -> str:
    """One line for an operating-system error about a file: the file, then the problem
    (permission problems said as such, never as a corrupt file)."""
    what = {
        PermissionError: "permission denied (check its permissions)",
        NotADirectoryError: "not a folder",
        IsADirectoryError: "is a folder, not a file",
        FileNotFoundError: "no such file or folder",
    }
    problem = next((text for kind, text in what.items() if isinstance(exc, kind)), exc.strerror or str(exc))
    return f"{exc.filename}: {problem}"


def _torchrun_process() -> str:
    """Under torchrun: ``"rank R: "`` for error messages, and the standard output of every rank
    but 0 silenced (they compute what rank 0 prints). ``""`` for one process. ConfigError for
    a half-set distributed environment."""
    import os

    from .distributed import context

    ctx = context()
    if not ctx.active:
        return ""
    if not ctx.is_main:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of this process
    return f"rank {ctx.rank}: "


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
