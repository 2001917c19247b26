"""Benchmarks (speed and memory), runnable as ``stereo-snn bench NAME`` or ``python tools/bench_NAME.py``.

Figures measured here go into the README; no test asserts on time.
"""
