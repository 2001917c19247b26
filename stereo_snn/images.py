"""Array helpers shared by the metrics and the pictures: numpy conversion, one (H, W) map,
valid ground-truth pixels. numpy only (a torch tensor is accepted without importing torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DatasetError

__all__ = ["to_numpy", "as_image", "dsec_valid_mask"]


def to_numpy(array: Any) -> np.ndarray:
    """Return ``array`` (numpy array, torch tensor, or nested sequence) as a float64 numpy
    array, detached and on the CPU. torch is never imported here."""
    if hasattr(array, "detach"):  # torch.Tensor without importing torch
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def as_image(
    array: Any, name: str, error: type[Exception] = DatasetError, what: str = "one disparity map of shape (H, W)"
) -> np.ndarray:
    """Convert to float64 and squeeze leading singleton axes down to (H, W); raise ``error``
    naming ``name`` when the array is not one 2-D map."""
    a = to_numpy(array)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise error(f"{name}: expected {what}, got shape {tuple(a.shape)}")
    return a


def dsec_valid_mask(gt: np.ndarray) -> np.ndarray:
    """DSEC valid pixels: ground-truth disparity > 0 (0 = no ground truth; NaN is invalid too)."""
    return np.isfinite(gt) & (gt > 0)
