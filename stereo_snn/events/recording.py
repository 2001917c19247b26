"""In-memory containers shared by the readers, writers and the simulator (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Events", "StereoRecording", "empty_events"]


class Events(NamedTuple):
    """A window of events as parallel numpy arrays.

    x, y: pixel coordinates; integer (raw sensor pixels) or float32 (rectified, sub-pixel).
    t: int64, absolute microseconds.
    p: int8 polarity in {0, 1} (1 = brightness increase, ON).
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray

    def __len__(self) -> int:  # number of events, not number of fields
        return int(self.t.shape[0])

    @property
    def count(self) -> int:
        return int(self.t.shape[0])


def _make_events(cls, iterable) -> "Events":
    # NamedTuple._make checks len(result), which Events overrides to mean the event count;
    # check the number of fields with tuple.__len__ instead so _make/_replace work.
    result = tuple.__new__(cls, iterable)
    if tuple.__len__(result) != len(cls._fields):
        raise TypeError(f"Events needs {len(cls._fields)} arrays (x, y, t, p), got {tuple.__len__(result)}")
    return result


Events._make = classmethod(_make_events)  # type: ignore[method-assign]


def empty_events(float_coords: bool = False) -> Events:
    """An empty window with the canonical dtypes."""
    ctype = np.float32 if float_coords else np.uint16
    return Events(np.zeros(0, ctype), np.zeros(0, ctype), np.zeros(0, np.int64), np.zeros(0, np.int8))


@dataclass
class StereoRecording:
    """A stereo event recording with ground truth, as the simulator makes it and the
    DSEC/MVSEC writers store it.

    Attributes:
        name: sequence name (folder / file stem).
        height, width: sensor size in pixels (both cameras).
        left, right: raw events as the cameras record them (integer pixel coordinates,
            t absolute microseconds, p in {0, 1}), sorted by t.
        rectify_left, rectify_right: float32 (height, width, 2); ``rectify_*[y, x]`` is the
            rectified (x, y) of raw pixel (x, y) (DSEC convention).
        gt_timestamps_us: int64 (N,), absolute microseconds of the ground-truth maps.
        gt_disparity: float32 (N, height, width), disparity in pixels in the rectified left
            frame, 0 = invalid.
        fx, fy, cx, cy: rectified intrinsics (pixels) shared by both rectified cameras.
        baseline_m: stereo baseline in metres (disparity = fx * baseline_m / depth).
        t_offset_us: offset added to stored relative timestamps to get absolute ones.
    """

    name: str
    height: int
    width: int
    left: Events
    right: Events
    rectify_left: np.ndarray
    rectify_right: np.ndarray
    gt_timestamps_us: np.ndarray
    gt_disparity: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    baseline_m: float
    t_offset_us: int = 0

    @property
    def focal_baseline(self) -> float:
        """fx * baseline in pixel-metres: depth (m) = focal_baseline / disparity (px)."""
        return float(self.fx * self.baseline_m)
