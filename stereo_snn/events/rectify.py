"""Event rectification with a per-pixel lookup map (DSEC ``rectify_map.h5`` convention).

``rectify_map`` is float32 (H, W, 2): ``rectify_map[y, x]`` is the rectified, undistorted
(x, y) of raw sensor pixel (x, y). A rectified event is *inside* the frame when
``0 <= x < W`` and ``0 <= y < H`` (so ``floor`` of each coordinate is a valid pixel index);
non-finite map entries count as outside. No torch import here.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numba
import numpy as np

from ..atomic import atomic_path, check_readable
from ..errors import DatasetError, EventFileError
from .files import check_h5_filters, h5_errors
from .recording import Events

__all__ = [
    "rectify_events",
    "load_rectify_map",
    "write_rectify_map",
    "check_rectify_map",
    "check_rectify_plausible",
    "RECTIFY_DATASET",
]

#: dataset name inside rectify_map.h5 (DSEC)
RECTIFY_DATASET = "rectify_map"
#: the two-pass parallel kernel is used only with this many numba threads and events; on a
#: 2-core machine the one-pass serial kernel is as fast and does not suffer from busy cores
PARALLEL_MIN_THREADS = 4
PARALLEL_MIN_EVENTS = 1 << 18
#: a plausible rectification moves the median pixel by less than this share of the larger side
#: of the frame plus PLAUSIBLE_SHIFT_PX (real DSEC/MVSEC maps: a few pixels to tens of pixels)
PLAUSIBLE_SHIFT = 0.25
PLAUSIBLE_SHIFT_PX = 16.0


@numba.njit(cache=True, nogil=True)
def _rectify_range(
    x, y, t, p, rflat, width, fh, fw, keep_outside, i0, i1, j, j_end, out_x, out_y, out_t, out_p
):  # pragma: no cover - numba
    """Rectify events ``i0:i1`` with the flat map ``rflat`` (the (H, W, 2) map raveled; one
    index computation, both coordinates from one cache line) and write the kept ones in
    order from output index ``j``, never at or past ``j_end``; returns the next j.

    Branch-free compaction: every event is written at ``j`` and ``j`` advances only when
    it is kept, so a dropped event is overwritten by the next one.
    """
    zero = np.float32(0.0)
    # views indexed from 0: no negative-index wraparound code in the loop
    xs, ys, ts, ps = x[i0:i1], y[i0:i1], t[i0:i1], p[i0:i1]
    ox, oy, ot, op = out_x[j:j_end], out_y[j:j_end], out_t[j:j_end], out_p[j:j_end]
    limit = j_end - j
    kept = 0
    for i in range(i1 - i0):
        k = 2 * (np.int64(ys[i]) * width + np.int64(xs[i]))
        xr = rflat[k]
        yr = rflat[k + 1]
        if kept < limit:
            ox[kept] = xr
            oy[kept] = yr
            ot[kept] = ts[i]
            op[kept] = ps[i]
        # float32 comparisons joined by non-short-circuit &: no branches (NaN compares false)
        kept += keep_outside or ((xr >= zero) & (xr < fw) & (yr >= zero) & (yr < fh))
    return j + kept


@numba.njit(cache=True, nogil=True, parallel=True)
def _rectify_parallel(
    x, y, t, p, rflat, width, fh, fw, keep_outside, n_chunks, out_x, out_y, out_t, out_p
):  # pragma: no cover - numba
    """Two passes over chunks: count kept events per chunk, then rectify each chunk at its offset.

    Raw pixels must already be known to lie inside the map. Returns the number of kept events.
    """
    n = x.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    zero = np.float32(0.0)
    counts = np.zeros(n_chunks + 1, np.int64)
    for c in numba.prange(n_chunks):
        kept = 0
        for i in range(c * size, min(n, (c + 1) * size)):
            k = 2 * (np.int64(y[i]) * width + np.int64(x[i]))
            xr = rflat[k]
            yr = rflat[k + 1]
            kept += keep_outside or ((xr >= zero) & (xr < fw) & (yr >= zero) & (yr < fh))
        counts[c + 1] = kept
    offsets = np.cumsum(counts)
    for c in numba.prange(n_chunks):
        lo, hi = c * size, min(n, (c + 1) * size)
        _rectify_range(
            x,
            y,
            t,
            p,
            rflat,
            width,
            fh,
            fw,
            keep_outside,
            lo,
            hi,
            offsets[c],
            offsets[c + 1],
            out_x,
            out_y,
            out_t,
            out_p,
        )
    return offsets[n_chunks]


def check_rectify_map(
    rectify_map: np.ndarray, where: str = "rectify_map", error: type[Exception] = DatasetError
) -> np.ndarray:
    """Return ``rectify_map`` as C-contiguous float32 (H, W, 2), or raise ``error`` naming ``where``."""
    m = np.asarray(rectify_map)
    if m.ndim != 3 or m.shape[2] != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise error(f"{where}: rectify map must have shape (height, width, 2), got {m.shape}")
    if m.dtype.kind != "f":
        raise error(f"{where}: rectify map must be floating point, got dtype {m.dtype}")
    return np.ascontiguousarray(m, dtype=np.float32)


def check_rectify_plausible(rmap: np.ndarray, where: str, error: type[Exception] = DatasetError) -> np.ndarray:
    """Raise ``error`` naming ``where`` unless the (H, W, 2) map looks like a rectification.

    A rectification moves pixels by a small part of the frame, so: at least half of the entries
    must be finite (else NaN/inf); the rectified x must grow by about one pixel per raw pixel
    along x (median step in [0.5, 2]), and y along y (a transposed map, swapped x/y channels or
    a map in other units fail this); and the median distance between ``map[y, x]`` and
    ``(x, y)`` must stay below ``PLAUSIBLE_SHIFT`` of the larger side (+ ``PLAUSIBLE_SHIFT_PX``).
    Returns the map.
    """
    h, w = rmap.shape[:2]
    finite = np.isfinite(rmap).all(axis=-1)
    share = float(finite.mean())
    if share < 0.5:
        raise error(f"{where}: rectify map is not usable: only {share:.0%} of its entries are finite (NaN/inf)")
    # the medians are taken on a regular grid of about 64 x 64 pixels or more (cheap at open)
    stride = max(1, min(h, w) // 64)
    grid = rmap[::stride, ::stride]
    for channel, axis, name in ((0, 1, "x"), (1, 0, "y")):
        if grid.shape[axis] < 2:
            continue
        step = np.diff(grid[..., channel], axis=axis) / stride
        step = step[np.isfinite(step)]
        slope = float(np.median(step)) if step.size else float("nan")
        if not 0.5 <= slope <= 2.0:
            raise error(
                f"{where}: rectify map of {h}x{w} (HxW) is not a rectification of this sensor: rectified {name} "
                f"changes by {slope:.3g} px per raw pixel along {name} (expected about 1; transposed, x/y "
                "swapped or wrongly scaled?)"
            )
    ys, xs = np.nonzero(finite[::stride, ::stride])
    shift = np.hypot(grid[ys, xs, 0] - xs * stride, grid[ys, xs, 1] - ys * stride)
    median, limit = float(np.median(shift)), PLAUSIBLE_SHIFT * max(h, w) + PLAUSIBLE_SHIFT_PX
    if median > limit:
        raise error(
            f"{where}: rectify map of {h}x{w} (HxW) moves pixels by {median:.0f} px (median), more than "
            f"{limit:.0f} px: not a rectification of this sensor (transposed, x/y swapped or wrongly scaled?)"
        )
    return rmap


def rectify_events(events: Events, rectify_map: np.ndarray, keep_outside: bool = False) -> Events:
    """Rectify raw events: ``(x, y) <- rectify_map[y, x]`` as float32 pixels.

    Args:
        events: raw events with integer coordinates inside the map's (H, W).
        rectify_map: float (H, W, 2) lookup map.
        keep_outside: keep events whose rectified position falls outside the H x W frame
            (True) or drop them (False, default).

    Returns:
        Events with float32 x, y; t and p unchanged (dropped events removed).

    Raises:
        EventFileError: a raw coordinate lies outside the map (wrong map or wrong camera).
    """
    rmap = check_rectify_map(rectify_map, error=EventFileError)
    x = np.asarray(events.x)
    y = np.asarray(events.y)
    n = x.shape[0]
    if y.shape[0] != n:
        raise EventFileError(f"rectify_events: x and y lengths differ ({n} vs {y.shape[0]})")
    if x.dtype.kind not in "iu" or y.dtype.kind not in "iu":
        raise EventFileError(
            f"rectify_events: raw coordinates must be integers, got {x.dtype}/{y.dtype} (already rectified?)"
        )
    h, w = rmap.shape[:2]
    signed = x.dtype.kind == "i" or y.dtype.kind == "i"
    if n and (x.max() >= w or y.max() >= h or (signed and (x.min() < 0 or y.min() < 0))):
        bad = int(np.argmax((x >= w) | (y >= h) | (x < 0) | (y < 0)))
        raise EventFileError(
            f"rectify_events: raw event at (x={int(x[bad])}, y={int(y[bad])}) is outside the {w}x{h} rectify map"
        )
    t = np.asarray(events.t)
    p = np.asarray(events.p)
    out = (np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, t.dtype), np.empty(n, p.dtype))
    threads = numba.get_num_threads()
    geometry = (rmap.reshape(-1), w, np.float32(h), np.float32(w), bool(keep_outside))
    if threads >= PARALLEL_MIN_THREADS and n >= PARALLEL_MIN_EVENTS:
        kept = int(_rectify_parallel(x, y, t, p, *geometry, 4 * threads, *out))
    else:
        kept = int(_rectify_range(x, y, t, p, *geometry, 0, n, 0, n, *out))
    return Events(*(a[:kept] for a in out))


def load_rectify_map(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read ``rectify_map.h5`` (dataset ``rectify_map``) as float32 (H, W, 2).

    Args:
        path: the file.
        shape: expected (height, width) in pixels, checked when given.

    Raises:
        DatasetError: missing/unreadable file, missing dataset, wrong shape or dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: rectify map file not found")
    check_readable(path, DatasetError, "rectify map")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path}: not an HDF5 file (or truncated)")
    with h5_errors(path, "reading rectify_map", error=DatasetError):
        with h5py.File(path, "r") as f:
            if RECTIFY_DATASET not in f:
                raise DatasetError(f"{path}: missing dataset {RECTIFY_DATASET!r}")
            check_h5_filters(path, f[RECTIFY_DATASET], error=DatasetError)
            data = f[RECTIFY_DATASET][()]
    rmap = check_rectify_plausible(check_rectify_map(data, where=str(path)), str(path))
    if shape is not None and tuple(rmap.shape[:2]) != tuple(shape):
        raise DatasetError(
            f"{path}: rectify map is {rmap.shape[0]}x{rmap.shape[1]} (HxW), expected {shape[0]}x{shape[1]}"
        )
    return rmap


def write_rectify_map(path: str | os.PathLike, rectify_map: np.ndarray) -> Path:
    """Write a float32 (H, W, 2) map as ``rectify_map.h5`` (dataset ``rectify_map``), atomically."""
    path = Path(path)
    rmap = check_rectify_map(rectify_map, where=str(path), error=DatasetError)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(RECTIFY_DATASET, data=rmap)
    return path
