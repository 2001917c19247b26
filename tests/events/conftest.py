"""Fixtures for the event IO tests: small random event streams and stereo recordings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from stereo_snn.events import Events, StereoRecording


def _make_events(n: int, t0_us: int, span_us: int, height: int, width: int, seed: int = 0) -> Events:
    """n sorted events in [t0_us, t0_us + span_us) with clustered, repeated timestamps."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, span_us, n)).astype(np.int64) + t0_us
    t[n // 3 : n // 3 + 20] = t[n // 3]  # a run of equal timestamps
    return Events(
        rng.integers(0, width, n).astype(np.uint16),
        rng.integers(0, height, n).astype(np.uint16),
        t,
        rng.integers(0, 2, n).astype(np.int8),
    )


def _brute_force(events: Events, t_start: int, t_end: int) -> Events:
    """Reference window: numpy filter on the whole stream."""
    m = (events.t >= t_start) & (events.t < t_end)
    return Events(events.x[m], events.y[m], events.t[m], events.p[m])


def _shifted_map(height: int, width: int, dx: float, dy: float) -> np.ndarray:
    """A non-identity rectify map: raw (x, y) -> (x + dx, y + dy)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.stack([xs + dx, ys + dy], axis=-1)


def _file_digest(path: Path) -> tuple[int, str]:
    """(mtime_ns, sha256) of a file, to show readers never write."""
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def make_events():
    return _make_events


@pytest.fixture
def brute_force():
    return _brute_force


@pytest.fixture
def shifted_map():
    return _shifted_map


@pytest.fixture
def file_digest():
    return _file_digest


@pytest.fixture
def small_events() -> Events:
    return _make_events(5000, t0_us=1_000_000_000, span_us=250_000, height=24, width=32, seed=1)


@pytest.fixture
def recording() -> StereoRecording:
    """A tiny stereo recording (24 x 32) with 4 ground-truth maps at 10 Hz."""
    h, w = 24, 32
    t0 = 5_000_000_000
    left = _make_events(3000, t0, 400_000, h, w, seed=2)
    right = _make_events(2500, t0, 400_000, h, w, seed=3)
    rng = np.random.default_rng(4)
    gt = rng.uniform(0.5, 20.0, (4, h, w)).astype(np.float32)
    gt[:, :3, :] = 0.0  # invalid rows
    return StereoRecording(
        name="sim_seq_00",
        height=h,
        width=w,
        left=left,
        right=right,
        rectify_left=_shifted_map(h, w, 0.25, -0.5),
        rectify_right=_shifted_map(h, w, -1.5, 0.75),
        gt_timestamps_us=t0 + np.arange(4, dtype=np.int64) * 100_000,
        gt_disparity=gt,
        fx=30.0,
        fy=30.5,
        cx=15.5,
        cy=11.5,
        baseline_m=0.6,
        t_offset_us=t0,
    )
