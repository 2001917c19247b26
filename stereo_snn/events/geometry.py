"""Depth <-> disparity for a rectified stereo pair (no torch).

Conventions used throughout the project: disparity in pixels with 0 = invalid (DSEC PNG
convention); depth in metres with NaN = invalid (MVSEC convention).
``depth = focal_baseline / (disparity + disparity_offset)``, where ``focal_baseline`` is
fx * baseline (pixel-metres) and ``disparity_offset`` the principal-point difference
``cx_left - cx_right`` (0 for the usual rectification; from Q it is ``Q[3,3] / Q[3,2]``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["disparity_to_depth", "depth_to_disparity"]


def disparity_to_depth(disparity: np.ndarray, focal_baseline: float, disparity_offset: float = 0.0) -> np.ndarray:
    """Depth in metres (float32) from disparity in pixels; NaN where disparity <= 0 or not finite."""
    d = np.asarray(disparity, dtype=np.float64) + float(disparity_offset)
    valid = np.isfinite(d) & (np.asarray(disparity) > 0) & (d > 0)
    out = np.full(d.shape, np.nan, dtype=np.float32)
    out[valid] = (float(focal_baseline) / d[valid]).astype(np.float32)
    return out


def depth_to_disparity(depth: np.ndarray, focal_baseline: float, disparity_offset: float = 0.0) -> np.ndarray:
    """Disparity in pixels (float32) from depth in metres; 0 where depth is NaN, inf or <= 0."""
    z = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(z) & (z > 0)
    out = np.zeros(z.shape, dtype=np.float32)
    disp = float(focal_baseline) / z[valid] - float(disparity_offset)
    out[valid] = np.maximum(disp, 0.0).astype(np.float32)
    return out
