"""Benchmarks (speed and memory), runnable as ``stereo-snn bench NAME`` or ``python tools/bench_NAME.py``.

Figures measured here go into docs/benchmarks.md (headline figures also into the README); no test asserts on time.
"""

from __future__ import annotations

import platform
import resource

__all__ = ["machine_description", "peak_rss_mib"]


def machine_description() -> str:
    """Architecture and processor (or OS) name of this machine, for benchmark headers."""
    return f"{platform.machine()} {platform.processor() or platform.system()}".strip()


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
