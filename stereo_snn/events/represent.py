"""Dense event representations (numpy + numba, no torch).

Every function takes one window of events as parallel 1-D arrays ``x, y, t, p`` and
returns a float32 array ``[C, height, width]``:

- :func:`voxel_grid`: the DSEC voxel grid (trilinear in x, y, t; optional normalisation).
- :func:`sbt`: stacked binary time frames (sign of the summed polarity per sub-window),
  the SpikeDHS / StereoSpike input.
- :func:`histogram`: per-polarity event counts (channel 0 = OFF, channel 1 = ON).
- :func:`mixed_density_stack`: se-cff style stacks of the last N, N/2, N/4, ... events.

Input conventions (all functions):

- ``x, y``: pixel coordinates, integer (raw sensor pixels) or float (rectified, sub-pixel).
  The voxel grid interpolates float coordinates; the other representations round them to
  the nearest pixel (``floor(v + 0.5)``, halves go up). Events outside ``[0, width) x
  [0, height)`` are ignored.
- ``t``: timestamps, any integer dtype (microseconds) or float dtype (any unit: only
  ratios of time differences are used, except for the explicit window bounds of
  :func:`sbt`, which must be in the same unit as ``t``).
- ``p``: polarity, ``{0, 1}`` or ``{-1, +1}``; any value > 0 means ON (+1), anything else
  OFF (-1).

The small frozen dataclasses :class:`VoxelGrid`, :class:`SBT`, :class:`Histogram` and
:class:`MixedDensity` wrap these functions for use from a configuration
(:func:`make_representation`), and :func:`to_time_steps` splits channels into time steps
for a multi-step spiking network.

Parallelisation: the voxel-grid kernel groups the (time-sorted) events by their lower time
bin t0; a group writes only planes t0 and t0 + 1, so all odd groups run in parallel, then
all even groups: no races, each event read once. A thread accumulates a group into a
scratch buffer holding its two planes interleaved (an event's eight cells are two runs of
four adjacent floats: half the cache lines) and then writes it into the planes. Count-based
representations accumulate per-thread partial grids over event chunks and reduce them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numba
import numpy as np
from numba import njit, prange

from ..errors import RepresentationError
from .recording import Events

__all__ = [
    "voxel_grid",
    "sbt",
    "histogram",
    "mixed_density_stack",
    "VoxelGrid",
    "SBT",
    "Histogram",
    "MixedDensity",
    "Representation",
    "make_representation",
    "to_time_steps",
]


# --------------------------------------------------------------------------- validation


def _check_count(name: str, value: Any) -> int:
    """Return ``value`` as an int >= 1, or raise RepresentationError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise RepresentationError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise RepresentationError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_events(x: Any, y: Any, t: Any, p: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate the event arrays and convert them to the kernels' canonical dtypes.

    Returns x, y as float32, t as int64 (integer input) or float64 (float input) and p as
    int8 (> 0 = ON). Arrays that already have these dtypes are not copied.
    """
    arrays = {"x": np.asarray(x), "y": np.asarray(y), "t": np.asarray(t), "p": np.asarray(p)}
    for name, arr in arrays.items():
        if arr.ndim != 1:
            raise RepresentationError(f"event array {name} must be 1-D, got shape {arr.shape}")
        if arr.dtype.kind not in "iufb":
            raise RepresentationError(f"event array {name} must be numeric, got dtype {arr.dtype}")
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise RepresentationError(f"event arrays x, y, t, p must have the same length, got {lengths}")
    xs = np.ascontiguousarray(arrays["x"], dtype=np.float32)
    ys = np.ascontiguousarray(arrays["y"], dtype=np.float32)
    tt = arrays["t"]
    if tt.dtype.kind == "f":
        ts = np.ascontiguousarray(tt, dtype=np.float64)
    elif tt.dtype.kind == "b":
        raise RepresentationError("event array t must hold timestamps, got dtype bool")
    else:
        if tt.dtype == np.uint64 and tt.size and int(tt.max()) > np.iinfo(np.int64).max:
            raise RepresentationError("event array t holds uint64 timestamps beyond the int64 range")
        ts = np.ascontiguousarray(tt, dtype=np.int64)
    pp = arrays["p"]
    # the kernels test p > 0, so int8 in {0, 1} or {-1, +1} is used as it is
    ps = np.ascontiguousarray(pp) if pp.dtype == np.int8 else np.ascontiguousarray(pp > 0).view(np.int8)
    return xs, ys, ts, ps


def _sorted_by_time(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reorder the events so that the voxel grid's t_norm is non-decreasing.

    t_norm grows with t when ``t[-1] >= t[0]`` (the usual, time-sorted case: returned as is,
    no copy) and shrinks with t when ``t[-1] < t[0]`` (then the events are sorted by
    decreasing t).
    """
    if t.shape[0] < 2:
        return x, y, t, p
    if t[-1] >= t[0]:
        if _is_sorted(t):
            return x, y, t, p
        order = np.argsort(t, kind="stable")
    else:
        order = np.argsort(t, kind="stable")[::-1]
    return x[order], y[order], t[order], p[order]


def _chunks() -> int:
    """Number of event chunks for kernels that reduce per-thread partial grids."""
    return int(numba.get_num_threads())


def _check_size(height: Any, width: Any) -> tuple[int, int]:
    return _check_count("height", height), _check_count("width", width)


# --------------------------------------------------------------------------- kernels


#: events per block of the sortedness test (stops after the first block with a descent)
SORTED_BLOCK = 4096


@njit(cache=True, nogil=True)
def _is_sorted(t):  # pragma: no cover - compiled
    """True when t is non-decreasing. Blocks of SORTED_BLOCK comparisons without an early
    exit inside a block (so the inner loop vectorises), stopping after the first block
    that holds a descent."""
    n = t.shape[0]
    for start in range(1, n, SORTED_BLOCK):
        stop = min(n, start + SORTED_BLOCK)
        prev = t[start - 1 : stop - 1]
        cur = t[start:stop]
        descents = 0
        for i in range(cur.shape[0]):
            descents += np.int64(cur[i] < prev[i])
        if descents:
            return False
    return True


# Kernels on the hot path use error_model="numpy" (no Python zero-division checks; the
# divisors are never zero) and are otherwise IEEE-exact, so that t_norm and the weights are
# computed with the same float32 operations as the reference.


@njit(cache=True, inline="always", error_model="numpy")
def _t_norm(ti, t_first, scale, span):  # pragma: no cover - compiled
    # Same float32 operations in the same order as the reference: scale * dt / span.
    dt = np.float32(ti - t_first)
    return scale * dt / span


@njit(cache=True, inline="always", error_model="numpy")
def _lower_bound(t, t_first, scale, span, k):  # pragma: no cover - compiled
    """First index i with trunc(t_norm(t[i])) >= k (t_norm non-decreasing in i)."""
    lo = 0
    hi = t.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if np.int64(_t_norm(t[mid], t_first, scale, span)) < k:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _voxel_kernel(x, y, t, p, t_first, t_last, out, scratch, stats, with_stats):  # pragma: no cover - compiled
    """Accumulate the DSEC voxel grid into ``out`` [bins, H, W] (overwritten) and, when
    ``with_stats``, the per-plane statistics of its non-zero cells into ``stats`` [bins, 3]
    (count, sum, sum of squares).

    Events must be sorted so that t_norm is non-decreasing; then each group of events with
    the same t0 = trunc(t_norm) is one contiguous range (found by binary search). Group t0
    writes planes t0 and t0 + 1 only, so groups of one parity never share a plane: the odd
    groups run in parallel, then the even groups. Each group accumulates into its thread's
    ``scratch`` row (float32 [threads, H * W * 2], all zeros on entry; the two planes
    interleaved so that an event's 8 cells are two runs of 4 adjacent floats), then one
    pass (:func:`_flush_pair`) writes (odd groups) or adds (even groups) it into the two
    planes, zeroes the row again and, for the even groups, which complete their planes,
    computes the planes' statistics. No races, each event read once.
    """
    bins, height, width = out.shape
    pixels = height * width
    flat = out.reshape(bins * pixels)
    span = np.float32(t_last - t_first)
    if span == np.float32(0.0):
        scale = np.float32(0.0)
        span = np.float32(1.0)
    else:
        scale = np.float32(bins - 1)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    groups = bins + 1  # t0 = -1 .. bins - 1 can reach a plane
    for parity in range(2):
        for g in prange((groups + 1 - parity) // 2):
            b = 2 * g + parity - 1  # parity 0: t0 = -1, 1, 3, ...; parity 1: t0 = 0, 2, 4, ...
            sc = scratch[numba.get_thread_id()]
            lo = _lower_bound(t, t_first, scale, span, b)
            hi = _lower_bound(t, t_first, scale, span, b + 1)
            fb0 = np.float32(b)
            fb1 = np.float32(b + 1)
            # slices indexed from 0: no negative-index wraparound code in the loop
            xg = x[lo:hi]
            yg = y[lo:hi]
            tg = t[lo:hi]
            pg = p[lo:hi]
            for i in range(hi - lo):
                tn = _t_norm(tg[i], t_first, scale, span)
                wt0 = one - abs(fb0 - tn)
                wt1 = one - abs(fb1 - tn)
                value = one if pg[i] > 0 else -one
                xf = xg[i]
                yf = yg[i]
                x0 = np.int64(xf)  # truncation toward zero, as the reference
                y0 = np.int64(yf)
                if x0 >= 0 and y0 >= 0 and xf >= zero and yf >= zero and x0 + 1 < width and y0 + 1 < height:
                    # interior: 1 - |x0 - x| = 1 - fx and 1 - |x0 + 1 - x| = fx for x >= 0
                    fx = xf - np.float32(x0)
                    fy = yf - np.float32(y0)
                    wx0 = value * (one - fx)
                    wx1 = value * fx
                    wy0 = one - fy
                    w00 = wx0 * wy0
                    w01 = wx1 * wy0
                    w10 = wx0 * fy
                    w11 = wx1 * fy
                    j = np.uint64(2 * (y0 * width + x0))  # unsigned: no wraparound code
                    sc[j] += w00 * wt0
                    sc[j + 1] += w00 * wt1
                    sc[j + 2] += w01 * wt0
                    sc[j + 3] += w01 * wt1
                    j += np.uint64(2 * width)
                    sc[j] += w10 * wt0
                    sc[j + 1] += w10 * wt1
                    sc[j + 2] += w11 * wt0
                    sc[j + 3] += w11 * wt1
                else:  # border (or negative coordinates): the reference formula, masked
                    for dy in range(2):
                        yl = y0 + dy
                        if yl < 0 or yl >= height:
                            continue
                        wy = one - abs(np.float32(yl) - yf)
                        for dx in range(2):
                            xl = x0 + dx
                            if xl < 0 or xl >= width:
                                continue
                            w = (value * (one - abs(np.float32(xl) - xf))) * wy
                            j = 2 * (yl * width + xl)
                            sc[j] += w * wt0
                            sc[j + 1] += w * wt1
            # planes b and b + 1; a plane outside the grid (t0 = -1 or t0 + 1 = bins) is
            # replaced by the other one and its slot dropped
            p0 = max(b, 0)
            p1 = min(b + 1, bins - 1)
            _flush_pair(
                sc,
                flat[p0 * pixels : (p0 + 1) * pixels],
                flat[p1 * pixels : (p1 + 1) * pixels],
                b >= 0,
                b + 1 < bins,
                parity == 1,
                stats[p0],
                stats[p1],
                with_stats and parity == 1,
            )


@njit(cache=True, nogil=True, fastmath=True)
def _flush_pair(sc, dst0, dst1, use0, use1, add, stats0, stats1, with_stats):  # pragma: no cover - compiled
    """One pass over an interleaved scratch row ``sc`` [2 * pixels]: slot 0 goes to ``dst0``,
    slot 1 to ``dst1`` (written, or added when ``add``; a slot whose ``use`` flag is false
    is dropped, and its ``dst`` is not touched), the row is zeroed as it is read, and with
    ``with_stats`` the (count, sum, sum of squares) of the non-zero cells of the finished
    planes go to ``stats0``/``stats1`` (float64; zeros add nothing to the sums, so the
    loop has no data-dependent branch)."""
    pixels = dst0.shape[0]
    zero = np.float32(0.0)
    n0 = s0 = q0 = n1 = s1 = q1 = 0.0
    for k in range(pixels):
        a = sc[2 * k]
        b = sc[2 * k + 1]
        sc[2 * k] = zero
        sc[2 * k + 1] = zero
        if use0:
            v = _put(dst0, k, a, add)
            n0 += v != 0.0
            s0 += v
            q0 += v * v
        if use1:
            v = _put(dst1, k, b, add)
            n1 += v != 0.0
            s1 += v
            q1 += v * v
    if with_stats and use0:
        stats0[0], stats0[1], stats0[2] = n0, s0, q0
    if with_stats and use1:
        stats1[0], stats1[1], stats1[2] = n1, s1, q1


@njit(cache=True, inline="always", fastmath=True)
def _put(dst, k, value, add):  # pragma: no cover - compiled
    """dst[k] = value (or += when ``add``); returns the stored value as float64."""
    if add:
        value += dst[k]
    dst[k] = value
    return np.float64(value)


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def _normalize_nonzero(flat, mean, inv_std):  # pragma: no cover - compiled
    """In place: non-zero cells become (v - mean) * inv_std; zeros stay zero."""
    m = np.float32(mean)
    s = np.float32(inv_std)
    chunks = 64
    size = flat.shape[0]
    for c in prange(chunks):
        block = flat[c * size // chunks : (c + 1) * size // chunks]  # indexed from 0: vectorises
        for j in range(block.shape[0]):
            v = block[j]
            block[j] = (v - m) * s if v != 0.0 else v


@njit(cache=True, inline="always")
def _nearest_pixel(xf, yf, height, width):  # pragma: no cover - compiled
    """Flat pixel index of the nearest pixel (halves round up), or -1 outside the frame."""
    xi = np.int64(np.floor(xf + np.float32(0.5)))
    yi = np.int64(np.floor(yf + np.float32(0.5)))
    if xi < 0 or xi >= width or yi < 0 or yi >= height:
        return -1
    return yi * width + xi


@njit(cache=True, nogil=True, parallel=True)
def _count_kernel(x, y, t_rel, p, channels, height, width, mode, span, chunks):  # pragma: no cover
    """Per-channel integer sums over pixels, reduced over per-thread partial grids.

    mode 0 (histogram): channel = 1 if ON else 0, value 1.
    mode 1 (SBT): ``t_rel`` (float64) is t minus the window start; channel = frame of t_rel
    in [0, span) split into ``channels`` equal sub-windows, value +1 (ON) / -1 (OFF); events
    outside the window are ignored. In mode 0 ``t_rel`` is not read (may be empty).
    ``chunks``: number of event chunks, each accumulated into its own partial grid.
    Returns int32 [channels, height * width].
    """
    n = x.shape[0]
    pixels = height * width
    partial = np.zeros((chunks, channels, pixels), dtype=np.int32)
    step = (n + chunks - 1) // chunks
    for k in prange(chunks):
        grid = partial[k]
        for i in range(k * step, min(n, (k + 1) * step)):
            pix = _nearest_pixel(x[i], y[i], height, width)
            if pix < 0:
                continue
            if mode == 0:
                grid[1 if p[i] > 0 else 0, pix] += 1
            else:
                tr = t_rel[i]
                if tr < 0.0 or tr >= span:
                    continue
                f = np.int64(np.floor(tr * channels / span))
                if f >= channels:  # float rounding at the upper edge
                    f = channels - 1
                grid[f, pix] += 1 if p[i] > 0 else -1
    total = np.zeros((channels, pixels), dtype=np.int32)
    for c in prange(channels):
        for k in range(chunks):
            for j in range(pixels):
                total[c, j] += partial[k, c, j]
    return total


@njit(cache=True, nogil=True)
def _latest_event_per_pixel(x, y, p, height, width):  # pragma: no cover - compiled
    """Rank (1 = newest) and polarity (+1/-1) of each pixel's newest in-frame event.

    Returns (rank int64 [H*W], 0 where the pixel has no event; polarity int8 [H*W]; count
    of in-frame events). Events are taken in array (time) order.
    """
    pixels = height * width
    last = np.zeros(pixels, dtype=np.int64)
    pol = np.zeros(pixels, dtype=np.int8)
    count = 0
    for i in range(x.shape[0]):
        pix = _nearest_pixel(x[i], y[i], height, width)
        if pix < 0:
            continue
        count += 1
        last[pix] = count
        pol[pix] = 1 if p[i] > 0 else -1
    for j in range(pixels):
        if last[j] > 0:
            last[j] = count - last[j] + 1
    return last, pol, count


@njit(cache=True, nogil=True, parallel=True)
def _mixed_density_fill(rank, pol, count, stacks, out):  # pragma: no cover - compiled
    """Stack i holds the polarity of each pixel's newest event if that event is among
    the newest ceil(count / 2**i) in-frame events, else 0."""
    pixels = rank.shape[0]
    for s in prange(stacks):
        keep = (count + (np.int64(1) << s) - 1) >> s
        for j in range(pixels):
            r = rank[j]
            out[s, j] = np.float32(pol[j]) if (r > 0 and r <= keep) else np.float32(0.0)


# --------------------------------------------------------------------------- functions


#: float timestamps are mapped to integer ticks, TICKS_PER_WINDOW from t[0] to t[-1]
TICKS_PER_WINDOW = 1 << 40


def _float_time_to_ticks(t: np.ndarray) -> np.ndarray:
    """Map float timestamps (any unit) to int64 ticks with ``t[0] -> 0`` and ``t[-1] ->
    TICKS_PER_WINDOW``, so that one integer kernel serves both (t_norm only depends on
    ratios of time differences; the change is below float32 rounding). Non-finite or far
    out-of-window times map to a tick far before the window, where no bin sees them."""
    rel = t - t[0]
    span = rel[-1]
    if span == 0 or not np.isfinite(span):
        return np.zeros(t.shape[0], dtype=np.int64)
    ticks = rel * (TICKS_PER_WINDOW / span)
    bad = ~(np.abs(ticks) < 2.0**62)
    with np.errstate(invalid="ignore"):
        out = np.rint(ticks).astype(np.int64)
    out[bad] = np.iinfo(np.int64).min // 2
    return out


def voxel_grid(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    bins: int,
    height: int,
    width: int,
    normalize: bool = True,
) -> np.ndarray:
    """DSEC voxel grid of one event window, float32 ``[bins, height, width]``.

    Exactly the DSEC convention: polarity -> +/-1; ``t_norm = (bins - 1) * (t - t[0]) /
    (t[-1] - t[0])`` (first and last event of the arrays, computed in float32 like the
    reference); each event adds ``value * (1 - |xl - x|) * (1 - |yl - y|) * (1 - |tl -
    t_norm|)`` to its integer neighbours ``xl in {int(x), int(x) + 1}`` (and likewise y, t),
    where ``int`` truncates toward zero as the reference does, masked to the grid bounds.
    With ``normalize``, the non-zero cells become ``(v - mean) / std`` (unbiased std over
    the non-zero cells; only ``v - mean`` when that std is 0 or undefined).

    Degenerate windows: no events gives zeros; when ``t[-1] == t[0]`` (one event, or all
    events at one timestamp) every event goes to bin 0 (``t_norm = 0``) instead of the
    reference's division by zero.

    Args:
        x, y: pixel coordinates (float or integer), shape (N,).
        t: timestamps (integer microseconds or float, any unit), shape (N,). Events need
            not be sorted (unsorted windows take a slower path). Float timestamps are
            first mapped to integer ticks (2**40 from t[0] to t[-1]); t_norm then differs
            from the float formula by float32 rounding only.
        p: polarity, {0, 1} or {-1, +1}, shape (N,).
        bins: number of time bins (>= 1).
        height, width: grid size in pixels (>= 1).
        normalize: apply the non-zero-cell normalisation.

    Returns:
        float32 array ``[bins, height, width]``.

    Raises:
        RepresentationError: impossible settings or malformed event arrays.
    """
    bins = _check_count("bins", bins)
    height, width = _check_size(height, width)
    xs, ys, ts, ps = _check_events(x, y, t, p)
    out = np.empty((bins, height, width), dtype=np.float32)
    if ts.shape[0] == 0:
        out.fill(0.0)
        return out
    if ts.dtype.kind == "f":
        ts = _float_time_to_ticks(ts)
    t_first, t_last = ts[0], ts[-1]
    xs, ys, ts, ps = _sorted_by_time(xs, ys, ts, ps)
    stats = np.zeros((bins, 3), dtype=np.float64)
    scratch = np.zeros((numba.config.NUMBA_NUM_THREADS, 2 * height * width), dtype=np.float32)
    _voxel_kernel(xs, ys, ts, ps, t_first, t_last, out, scratch, stats, bool(normalize))
    if normalize:
        count, total, total_sq = stats.sum(axis=0)
        if count > 0:
            mean = total / count
            var = (total_sq - total * mean) / (count - 1) if count > 1 else 0.0
            std = float(np.sqrt(max(var, 0.0)))
            _normalize_nonzero(out.reshape(-1), mean, 1.0 / std if std > 0 else 1.0)
    return out


def sbt(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    frames: int,
    height: int,
    width: int,
    t_start_us: float | None = None,
    t_end_us: float | None = None,
) -> np.ndarray:
    """Stacked binary time frames, float32 ``[frames, height, width]``.

    The window ``[t_start_us, t_end_us)`` is split into ``frames`` equal sub-windows; each
    pixel of frame f is the sign (+1, -1 or 0) of the summed polarity (+1 ON, -1 OFF) of its
    events in sub-window f. Float coordinates are rounded to the nearest pixel; events
    outside the frame or the window are ignored.

    Args:
        x, y, t, p: the events (see the module docstring), shape (N,).
        frames: number of sub-windows (>= 1).
        height, width: frame size in pixels (>= 1).
        t_start_us: window start, same unit as ``t`` (microseconds for integer t); default
            the smallest timestamp.
        t_end_us: window end (exclusive); default just after the largest timestamp (one
            microsecond for integer t, the next float for float t), so that every event
            is inside.

    Raises:
        RepresentationError: impossible settings, malformed arrays, or an empty window
            (``t_end_us <= t_start_us``).
    """
    frames = _check_count("frames", frames)
    height, width = _check_size(height, width)
    xs, ys, ts, ps = _check_events(x, y, t, p)
    if ts.shape[0] == 0 and (t_start_us is None or t_end_us is None):
        return np.zeros((frames, height, width), dtype=np.float32)
    start = ts.min() if t_start_us is None else t_start_us
    if t_end_us is not None:
        end = float(t_end_us)
    elif ts.dtype.kind == "i":
        end = float(ts.max()) + 1.0  # one microsecond after the last event
    else:
        end = float(np.nextafter(ts.max(), np.inf))  # just after the last event
    span = end - float(start)
    if not span > 0:
        raise RepresentationError(f"sbt window is empty: t_end_us={end} <= t_start_us={start}")
    # relative times in float64 (exact for integer microseconds below 2**53)
    t_rel = np.asarray(ts - start, dtype=np.float64)
    sums = _count_kernel(xs, ys, t_rel, ps, frames, height, width, 1, span, _chunks())
    return np.sign(sums).astype(np.float32).reshape(frames, height, width)


def histogram(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray, height: int, width: int) -> np.ndarray:
    """Per-polarity event counts, float32 ``[2, height, width]``: channel 0 counts OFF
    events, channel 1 ON events. Float coordinates are rounded to the nearest pixel;
    events outside the frame are ignored. ``t`` is only validated."""
    height, width = _check_size(height, width)
    xs, ys, ts, ps = _check_events(x, y, t, p)
    counts = _count_kernel(xs, ys, np.zeros(0), ps, 2, height, width, 0, 1.0, _chunks())
    return counts.astype(np.float32).reshape(2, height, width)


def mixed_density_stack(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    stacks: int,
    height: int,
    width: int,
) -> np.ndarray:
    """se-cff style mixed-density event stacks, float32 ``[stacks, height, width]``.

    With N in-frame events (in array order, i.e. time order as the readers deliver them),
    stack i covers the newest ``ceil(N / 2**i)`` of them (stack 0 all events, each further
    stack half as many). Like se-cff, each pixel stores the polarity (+1 ON / -1 OFF) of
    its newest event within the stack, 0 when it has none. (se-cff removes
    ``floor(remaining / 2)`` events per step, which keeps one or two more events per stack
    for odd counts; ``ceil(N / 2**i)`` is used here so that every stack keeps >= 1 event.)
    Float coordinates are rounded to the nearest pixel; events outside the frame are
    ignored and not counted in N. ``t`` is only validated.
    """
    stacks = _check_count("stacks", stacks)
    height, width = _check_size(height, width)
    xs, ys, _ts, ps = _check_events(x, y, t, p)
    if stacks > 62:
        raise RepresentationError(f"stacks must be <= 62, got {stacks}")
    rank, pol, count = _latest_event_per_pixel(xs, ys, ps, height, width)
    out = np.empty((stacks, height * width), dtype=np.float32)
    _mixed_density_fill(rank, pol, count, stacks, out)
    return out.reshape(stacks, height, width)


# --------------------------------------------------------------------------- wrappers


@dataclass(frozen=True)
class VoxelGrid:
    """DSEC voxel grid with ``bins`` channels (see :func:`voxel_grid`).

    >>> import numpy as np
    >>> from stereo_snn.events import Events, VoxelGrid
    >>> events = Events(*map(np.array, ([0, 3, 3, 7], [0, 1, 1, 2], [0, 100, 200, 300], [1, 0, 1, 1])))  # x, y, t us, p
    >>> VoxelGrid(bins=4)(events, 3, 8).shape  # [bins, height, width], float32
    (4, 3, 8)
    """

    bins: int = 10
    normalize: bool = True

    def __post_init__(self) -> None:
        _check_count("bins", self.bins)
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise RepresentationError(f"normalize must be true or false, got {self.normalize!r}")

    @property
    def channels(self) -> int:
        """Number of output channels (= bins)."""
        return self.bins

    def __call__(self, events: Events, height: int, width: int) -> np.ndarray:
        """float32 [bins, height, width] of ``events``."""
        return voxel_grid(*events, self.bins, height, width, normalize=self.normalize)


@dataclass(frozen=True)
class SBT:
    """Stacked binary time frames with ``frames`` channels (see :func:`sbt`).

    >>> import numpy as np
    >>> from stereo_snn.events import Events, SBT
    >>> events = Events(*map(np.array, ([0, 3, 3, 7], [0, 1, 1, 2], [0, 100, 200, 300], [1, 0, 1, 1])))  # x, y, t us, p
    >>> SBT(frames=2)(events, 3, 8).shape  # [frames, height, width], float32
    (2, 3, 8)
    """

    frames: int = 5

    def __post_init__(self) -> None:
        _check_count("frames", self.frames)

    @property
    def channels(self) -> int:
        """Number of output channels (= frames)."""
        return self.frames

    def __call__(
        self,
        events: Events,
        height: int,
        width: int,
        t_start_us: float | None = None,
        t_end_us: float | None = None,
    ) -> np.ndarray:
        """float32 [frames, height, width]; the window defaults to the events' time span."""
        return sbt(*events, self.frames, height, width, t_start_us=t_start_us, t_end_us=t_end_us)


@dataclass(frozen=True)
class Histogram:
    """Per-polarity count image with 2 channels (OFF, ON) (see :func:`histogram`).

    >>> import numpy as np
    >>> from stereo_snn.events import Events, Histogram
    >>> events = Events(*map(np.array, ([0, 3, 3, 7], [0, 1, 1, 2], [0, 100, 200, 300], [1, 0, 1, 1])))  # x, y, t us, p
    >>> Histogram()(events, 3, 8)[:, 1, 3]  # pixel (x=3, y=1): one OFF and one ON event
    array([1., 1.], dtype=float32)
    """

    @property
    def channels(self) -> int:
        """Number of output channels (2)."""
        return 2

    def __call__(self, events: Events, height: int, width: int) -> np.ndarray:
        """float32 [2, height, width] of ``events``."""
        return histogram(*events, height, width)


@dataclass(frozen=True)
class MixedDensity:
    """se-cff mixed-density stacks with ``stacks`` channels (see :func:`mixed_density_stack`).

    >>> import numpy as np
    >>> from stereo_snn.events import Events, MixedDensity
    >>> events = Events(*map(np.array, ([0, 3, 3, 7], [0, 1, 1, 2], [0, 100, 200, 300], [1, 0, 1, 1])))  # x, y, t us, p
    >>> MixedDensity(stacks=3)(events, 3, 8).shape  # [stacks, height, width], float32
    (3, 3, 8)
    """

    stacks: int = 10

    def __post_init__(self) -> None:
        _check_count("stacks", self.stacks)

    @property
    def channels(self) -> int:
        """Number of output channels (= stacks)."""
        return self.stacks

    def __call__(self, events: Events, height: int, width: int) -> np.ndarray:
        """float32 [stacks, height, width] of ``events``."""
        return mixed_density_stack(*events, self.stacks, height, width)


Representation = VoxelGrid | SBT | Histogram | MixedDensity

_REGISTRY: dict[str, type] = {
    "voxel_grid": VoxelGrid,
    "sbt": SBT,
    "histogram": Histogram,
    "mixed_density": MixedDensity,
}


def make_representation(spec: str | Mapping[str, Any]) -> Representation:
    """Build a representation from a config value.

    ``spec`` is a name (``"voxel_grid"``, ``"sbt"``, ``"histogram"``, ``"mixed_density"``)
    or a mapping with ``name`` and the dataclass fields, e.g.
    ``{"name": "voxel_grid", "bins": 10, "normalize": True}``.

    Raises:
        RepresentationError: unknown name, unknown or impossible parameters.

    >>> import numpy as np
    >>> from stereo_snn.events import Events, make_representation, to_time_steps
    >>> events = Events(*map(np.array, ([0, 3, 3, 7], [0, 1, 1, 2], [0, 100, 200, 300], [1, 0, 1, 1])))  # x, y, t us, p
    >>> rep = make_representation({"name": "voxel_grid", "bins": 10})
    >>> rep, rep.channels
    (VoxelGrid(bins=10, normalize=True), 10)
    >>> to_time_steps(rep(events, 3, 8), 5).shape  # [T, C / T, H, W]: the network's input
    (5, 2, 3, 8)
    """
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping):
        if "name" not in spec:
            raise RepresentationError(f"representation spec needs a 'name' key, got {dict(spec)!r}")
        params = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
    else:
        raise RepresentationError(f"representation spec must be a name or a mapping, got {spec!r}")
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise RepresentationError(f"unknown representation {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    fields = set(cls.__dataclass_fields__)
    unknown = sorted(set(params) - fields)
    if unknown:
        allowed = ", ".join(sorted(fields)) or "none"
        raise RepresentationError(f"representation {name!r} has no parameter(s) {unknown}; allowed: {allowed}")
    return cls(**params)


def to_time_steps(array: np.ndarray, steps: int) -> np.ndarray:
    """Split channels into time steps: ``[C, H, W] -> [steps, C // steps, H, W]``.

    Consecutive channels go to the same step (channels 0 .. C/steps - 1 form step 0), so
    time-ordered channels (voxel bins, SBT frames) stay in time order. Works on numpy
    arrays and torch tensors (anything with ``.shape`` and ``.reshape``); returns a view
    when possible.

    Raises:
        RepresentationError: ``array`` is not 3-D, ``steps`` < 1, or C is not divisible
            by ``steps``.
    """
    steps = _check_count("steps", steps)
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) != 3:
        raise RepresentationError(f"to_time_steps expects a [C, H, W] array, got shape {shape}")
    channels, height, width = shape
    if channels % steps:
        raise RepresentationError(
            f"cannot split {channels} channels into {steps} time steps ({channels} is not divisible by {steps})"
        )
    return array.reshape(steps, channels // steps, height, width)
