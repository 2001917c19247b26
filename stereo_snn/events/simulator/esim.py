"""ESIM-style event generation from a stream of rendered intensity frames (numpy + numba).

Model (Rebecq et al., "ESIM", CoRL 2018, and the usual DVS pixel model):

* each pixel compares its log intensity ``L = log(I + eps)`` with a per-pixel reference level;
* it fires an ON event each time ``L`` rises ``C+`` above the reference and an OFF event each
  time it falls ``C-`` below it, moving the reference by that threshold each time; ``C+`` and
  ``C-`` are drawn per pixel around the nominal values with a Gaussian mismatch;
* between two rendered frames ``L`` is assumed linear in time, so a pixel whose change spans
  several thresholds emits several events at linearly interpolated timestamps;
* refractory period: an event less than ``refractory_us`` after the pixel's previous emitted
  event is dropped (the reference still moves, as in ESIM);
* background activity (shot noise): events of random polarity at a Poisson rate per pixel;
  they obey the refractory period but do not move the reference level;
* hot pixels: a fixed random set of pixels (chosen once per generator, i.e. per camera and
  sequence) that fire noise events at a much higher Poisson rate.

The pixel reference levels start at the first frame's log intensity minus a uniform offset in
(-C-, C+), so the first frame produces no burst of events.
"""

from __future__ import annotations

import numba
import numpy as np

from ..recording import Events

__all__ = ["EventGenerator"]

_NEVER = -(2**62)  # "no previous event" for the refractory check


@numba.njit(cache=True, inline="always")
def _pixel(i, l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, out_t, out_p, start, write):
    """Simulate pixel ``i`` over one frame interval; return its number of emitted events.

    Writes events at ``out_t/out_p[start:]`` and updates ``ref``/``tlast`` only if ``write``.
    """
    r = ref[i]
    tl = tlast[i]
    a = np.float64(l0[i])
    b = np.float64(l1[i])
    slope = b - a
    cp = cpos[i]
    cn = cneg[i]
    j = nstart[i]
    jend = nstart[i + 1]
    count = 0
    while True:
        ts = np.inf
        level = r
        pol = 0
        frac = 0.0
        has_signal = False
        if slope > 0.0 and r + cp <= b:
            level = r + cp
            pol = 1
            has_signal = True
        elif slope < 0.0 and r - cn >= b:
            level = r - cn
            pol = 0
            has_signal = True
        if has_signal:
            frac = (level - a) / slope
            if frac < 0.0:
                frac = 0.0
            elif frac > 1.0:
                frac = 1.0
            ts = t0 + frac * dt
        has_noise = j < jend
        if not has_signal and not has_noise:
            break
        if has_signal and (not has_noise or ts <= nt[j]):
            r = level
            te = t0 + np.int64(np.floor(frac * dt + 0.5))
            p = pol
        else:
            te = nt[j]
            p = np_[j]
            j += 1
        if te - tl >= refractory:
            if write:
                out_t[start + count] = te
                out_p[start + count] = p
            count += 1
            tl = te
    if write:
        ref[i] = r
        tlast[i] = tl
    return count


PARALLEL_MIN_PIXELS = 1 << 16  # smaller frames run faster on one thread than through prange


@numba.njit(cache=True)
def _count_serial(l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, counts):
    dummy_t = np.empty(0, np.int64)
    dummy_p = np.empty(0, np.int8)
    for i in range(l0.shape[0]):
        counts[i] = _pixel(
            i, l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, dummy_t, dummy_p, 0, False
        )


@numba.njit(cache=True, parallel=True)
def _count_parallel(l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, counts):
    dummy_t = np.empty(0, np.int64)
    dummy_p = np.empty(0, np.int8)
    for i in numba.prange(l0.shape[0]):
        counts[i] = _pixel(
            i, l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, dummy_t, dummy_p, 0, False
        )


@numba.njit(cache=True)
def _fill_serial(l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, offsets, out_t, out_p, out_i):
    for i in range(l0.shape[0]):
        start = offsets[i]
        n = _pixel(i, l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, out_t, out_p, start, True)
        for k in range(n):
            out_i[start + k] = i


@numba.njit(cache=True, parallel=True)
def _fill_parallel(l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, offsets, out_t, out_p, out_i):
    for i in numba.prange(l0.shape[0]):
        start = offsets[i]
        n = _pixel(i, l0, l1, ref, cpos, cneg, tlast, t0, dt, refractory, nstart, nt, np_, out_t, out_p, start, True)
        for k in range(n):
            out_i[start + k] = i


class EventGenerator:
    """Turns consecutive intensity frames of one camera into events.

    Args:
        height, width: sensor size in pixels.
        threshold_pos, threshold_neg: nominal contrast thresholds C+ and C- (log units).
        threshold_sigma: standard deviation of the per-pixel threshold mismatch (log units);
            thresholds are clipped below at a quarter of their nominal value.
        refractory_us: refractory period in microseconds (0 disables it).
        noise_rate_hz: shot-noise event rate per pixel per second (0 disables it).
        log_eps: ``eps`` in ``log(I + eps)``; intensities are expected in [0, 1].
        rng: random generator for thresholds, hot pixels, initial references and noise.
        hot_pixel_fraction: fraction of the pixels that are hot (rounded to a whole number).
        hot_pixel_rate_hz: noise event rate of each hot pixel per second.

    Attributes (read-only use): ``c_pos``, ``c_neg`` (float64, H*W), ``ref`` (current
    reference log levels, float64, H*W), ``hot_pixels`` (flat indices y * W + x, sorted).
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        threshold_pos: float,
        threshold_neg: float,
        threshold_sigma: float,
        refractory_us: int,
        noise_rate_hz: float,
        log_eps: float,
        rng: np.random.Generator,
        hot_pixel_fraction: float = 0.0,
        hot_pixel_rate_hz: float = 0.0,
    ) -> None:
        self.height, self.width = int(height), int(width)
        n = self.height * self.width
        self.c_pos = np.maximum(threshold_pos + threshold_sigma * rng.standard_normal(n), 0.25 * threshold_pos)
        self.c_neg = np.maximum(threshold_neg + threshold_sigma * rng.standard_normal(n), 0.25 * threshold_neg)
        self.refractory_us = int(refractory_us)
        self.noise_rate_hz = float(noise_rate_hz)
        self.log_eps = float(log_eps)
        self.hot_pixels = np.sort(rng.choice(n, int(round(hot_pixel_fraction * n)), replace=False)).astype(np.int64)
        self.hot_pixel_rate_hz = float(hot_pixel_rate_hz)
        self._rng = rng
        self.ref = np.zeros(n, np.float64)
        self._tlast = np.full(n, _NEVER, np.int64)
        self._last_log: np.ndarray | None = None
        self._last_t: int | None = None

    def log_intensity(self, frame: np.ndarray) -> np.ndarray:
        """``log(frame + eps)`` flattened to float32 (H*W,)."""
        if frame.shape != (self.height, self.width):
            raise ValueError(f"frame shape {frame.shape} != sensor ({self.height}, {self.width})")
        return np.log(frame.astype(np.float32).ravel() + np.float32(self.log_eps))

    def reset(self, frame: np.ndarray, t_us: int) -> None:
        """Start from ``frame`` (float intensities in [0, 1], (H, W)) at time ``t_us``."""
        log = self.log_intensity(frame)
        offset = self._rng.uniform(-1.0, 1.0, log.shape[0])
        offset = np.where(offset >= 0, offset * self.c_pos, offset * self.c_neg)
        self.ref = log.astype(np.float64) - offset
        self._tlast[:] = _NEVER
        self._last_log = log
        self._last_t = int(t_us)

    def step(self, frame: np.ndarray, t_us: int) -> Events:
        """Advance to ``frame`` at ``t_us`` (µs, after the previous frame); return the events of
        the interval (raw integer pixels, t int64 µs, p int8 {0, 1}) sorted by t."""
        if self._last_log is None or self._last_t is None:
            raise RuntimeError("EventGenerator.step() before reset()")
        t0 = self._last_t
        dt = int(t_us) - t0
        if dt <= 0:
            raise ValueError(f"frame time {t_us} µs is not after the previous frame ({t0} µs)")
        log = self.log_intensity(frame)
        n = log.shape[0]
        nstart, nt, npol = self._noise(n, t0, dt)
        parallel = n >= PARALLEL_MIN_PIXELS
        # the count pass and the fill pass walk the same pixels with the same state and noise
        walk = (
            self._last_log,
            log,
            self.ref,
            self.c_pos,
            self.c_neg,
            self._tlast,
            t0,
            dt,
            self.refractory_us,
            nstart,
            nt,
            npol,
        )
        counts = np.empty(n, np.int64)
        (_count_parallel if parallel else _count_serial)(*walk, counts)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        total = int(offsets[-1])
        out_t = np.empty(total, np.int64)
        out_p = np.empty(total, np.int8)
        out_i = np.empty(total, np.int64)
        (_fill_parallel if parallel else _fill_serial)(*walk, offsets, out_t, out_p, out_i)
        self._last_log = log
        self._last_t = int(t_us)
        order = np.argsort(out_t, kind="stable")
        idx = out_i[order]
        return Events(
            (idx % self.width).astype(np.uint16),
            (idx // self.width).astype(np.uint16),
            out_t[order],
            out_p[order],
        )

    def _noise(self, n: int, t0: int, dt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shot-noise events of one interval grouped per pixel (CSR: starts, times, polarities)."""
        total = int(self._rng.poisson(self.noise_rate_hz * dt * 1e-6 * n)) if self.noise_rate_hz > 0 else 0
        pix = self._rng.integers(0, n, total)
        if len(self.hot_pixels) and self.hot_pixel_rate_hz > 0:
            hot = np.repeat(
                self.hot_pixels, self._rng.poisson(self.hot_pixel_rate_hz * dt * 1e-6, len(self.hot_pixels))
            )
            pix = np.concatenate([pix, hot])
            total = len(pix)
        t = t0 + self._rng.integers(0, dt, total).astype(np.int64)
        p = self._rng.integers(0, 2, total).astype(np.int8)
        order = np.lexsort((t, pix))
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(pix, minlength=n), out=starts[1:])
        return starts, t[order], p[order]
