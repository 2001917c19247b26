"""Fast paths of the event pipeline against plain numpy: the branch-free rectify kernels
(serial and chunked parallel) and the reader's fused window check/convert pass."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import stereo_snn.events.rectify as rect
from stereo_snn.events.recording import Events
from stereo_snn.events.rectify import rectify_events

H, W = 30, 40
BLOCK = 64  # events per block; the last 20 of every block map outside the frame


def blocky_events() -> tuple[Events, np.ndarray]:
    """Events whose every block of BLOCK ends with 20 events that rectify outside the frame
    (x >= 32 maps to NaN), so that every parallel chunk ends with dropped events."""
    chunks = 4 * numba.get_num_threads()  # the parallel kernel's chunk count
    n = BLOCK * chunks * 5  # chunk size is a whole number of blocks
    rng = np.random.default_rng(4)
    i = np.arange(n)
    outside = (i % BLOCK) >= BLOCK - 20
    x = np.where(outside, rng.integers(32, W, n), rng.integers(0, 32, n)).astype(np.uint16)
    y = rng.integers(0, H, n).astype(np.uint16)
    t = np.sort(rng.integers(0, 10_000, n)).astype(np.int64) + 5_000_000
    p = rng.integers(0, 2, n).astype(np.int8)
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    rmap = np.stack([xs * 0.9 + 0.3, ys * 0.95 + 0.2], axis=-1).astype(np.float32)
    rmap[:, 32:] = np.nan
    return Events(x, y, t, p), rmap


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("keep_outside", [False, True])
def test_rectify_kernels_with_dropped_chunk_tails(monkeypatch, parallel: bool, keep_outside: bool) -> None:
    ev, rmap = blocky_events()
    if parallel:
        monkeypatch.setattr(rect, "PARALLEL_MIN_THREADS", 1)
        monkeypatch.setattr(rect, "PARALLEL_MIN_EVENTS", 1)
    got = rectify_events(ev, rmap, keep_outside=keep_outside)
    xr, yr = rmap[ev.y, ev.x, 0], rmap[ev.y, ev.x, 1]
    keep = np.ones(len(ev), bool) if keep_outside else np.isfinite(xr)
    assert 0 < keep.sum() <= len(ev) and (keep_outside or keep.sum() < len(ev))
    np.testing.assert_array_equal(got.x, xr[keep])
    np.testing.assert_array_equal(got.y, yr[keep])
    np.testing.assert_array_equal(got.t, ev.t[keep])
    np.testing.assert_array_equal(got.p, ev.p[keep])
    assert got.t.dtype == ev.t.dtype and got.p.dtype == ev.p.dtype and got.x.dtype == np.float32


def test_rectify_frame_edges_are_half_open() -> None:
    # rectified x == W or y == H is outside, x == 0 inside, just below W inside
    rmap = np.zeros((2, 3, 2), np.float32)
    rmap[0, 0] = (0.0, 0.0)
    rmap[0, 1] = (3.0, 1.0)  # x == W
    rmap[0, 2] = (np.nextafter(np.float32(3), np.float32(0)), 1.9)
    rmap[1, 0] = (1.0, 2.0)  # y == H
    rmap[1, 1] = (-1e-7, 1.0)
    rmap[1, 2] = (np.inf, 1.0)
    x = np.array([0, 1, 2, 0, 1, 2], np.uint16)
    y = np.array([0, 0, 0, 1, 1, 1], np.uint16)
    ev = Events(x, y, np.arange(6, dtype=np.int64), np.ones(6, np.int8))
    got = rectify_events(ev, rmap)
    np.testing.assert_array_equal(got.t, [0, 2])
