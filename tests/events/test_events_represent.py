"""Event representations against direct references, degenerate windows and bad settings."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from stereo_snn.bench.reference import voxel_grid_reference
from stereo_snn.errors import RepresentationError
from stereo_snn.events.recording import Events
from stereo_snn.events.represent import (
    SBT,
    Histogram,
    MixedDensity,
    VoxelGrid,
    histogram,
    make_representation,
    mixed_density_stack,
    sbt,
    to_time_steps,
    voxel_grid,
)

H, W = 12, 16


def random_events(n: int, seed: int, float_coords: bool, margin: float = 0.0) -> Events:
    """n time-sorted events on an H x W sensor; float coordinates may leave the frame by
    ``margin`` pixels on each side; timestamps are absolute microseconds with repeats."""
    rng = np.random.default_rng(seed)
    if float_coords:
        x = rng.uniform(-margin, W - 1 + margin, n).astype(np.float32)
        y = rng.uniform(-margin, H - 1 + margin, n).astype(np.float32)
    else:
        x = rng.integers(0, W, n).astype(np.uint16)
        y = rng.integers(0, H, n).astype(np.uint16)
    t = np.sort(rng.integers(0, 50_000, n)).astype(np.int64) + 1_600_000_000_000_000
    p = rng.integers(0, 2, n).astype(np.int8)
    return Events(x, y, t, p)


def nearest(v: float) -> int:
    return int(np.floor(np.float32(v) + np.float32(0.5)))


# ----------------------------------------------------------------------------- voxel grid


@pytest.mark.parametrize("float_coords", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("bins", [1, 2, 5, 15])
def test_voxel_grid_matches_torch_reference(float_coords: bool, normalize: bool, bins: int) -> None:
    ev = random_events(3000, seed=bins, float_coords=float_coords, margin=2.5)
    got = voxel_grid(*ev, bins, H, W, normalize=normalize)
    want = voxel_grid_reference(*ev, bins, H, W, normalize=normalize)
    assert got.dtype == np.float32 and got.shape == (bins, H, W)
    assert np.abs(want).max() > 0.5  # the comparison is not between two empty grids
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "xdtype, tdtype, pvalues",
    [
        (np.float64, np.int64, (0, 1)),
        (np.int32, np.uint32, (-1, 1)),
        (np.uint16, np.float64, (0, 1)),
        (np.float32, np.int64, (-1.0, 1.0)),
    ],
)
def test_voxel_grid_accepts_any_numeric_dtypes(xdtype, tdtype, pvalues) -> None:
    rng = np.random.default_rng(7)
    n = 800
    if np.dtype(xdtype).kind == "f":
        x = rng.uniform(0, W - 1, n).astype(xdtype)
        y = rng.uniform(0, H - 1, n).astype(xdtype)
    else:
        x = rng.integers(0, W, n).astype(xdtype)
        y = rng.integers(0, H, n).astype(xdtype)
    if np.dtype(tdtype).kind == "f":
        t = np.sort(rng.uniform(10.0, 10.05, n))  # seconds, like MVSEC
    else:
        t = np.sort(rng.integers(0, 50_000, n)).astype(tdtype)
    p = np.asarray(pvalues)[rng.integers(0, 2, n)]
    got = voxel_grid(x, y, t, p, 4, H, W)
    want = voxel_grid_reference(x, y, t, p, 4, H, W)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # p in {-1, +1} means the same as {0, 1}
    np.testing.assert_allclose(got, voxel_grid(x, y, t, (p > 0).astype(np.uint8), 4, H, W), atol=1e-6)


def test_voxel_grid_unsorted_and_reversed_windows_match_reference() -> None:
    ev = random_events(2000, seed=3, float_coords=True, margin=1.0)
    rng = np.random.default_rng(0)
    for order in (rng.permutation(len(ev)), np.arange(len(ev))[::-1]):
        shuffled = [a[order] for a in ev]
        got = voxel_grid(*shuffled, 6, H, W)
        want = voxel_grid_reference(*shuffled, 6, H, W)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("where", [1, 4095, 4096, 4097, 9000, 9999])
def test_is_sorted_finds_one_descent_anywhere(where: int) -> None:
    from stereo_snn.events.represent import SORTED_BLOCK, _is_sorted

    t = np.arange(10_000, dtype=np.int64) // 3  # sorted, with repeats
    assert SORTED_BLOCK < t.size and _is_sorted(t) and _is_sorted(t[:1]) and _is_sorted(t[:0])
    t[where] = t[where - 1] - 1
    assert not _is_sorted(t)


def test_voxel_grid_window_with_one_late_descent_matches_reference() -> None:
    # sorted except one swapped pair far past the first block: must take the sorting path
    ev = random_events(9000, seed=11, float_coords=True, margin=1.0)
    t = ev.t.copy()
    t[7000], t[7001] = ev.t[7001] + 5, ev.t[7000]
    got = voxel_grid(ev.x, ev.y, t, ev.p, 7, H, W)
    np.testing.assert_allclose(got, voxel_grid_reference(ev.x, ev.y, t, ev.p, 7, H, W), rtol=0, atol=1e-5)


def test_voxel_grid_single_event_weights() -> None:
    # one event between pixels: bilinear split over 4 pixels, all in bin 0 (t_last == t0)
    x = np.array([2.25], np.float32)
    y = np.array([5.5], np.float32)
    grid = voxel_grid(x, y, np.array([1000]), np.array([1]), 3, H, W, normalize=False)
    assert np.isclose(grid[0, 5, 2], 0.75 * 0.5) and np.isclose(grid[0, 6, 3], 0.25 * 0.5)
    assert np.isclose(grid.sum(), 1.0) and np.all(grid[1:] == 0)
    # normalised: the four non-zero cells get mean 0 and unbiased std 1
    norm = voxel_grid(x, y, np.array([1000]), np.array([0]), 3, H, W)
    vals = norm[norm != 0]
    assert vals.size == 4 and np.isclose(vals.mean(), 0.0, atol=1e-6) and np.isclose(vals.std(ddof=1), 1.0)


def test_voxel_grid_degenerate_windows_are_defined() -> None:
    empty = np.zeros(0)
    for normalize in (True, False):
        grid = voxel_grid(empty, empty, empty.astype(np.int64), empty, 5, H, W, normalize=normalize)
        assert grid.shape == (5, H, W) and not grid.any()
    # one event on a pixel: one non-zero cell; normalised its std is undefined -> mean-subtract -> 0
    one = voxel_grid(np.array([3]), np.array([4]), np.array([7]), np.array([1]), 5, H, W, normalize=False)
    assert one[0, 4, 3] == 1.0 and one.sum() == 1.0
    assert not voxel_grid(np.array([3]), np.array([4]), np.array([7]), np.array([1]), 5, H, W).any()
    # all events at one timestamp: everything in bin 0, finite, like the guarded reference
    ev = random_events(300, seed=5, float_coords=True)
    same_t = np.full(len(ev), 123_456, np.int64)
    grid = voxel_grid(ev.x, ev.y, same_t, ev.p, 5, H, W)
    assert np.isfinite(grid).all() and grid[0].any() and not grid[1:].any()
    np.testing.assert_allclose(grid, voxel_grid_reference(ev.x, ev.y, same_t, ev.p, 5, H, W), atol=1e-5)
    # std 0: equal non-zero cells become 0 after mean subtraction, never NaN
    grid = voxel_grid(np.array([1, 5]), np.array([1, 1]), np.array([0, 0]), np.array([1, 1]), 2, H, W)
    assert np.isfinite(grid).all() and not grid.any()
    # non-finite coordinates (e.g. rectified with keep_outside) are ignored, as by the reference
    x = np.array([np.nan, 3.5, np.inf, -np.inf], np.float32)
    y = np.array([2.0, np.nan, 2.0, 1.0], np.float32)
    args = (x, y, np.array([0, 1, 2, 3]), np.array([1, 0, 1, 0]), 2, H, W)
    assert not voxel_grid(*args, normalize=False).any() and not voxel_grid_reference(*args, normalize=False).any()
    # all events outside the frame: zeros
    grid = voxel_grid(np.array([-5.0, 40.0]), np.array([1.0, 1.0]), np.array([0, 10]), np.array([1, 0]), 2, H, W)
    assert not grid.any()


# ----------------------------------------------------------------------------- SBT, histogram, mixed density


def sbt_loop(ev: Events, frames: int, t_start: float, t_end: float) -> np.ndarray:
    sums = np.zeros((frames, H, W), np.int64)
    for x, y, t, p in zip(*ev):
        xi, yi = nearest(x), nearest(y)
        if not (0 <= xi < W and 0 <= yi < H and t_start <= t < t_end):
            continue
        f = min(int(np.floor((t - t_start) * frames / (t_end - t_start))), frames - 1)
        sums[f, yi, xi] += 1 if p > 0 else -1
    return np.sign(sums).astype(np.float32)


@pytest.mark.parametrize("float_coords", [True, False])
@pytest.mark.parametrize("frames", [1, 3, 5])
def test_sbt_matches_loop(float_coords: bool, frames: int) -> None:
    ev = random_events(1500, seed=frames, float_coords=float_coords, margin=1.0)
    t0, t1 = int(ev.t.min()), int(ev.t.max()) + 1
    np.testing.assert_array_equal(sbt(*ev, frames, H, W), sbt_loop(ev, frames, t0, t1))
    # explicit window that cuts events at both ends
    a, b = t0 + 7_000, t0 + 41_000
    got = SBT(frames)(ev, H, W, t_start_us=a, t_end_us=b)
    np.testing.assert_array_equal(got, sbt_loop(ev, frames, a, b))
    assert set(np.unique(got)) <= {-1.0, 0.0, 1.0}


def test_sbt_float_seconds_default_window() -> None:
    # float timestamps in seconds (MVSEC): the default window ends just after the last event
    ev = random_events(1200, seed=9, float_coords=False)
    seconds = (ev.t - ev.t[0]) * 1e-6 + 1500.0
    got = sbt(ev.x, ev.y, seconds, ev.p, 4, H, W)
    want = sbt_loop(Events(ev.x, ev.y, seconds, ev.p), 4, seconds.min(), np.nextafter(seconds.max(), np.inf))
    np.testing.assert_array_equal(got, want)
    assert all(got[f].any() for f in range(4))  # every frame holds events


def test_sbt_degenerate_and_errors() -> None:
    empty = np.zeros(0)
    assert not sbt(empty, empty, empty.astype(np.int64), empty, 4, H, W).any()
    one = sbt(np.array([2]), np.array([3]), np.array([50]), np.array([0]), 4, H, W)
    assert one[0, 3, 2] == -1.0 and np.abs(one).sum() == 1.0
    same_t = sbt(np.array([2, 2, 9]), np.array([3, 3, 1]), np.array([5, 5, 5]), np.array([1, 1, 0]), 2, H, W)
    assert same_t[0, 3, 2] == 1.0 and same_t[0, 1, 9] == -1.0 and not same_t[1].any()
    with pytest.raises(RepresentationError, match="t_end_us"):
        sbt(np.array([1]), np.array([1]), np.array([5]), np.array([1]), 2, H, W, t_start_us=10, t_end_us=10)


def test_histogram_matches_loop() -> None:
    ev = random_events(1500, seed=11, float_coords=True, margin=1.0)
    want = np.zeros((2, H, W), np.float32)
    for x, y, _t, p in zip(*ev):
        xi, yi = nearest(x), nearest(y)
        if 0 <= xi < W and 0 <= yi < H:
            want[1 if p > 0 else 0, yi, xi] += 1
    got = histogram(*ev, H, W)
    np.testing.assert_array_equal(got, want)
    assert got.sum() > 1000
    np.testing.assert_array_equal(Histogram()(ev, H, W), want)
    empty = np.zeros(0)
    assert not histogram(empty, empty, empty, empty, H, W).any()


def mixed_density_loop(ev: Events, stacks: int) -> np.ndarray:
    """se-cff's procedure: stack i writes, in time order, the polarity of the newest
    ceil(N / 2**i) in-frame events (a later event overwrites an earlier one)."""
    inside = [(nearest(x), nearest(y), 1 if p > 0 else -1) for x, y, _t, p in zip(*ev)]
    inside = [e for e in inside if 0 <= e[0] < W and 0 <= e[1] < H]
    n = len(inside)
    out = np.zeros((stacks, H, W), np.float32)
    for i in range(stacks):
        keep = -(-n // 2**i)
        for xi, yi, pol in inside[n - keep :]:
            out[i, yi, xi] = pol
    return out


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_mixed_density_matches_loop(n: int) -> None:
    ev = random_events(n, seed=n, float_coords=True, margin=1.0)
    got = mixed_density_stack(*ev, 6, H, W)
    np.testing.assert_array_equal(got, mixed_density_loop(ev, 6))
    np.testing.assert_array_equal(MixedDensity(6)(ev, H, W), got)
    if n == 1000:  # fewer events per stack, and newer stacks are subsets
        counts = (got != 0).sum(axis=(1, 2))
        assert np.all(np.diff(counts) <= 0) and counts[0] > counts[-1] > 0


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda e: voxel_grid(*e, 0, H, W), "bins"),
        (lambda e: voxel_grid(*e, 2.5, H, W), "bins"),
        (lambda e: voxel_grid(*e, True, H, W), "bins"),
        (lambda e: voxel_grid(*e, 3, 0, W), "height"),
        (lambda e: voxel_grid(*e, 3, H, -2), "width"),
        (lambda e: sbt(*e, 0, H, W), "frames"),
        (lambda e: histogram(*e, H, 0), "width"),
        (lambda e: mixed_density_stack(*e, 0, H, W), "stacks"),
        (lambda e: voxel_grid(e.x[:-1], e.y, e.t, e.p, 3, H, W), "same length"),
        (lambda e: sbt(e.x, e.y, e.t[:-2], e.p, 3, H, W), "same length"),
        (lambda e: histogram(e.x.reshape(2, -1), e.y, e.t, e.p, H, W), "x must be 1-D"),
        (lambda e: mixed_density_stack(e.x, e.y, e.t, e.p.reshape(-1, 1), 3, H, W), "p must be 1-D"),
        (lambda e: voxel_grid(e.x, e.y, e.t.astype(str), e.p, 3, H, W), "t must be numeric"),
    ],
)
def test_impossible_settings_raise_representation_error(call, match: str) -> None:
    ev = random_events(10, seed=0, float_coords=True)
    with pytest.raises(RepresentationError, match=match):
        call(ev)


# ----------------------------------------------------------------------------- wrappers


def test_dataclasses_wrap_functions() -> None:
    ev = random_events(500, seed=2, float_coords=True)
    vg = VoxelGrid(bins=4, normalize=False)
    assert vg.channels == 4 and SBT(frames=3).channels == 3
    assert Histogram().channels == 2 and MixedDensity(stacks=5).channels == 5
    np.testing.assert_array_equal(vg(ev, H, W), voxel_grid(*ev, 4, H, W, normalize=False))
    np.testing.assert_array_equal(SBT(3)(ev, H, W), sbt(*ev, 3, H, W))
    with pytest.raises(AttributeError):
        vg.bins = 5  # frozen
    with pytest.raises(RepresentationError, match="bins"):
        VoxelGrid(bins=0)
    with pytest.raises(RepresentationError, match="normalize"):
        VoxelGrid(normalize="yes")


def test_make_representation() -> None:
    assert make_representation("histogram") == Histogram()
    assert make_representation("voxel_grid") == VoxelGrid()
    assert make_representation({"name": "voxel_grid", "bins": 15, "normalize": False}) == VoxelGrid(15, False)
    assert make_representation({"name": "sbt", "frames": 5}) == SBT(5)
    assert make_representation({"name": "mixed_density", "stacks": 10}).channels == 10
    with pytest.raises(RepresentationError, match="unknown representation 'voxel'"):
        make_representation("voxel")
    with pytest.raises(RepresentationError, match="frames"):
        make_representation({"name": "voxel_grid", "frames": 5})
    with pytest.raises(RepresentationError, match="'name'"):
        make_representation({"bins": 5})
    with pytest.raises(RepresentationError, match="stacks"):
        make_representation({"name": "mixed_density", "stacks": -1})
    with pytest.raises(RepresentationError, match="name or a mapping"):
        make_representation(5)


def test_to_time_steps() -> None:
    arr = np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3)
    out = to_time_steps(arr, 3)
    assert out.shape == (3, 2, 2, 3)
    np.testing.assert_array_equal(out[1, 0], arr[2])  # consecutive channels per step
    np.testing.assert_array_equal(out[2, 1], arr[5])
    assert to_time_steps(arr, 1).shape == (1, 6, 2, 3)
    import torch

    assert tuple(to_time_steps(torch.from_numpy(arr), 2).shape) == (2, 3, 2, 3)
    with pytest.raises(RepresentationError, match="not divisible"):
        to_time_steps(arr, 4)
    with pytest.raises(RepresentationError, match=r"\[C, H, W\]"):
        to_time_steps(arr[0], 2)
    with pytest.raises(RepresentationError, match="steps"):
        to_time_steps(arr, 0)


def test_represent_module_does_not_import_torch() -> None:
    code = "import sys, stereo_snn.events.represent; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
