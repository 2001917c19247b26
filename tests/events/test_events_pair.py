"""run_pair: both cameras at the same time, same results as one after the other."""

from __future__ import annotations

import threading

import numba
import numpy as np
import pytest

from stereo_snn.events.pair import pair_is_concurrent, run_pair
from stereo_snn.events.represent import sbt, voxel_grid

H, W = 40, 56


def _events(seed: int, n: int = 20_000):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, W + 0.5, n).astype(np.float32)
    y = rng.uniform(-1.5, H + 0.5, n).astype(np.float32)
    t = np.sort(rng.integers(0, 50_000, n)).astype(np.int64) + 10**12
    p = rng.integers(0, 2, n).astype(np.int8)
    return x, y, t, p


def test_run_pair_gives_the_sequential_results() -> None:
    left, right = _events(1), _events(2)
    want = (voxel_grid(*left, 10, H, W), sbt(*right, 5, H, W))
    got = run_pair(lambda: voxel_grid(*left, 10, H, W), lambda: sbt(*right, 5, H, W))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert not np.array_equal(got[0][:5], got[1])  # two different inputs, not one result twice


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_run_pair_runs_the_two_calls_in_two_threads_with_half_the_threads_each() -> None:
    before = numba.get_num_threads()
    assert before >= 2 and pair_is_concurrent()
    seen = run_pair(
        lambda: (threading.get_ident(), numba.get_num_threads()),
        lambda: (threading.get_ident(), numba.get_num_threads()),
    )
    (left_thread, left_n), (right_thread, right_n) = seen
    assert left_thread == threading.get_ident() and right_thread != left_thread
    assert left_n + right_n == before and min(left_n, right_n) >= 1
    assert numba.get_num_threads() == before


def test_run_pair_is_sequential_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEREO_SNN_PAIR", "0")
    assert not pair_is_concurrent()
    here = threading.get_ident()
    assert run_pair(threading.get_ident, threading.get_ident) == (here, here)


@pytest.mark.parametrize("failing", ["left", "right"])
def test_run_pair_raises_the_error_of_either_call_and_restores_the_thread_count(failing: str) -> None:
    before = numba.get_num_threads()

    def boom() -> None:
        raise ValueError(f"{failing} failed")

    calls = {"left": (boom, lambda: 1), "right": (lambda: 1, boom)}[failing]
    with pytest.raises(ValueError, match=f"{failing} failed"):
        run_pair(*calls)
    assert numba.get_num_threads() == before
