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


# ----------------------------------------------------------------------------- reader fast path


def write_raw_h5(path, x, y, t, p, ms_to_idx=None, height=None, width=None) -> None:
    """A DSEC-layout file written column by column (no writer checks: may be unsorted)."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, arr in (("x", x), ("y", y), ("t", t), ("p", p)):
            f.create_dataset(f"events/{name}", data=arr, chunks=(1024,))
        f.create_dataset("t_offset", data=np.int64(7_000_000))
        if ms_to_idx is not None:
            f.create_dataset("ms_to_idx", data=ms_to_idx)
        if height is not None:
            f.attrs["height"], f.attrs["width"] = height, width


def raw_columns(n: int = 20_000, seed: int = 2):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, W, n).astype(np.uint16)
    y = rng.integers(0, H, n).astype(np.uint16)
    t = np.sort(rng.integers(100, 40_000, n)).astype(np.uint32)
    p = rng.integers(0, 2, n).astype(np.uint8)
    return x, y, t, p


@pytest.mark.parametrize("where", [1, 4095, 4096, 4097, 13_000, 19_999])
def test_reader_reports_the_first_problem_in_any_block(tmp_path, where: int) -> None:
    from stereo_snn.errors import EventFileError
    from stereo_snn.events.files import open_events

    x, y, t, p = raw_columns()
    cases = {
        "descent": (x, y, np.where(np.arange(t.size) == where, t[where - 1] - 1, t).astype(np.uint32), p),
        "polarity": (x, y, t, np.where(np.arange(p.size) == where, 3, p).astype(np.uint8)),
        "outside": (np.where(np.arange(x.size) == where, W, x).astype(np.uint16), y, t, p),
    }
    messages = {
        "descent": f"t decreases after event {where - 1}",
        "polarity": "found 0..3",
        "outside": f"event {where} at \\(x={W}, y={int(y[where])}\\) is outside the {W}x{H} sensor",
    }
    for name, cols in cases.items():
        path = tmp_path / f"{name}.h5"
        write_raw_h5(path, *cols, height=H, width=W)
        with open_events(path) as f, pytest.raises(EventFileError, match=messages[name]):
            f.read(0, x.size)
    # outside="drop" drops exactly the one event and keeps the rest, converted
    path = tmp_path / "outside.h5"
    with open_events(path, outside="drop") as f:
        got = f.read(0, x.size)
    keep = np.arange(x.size) != where
    np.testing.assert_array_equal(got.x, x[keep])
    np.testing.assert_array_equal(got.t, t[keep].astype(np.int64) + 7_000_000)
    assert got.p.dtype == np.int8 and np.array_equal(got.p, p[keep].astype(np.int8))


@pytest.mark.parametrize("pdtype", [np.uint8, np.int8, np.bool_, np.int16])
def test_reader_converts_signed_and_bool_columns(tmp_path, pdtype) -> None:
    from stereo_snn.events.files import open_events

    x, y, t, p = raw_columns(9000, seed=3)
    pv = (p > 0) if pdtype == np.bool_ else np.where(p > 0, 1, -1 if np.dtype(pdtype).kind == "i" else 0)
    path = tmp_path / "ev.h5"
    write_raw_h5(path, x.astype(np.int32), y.astype(np.int64), t.astype(np.int64), pv.astype(pdtype), height=H, width=W)
    with open_events(path) as f:
        got = f.read(100, 8900)
    np.testing.assert_array_equal(got.t, t[100:8900].astype(np.int64) + 7_000_000)
    np.testing.assert_array_equal(got.p, (p[100:8900] > 0).astype(np.int8))
    assert got.x.dtype == np.uint16 and np.array_equal(got.x, x[100:8900]) and np.array_equal(got.y, y[100:8900])


def test_ms_index_lookup_matches_bisection(tmp_path) -> None:
    from stereo_snn.events.files import ms_to_idx_table, open_events

    x, y, t, p = raw_columns(20_000, seed=5)
    t[5000:5100] = t[5000]  # a burst of equal timestamps
    t = np.sort(t)
    write_raw_h5(tmp_path / "ms.h5", x, y, t, p, ms_to_idx=ms_to_idx_table(t), height=H, width=W)
    write_raw_h5(tmp_path / "plain.h5", x, y, t, p, height=H, width=W)
    rng = np.random.default_rng(0)
    rels = [
        -3000,
        -1,
        0,
        1,
        99,
        100,
        999,
        1000,
        1001,
        int(t[5000]),
        int(t[5000]) + 1,
        int(t[-1]),
        int(t[-1]) + 1,
        45_000,
    ]
    rels += [int(v) for v in rng.integers(-2000, 43_000, 40)]
    with open_events(tmp_path / "ms.h5") as fm, open_events(tmp_path / "plain.h5") as fp:
        assert fm.has_ms_to_idx and not fp.has_ms_to_idx
        for rel in rels:
            want = int(np.searchsorted(t.astype(np.int64), rel, "left"))
            assert fm.index_range(7_000_000 + rel, 7_000_000 + rel + 1)[0] == want
            assert fp.index_range(7_000_000 + rel, 7_000_000 + rel + 1)[0] == want
