"""Straightforward torch reference implementations of the event representations.

These follow the published formulas line by line (the DSEC voxel grid is written the way
the official DSEC code writes it: eight masked scatter-adds with ``index_put_(...,
accumulate=True)``) and are what the tests compare the numba kernels against and what the
events benchmark measures them against. They are not used by the pipeline.
"""

from __future__ import annotations

import numpy as np
import torch


def _relative_time(t: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(t - t[0]) and (t[-1] - t[0]) as float32 tensors; the difference is taken in
    int64 (integer t) or float64 (float t) before the float32 cast, as the DSEC loader does."""
    t = np.asarray(t)
    wide = t.astype(np.float64 if t.dtype.kind == "f" else np.int64)
    rel = wide - wide[0]
    return torch.from_numpy(rel.astype(np.float32)), torch.tensor(np.float32(rel[-1]))


def voxel_grid_reference(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    bins: int,
    height: int,
    width: int,
    normalize: bool = True,
) -> np.ndarray:
    """DSEC voxel grid in plain torch, float32 ``[bins, height, width]``.

    Polarity -> +/-1 (p > 0 is ON); ``t_norm = (bins - 1) * (t - t[0]) / (t[-1] - t[0])``
    in float32; trilinear weights to the truncated-toward-zero integer neighbours, masked
    to the bounds, accumulated with ``index_put_``; optional normalisation of the non-zero
    cells by their mean and unbiased std (mean subtraction only when std is not > 0).
    Deviation from the DSEC code, shared with :func:`stereo_snn.events.voxel_grid`: when
    ``t[-1] == t[0]`` every event gets ``t_norm = 0`` instead of a division by zero.
    """
    grid = torch.zeros((bins, height, width), dtype=torch.float32)
    if len(t) == 0:
        return grid.numpy()
    xf = torch.from_numpy(np.asarray(x, dtype=np.float32))
    yf = torch.from_numpy(np.asarray(y, dtype=np.float32))
    value = torch.from_numpy(np.where(np.asarray(p) > 0, 1.0, -1.0).astype(np.float32))
    dt, span = _relative_time(t)
    if span == 0:
        t_norm = 0 * dt / 1
    else:
        t_norm = (bins - 1) * dt / span
    x0, y0, t0 = xf.int(), yf.int(), t_norm.int()
    for xl in (x0, x0 + 1):
        for yl in (y0, y0 + 1):
            for tl in (t0, t0 + 1):
                mask = (xl >= 0) & (xl < width) & (yl >= 0) & (yl < height) & (tl >= 0) & (tl < bins)
                weights = value * (1 - (xl - xf).abs()) * (1 - (yl - yf).abs()) * (1 - (tl - t_norm).abs())
                index = (tl[mask].long(), yl[mask].long(), xl[mask].long())
                grid.index_put_(index, weights[mask], accumulate=True)
    if normalize:
        nonzero = torch.nonzero(grid, as_tuple=True)
        if nonzero[0].numel() > 0:
            mean = grid[nonzero].mean()
            std = grid[nonzero].std()
            if std > 0:
                grid[nonzero] = (grid[nonzero] - mean) / std
            else:
                grid[nonzero] = grid[nonzero] - mean
    return grid.numpy()
