"""Left and right camera work at the same time.

A stereo window needs the same chain twice (slice, rectify, represent), once per camera,
and the two chains share nothing. On a few cores, running them side by side, each with half
of numba's threads, beats running them one after the other with all threads each: every
kernel then has fewer threads to synchronise and its working set stays in one core's cache.
The numba kernels of :mod:`stereo_snn.events` release the GIL (``nogil=True``); h5py reads
still take h5py's own lock, so the two reads take turns while the rest overlaps.

Concurrent calls into numba's parallel kernels are safe with the ``omp`` and ``tbb``
threading layers only; with ``workqueue`` (or with one numba thread) :func:`run_pair` runs
the two calls one after the other. ``STEREO_SNN_PAIR=0`` in the environment does the same.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, TypeVar

import numba
import numpy as np
from numba import njit, prange

__all__ = ["run_pair", "pair_is_concurrent"]

A = TypeVar("A")
B = TypeVar("B")

#: numba threading layers whose parallel regions may be entered from several threads at once
CONCURRENT_LAYERS = ("omp", "tbb")


@njit(cache=True, nogil=True, parallel=True)
def _touch(out):  # pragma: no cover - compiled
    """Smallest parallel kernel: makes numba pick its threading layer."""
    for i in prange(out.shape[0]):
        out[i] = i


def pair_is_concurrent() -> bool:
    """True when :func:`run_pair` will run its two calls at the same time here."""
    if os.environ.get("STEREO_SNN_PAIR", "1").strip() in ("0", "false", "no", "off"):
        return False
    if numba.get_num_threads() < 2:
        return False
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet in this process: run one
        _touch(np.zeros(2, np.int64))
        layer = numba.threading_layer()
    return layer in CONCURRENT_LAYERS


def run_pair(left: Callable[[], A], right: Callable[[], B]) -> tuple[A, B]:
    """``(left(), right())``, computed at the same time when that is safe (see the module
    docstring), each with half of the calling thread's numba threads; otherwise one after
    the other. An exception in either call is raised here (the left one first)."""
    if not pair_is_concurrent():
        return left(), right()
    threads = numba.get_num_threads()
    half = threads // 2
    box: dict[str, object] = {}

    def right_job() -> None:
        numba.set_num_threads(half)  # numba's thread count is per calling thread
        try:
            box["value"] = right()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=right_job, name="stereo-snn-right-camera", daemon=True)
    worker.start()
    numba.set_num_threads(threads - half)
    try:
        left_value = left()
    finally:
        numba.set_num_threads(threads)
        worker.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return left_value, box["value"]  # type: ignore[return-value]
