"""Classical reference: OpenCV semi-global block matching (SGBM) on event frames.

Events of one window are accumulated into an 8-bit image per camera
(:func:`event_frame`, default mode ``"polarity"``: 128 + signed log net polarity count,
blurred by 1 px), the pair is matched with ``cv2.StereoSGBM``, and pixels that SGBM leaves
invalid (left border, occlusions, failed uniqueness/speckle checks) or that have no events
nearby are filled so that every pixel has a disparity (:func:`fill_invalid_disparity`),
which is what the dense metrics need.

``numDisparities`` is the smallest multiple of 16 that is >= ``max_disp``; SGBM leaves
the leftmost ``numDisparities`` columns invalid, which the fill covers from the right.

Why these defaults (frame mode, block 11, uniqueness 5, P2 = 96 * block^2, speckle window
100), with the measurement and the parameter sweep: docs/stereo.md, "The SGBM baseline".
"""

from __future__ import annotations

import math
from typing import Any, Literal

import cv2
import numpy as np

from ..errors import ConfigError, RepresentationError
from ..events.represent import histogram

__all__ = ["EVENT_FRAME_MODES", "event_frame", "sgbm_disparity", "fill_invalid_disparity"]

EVENT_FRAME_MODES = ("count", "time_surface", "polarity")


def _latest_time(x: np.ndarray, y: np.ndarray, t: np.ndarray, height: int, width: int) -> np.ndarray:
    """Timestamp of each pixel's latest event, int64 (height * width,), int64 min where none.

    Pixels are the nearest pixel with halves rounded up (``floor(x + 0.5)``), the rule of
    :mod:`stereo_snn.events.represent`; events outside the frame are ignored.
    """
    xi = np.floor(np.asarray(x, dtype=np.float64) + 0.5)
    yi = np.floor(np.asarray(y, dtype=np.float64) + 0.5)
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    flat = yi[inside].astype(np.int64) * width + xi[inside].astype(np.int64)
    last = np.full(height * width, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(last, flat, np.asarray(t, dtype=np.int64)[inside])
    return last


def _check_size(height: int, width: int) -> None:
    if int(height) < 1 or int(width) < 1:
        raise RepresentationError(f"frame size must be positive, got height={height}, width={width}")


def _to_uint8(values: np.ndarray, scale: float) -> np.ndarray:
    return (
        np.clip(np.rint(values * (255.0 / scale)), 0, 255).astype(np.uint8)
        if scale > 0
        else np.zeros(values.shape, np.uint8)
    )


def event_frame(
    events: Any,
    height: int,
    width: int,
    mode: Literal["count", "time_surface", "polarity"] = "count",
    tau_us: float | None = None,
    blur_sigma: float = 1.0,
    percentile: float = 99.0,
) -> np.ndarray:
    """Accumulate a window of events into an 8-bit image (height, width) for block matching.

    Args:
        events: :class:`stereo_snn.events.Events` (or any ``(x, y, t, p)`` tuple): x, y
            pixels (float rectified or integer), t microseconds, p in {0,1} or {-1,+1}.
            Coordinates are rounded to the nearest pixel (halves up, as in
            :mod:`stereo_snn.events.represent`); events outside the frame are dropped.
        height, width: frame size in pixels.
        mode: ``"count"``: log(1 + events per pixel), scaled so that the ``percentile``-th
            percentile of non-empty pixels maps to 255; ``"time_surface"``:
            ``exp(-(t_last_event - t_pixel) / tau_us)`` of the pixel's latest event
            (0 where none); ``"polarity"``: 128 + net polarity, scaled like ``count``.
        tau_us: time-surface decay in microseconds (default: a third of the window span).
        blur_sigma: Gaussian blur (pixels) applied before quantisation; 0 disables it.
            A little blur turns isolated event pixels into texture SGBM can match.
        percentile: robust maximum for the ``count``/``polarity`` scaling (0-100].

    Returns:
        uint8 (height, width) image; all zeros for an empty window.
    """
    _check_size(height, width)
    if mode not in EVENT_FRAME_MODES:
        raise ConfigError(f"event frame mode must be one of {', '.join(EVENT_FRAME_MODES)}, got {mode!r}")
    if not 0 < percentile <= 100:
        raise ConfigError(f"percentile must be in (0, 100], got {percentile}")
    if tau_us is not None and not tau_us > 0:
        raise ConfigError(f"tau_us must be positive microseconds, got {tau_us}")
    x, y, t, p = events[0], events[1], events[2], events[3]
    height, width = int(height), int(width)
    if mode == "time_surface":
        last = _latest_time(x, y, t, height, width)
        hit = last > np.iinfo(np.int64).min
        img = np.zeros(height * width, np.float64)
        if hit.any():
            t_end, t_first = int(last[hit].max()), int(np.min(np.asarray(t, dtype=np.int64)))
            tau = float(tau_us) if tau_us is not None else max(t_end - t_first, 1) / 3.0
            img[hit] = np.exp(-(t_end - last[hit]) / tau)
    else:
        off, on = histogram(x, y, t, p, height, width).astype(np.float64)
        if mode == "count":
            img = np.log1p(off + on)
        else:
            net = on - off
            img = np.sign(net) * np.log1p(np.abs(net))
    img = img.reshape(height, width)
    if blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), float(blur_sigma))
    if mode == "time_surface":
        return _to_uint8(img, 1.0)
    magnitude = np.abs(img[img != 0])
    scale = float(np.percentile(magnitude, percentile)) if magnitude.size else 0.0
    if mode == "count":
        return _to_uint8(img, scale)
    return _to_uint8(img + scale, 2.0 * scale)  # polarity: 0 net -> 128 (mid grey)


def _nearest_valid_along_rows(disp: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid pixels of each row from the nearest valid pixel to the left and to the
    right, taking the smaller (farther, background) disparity where both exist; rows
    without any valid pixel stay NaN."""
    h, w = disp.shape
    cols = np.broadcast_to(np.arange(w), (h, w))
    left_idx = np.maximum.accumulate(np.where(valid, cols, -1), axis=1)
    right_idx = np.minimum.accumulate(np.where(valid, cols, w)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(h)[:, None]
    left_val = np.where(left_idx >= 0, disp[rows, np.clip(left_idx, 0, w - 1)], np.nan)
    right_val = np.where(right_idx < w, disp[rows, np.clip(right_idx, 0, w - 1)], np.nan)
    filled = np.fmin(left_val, right_val)  # fmin ignores a NaN side
    return np.where(valid, disp, filled)


def fill_invalid_disparity(disp: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Give every pixel a disparity: invalid pixels take the smaller of the nearest valid
    disparities to their left and right in the same row (occluded pixels belong to the
    background, the classic left-right fill); rows with no valid pixel are filled the
    same way along columns; with no valid pixel at all the result is all zeros.

    Args:
        disp: float (H, W) disparity, pixels (values at invalid pixels are ignored).
        valid: bool (H, W), True where ``disp`` is trustworthy.
    Returns:
        float32 (H, W), finite everywhere.
    """
    disp = np.asarray(disp, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if not valid.any():
        return np.zeros(disp.shape, np.float32)
    out = _nearest_valid_along_rows(disp, valid)
    missing = np.isnan(out)
    if missing.any():
        out = _nearest_valid_along_rows(out.T, ~missing.T).T
    return out.astype(np.float32)


def sgbm_disparity(
    left_events: Any,
    right_events: Any,
    height: int,
    width: int,
    max_disp: int,
    block_size: int = 11,
    frame_mode: Literal["count", "time_surface", "polarity"] = "polarity",
    blur_sigma: float = 1.0,
    uniqueness_ratio: int = 5,
    speckle_window_size: int = 100,
    speckle_range: int = 2,
    disp12_max_diff: int = 1,
    p1_scale: int = 8,
    p2_scale: int = 96,
    fill: bool = True,
) -> np.ndarray:
    """Disparity (pixels, rectified left frame) from OpenCV StereoSGBM on event frames.

    Args:
        left_events, right_events: rectified events of the same window
            (:class:`stereo_snn.events.Events`).
        height, width: rectified frame size in pixels.
        max_disp: largest disparity searched, pixels; SGBM's ``numDisparities`` is the
            smallest multiple of 16 >= ``max_disp``, and results are clipped to
            ``[0, max_disp]``.
        block_size: odd matching block side, pixels (5-15 sensible).
        frame_mode, blur_sigma: how events become images (:func:`event_frame`).
        uniqueness_ratio, speckle_window_size, speckle_range, disp12_max_diff: the
            OpenCV parameters of the same name (validity checks).
        p1_scale, p2_scale: smoothness penalties ``P1 = p1_scale * block_size**2``,
            ``P2 = p2_scale * block_size**2`` (OpenCV's recommended 8 and 32).
        fill: fill pixels SGBM leaves invalid (:func:`fill_invalid_disparity`) so every
            pixel has a disparity; with ``fill=False`` they are NaN.

    Returns:
        float32 (height, width) disparity in pixels.
    """
    _check_size(height, width)
    if int(max_disp) < 1:
        raise ConfigError(f"max_disp must be >= 1 pixel, got {max_disp}")
    if block_size < 1 or block_size % 2 == 0:
        raise ConfigError(f"SGBM block_size must be a positive odd number of pixels, got {block_size}")
    num_disp = 16 * math.ceil(int(max_disp) / 16)
    if num_disp >= width:
        raise ConfigError(
            f"max_disp {max_disp} needs numDisparities {num_disp}, which must be smaller than the width {width}"
        )
    left = event_frame(left_events, height, width, mode=frame_mode, blur_sigma=blur_sigma)
    right = event_frame(right_events, height, width, mode=frame_mode, blur_sigma=blur_sigma)
    matcher = cv2.StereoSGBM_create(
        minDisparity=0,
        numDisparities=num_disp,
        blockSize=int(block_size),
        P1=int(p1_scale) * block_size * block_size,
        P2=int(p2_scale) * block_size * block_size,
        disp12MaxDiff=int(disp12_max_diff),
        uniquenessRatio=int(uniqueness_ratio),
        speckleWindowSize=int(speckle_window_size),
        speckleRange=int(speckle_range),
        mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY,
    )
    raw = matcher.compute(left, right).astype(np.float32) / 16.0  # fixed point, 4 fractional bits
    valid = raw >= 0  # OpenCV marks invalid pixels with (minDisparity - 1) * 16
    # pixels without any event nearby (within the blur) in the left camera carry no evidence
    counts = left if frame_mode == "count" else event_frame(left_events, height, width, "count", blur_sigma=blur_sigma)
    valid &= counts > 0
    if fill:
        disp = fill_invalid_disparity(raw, valid)
    else:
        disp = np.where(valid, raw, np.nan).astype(np.float32)
    return np.clip(disp, 0.0, float(max_disp)).astype(np.float32)  # NaN (fill=False) stays NaN
