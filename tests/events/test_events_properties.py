"""Property-based tests (hypothesis) of the readers and representations: random and
adversarial arrays and truncated files give only the project's own errors, outputs hold no
NaN, and an un-normalised voxel grid conserves the in-frame polarity sum."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from stereo_snn.errors import DatasetError, StereoSNNError  # noqa: E402
from stereo_snn.events import Events  # noqa: E402
from stereo_snn.events.files import open_events, write_event_h5  # noqa: E402
from stereo_snn.events.rectify import load_rectify_map  # noqa: E402

FAST = settings(max_examples=25, deadline=None)


@st.composite
def raw_events(draw, height=12, width=16):
    n = draw(st.integers(0, 60))
    coords = st.integers(-3, 40)
    x = np.asarray(draw(st.lists(coords, min_size=n, max_size=n)), np.int64)
    y = np.asarray(draw(st.lists(coords, min_size=n, max_size=n)), np.int64)
    t = np.sort(np.asarray(draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n)), np.int64))
    p = np.asarray(draw(st.lists(st.sampled_from([-1, 0, 1, 2]), min_size=n, max_size=n)), np.int64)
    return Events(x, y, t, p)


@FAST
@given(ev=raw_events())
def test_voxel_grid_conserves_in_frame_polarity(ev):
    from stereo_snn.events.represent import voxel_grid

    h, w = 12, 16
    p = np.clip(ev.p, 0, 1).astype(np.int8)  # the canonical {0, 1}
    fx = ev.x.astype(np.float32) + 0.0
    fy = ev.y.astype(np.float32)
    grid = voxel_grid(fx, fy, ev.t, p, 5, h, w, normalize=False)
    assert np.isfinite(grid).all()
    inside = (ev.x >= 0) & (ev.x < w) & (ev.y >= 0) & (ev.y < h)
    assert grid.sum() == pytest.approx(float((2 * p[inside].astype(np.int64) - 1).sum()), abs=1e-3)


@FAST
@given(ev=raw_events(), bins=st.integers(1, 6))
def test_every_representation_is_finite_or_a_project_error(ev, bins):
    from stereo_snn.events import make_representation

    inside = (ev.x >= 0) & (ev.x < 16) & (ev.y >= 0) & (ev.y < 12)
    good = Events(
        ev.x[inside].astype(np.float32),
        ev.y[inside].astype(np.float32),
        ev.t[inside],
        np.clip(ev.p[inside], 0, 1).astype(np.int8),
    )
    for name in ("voxel_grid", "sbt", "histogram", "mixed_density"):
        try:
            rep = make_representation({"name": name, "bins": bins})
        except StereoSNNError:
            rep = make_representation(name)  # no bins parameter
        try:
            out = rep(good, 12, 16)
        except StereoSNNError:
            continue
        assert np.isfinite(np.asarray(out)).all(), name


@FAST
@given(ev=raw_events(), cut=st.floats(0.05, 0.95))
def test_written_then_damaged_event_files_give_only_project_errors(tmp_path_factory, ev, cut):
    d = tmp_path_factory.mktemp("ev")
    try:
        path = write_event_h5(d / "e.h5", ev, sensor_size=(12, 16), compression="gzip")
    except StereoSNNError:
        return  # negative coordinates: refused by the writer
    data = path.read_bytes()
    truncated = d / "t.h5"
    truncated.write_bytes(data[: int(len(data) * cut)])
    for candidate in (path, truncated):
        try:
            with open_events(candidate) as f:
                lo, hi = f.time_range_us
                if hi > lo:
                    got = f.slice(lo, hi)
                    assert len(got) == len(ev)
        except StereoSNNError:
            pass


@FAST
@given(
    arr=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 3)),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    )
)
def test_random_rectify_maps_load_or_give_a_project_error(tmp_path_factory, arr):
    path = tmp_path_factory.mktemp("map") / "rectify_map.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("rectify_map", data=arr)
    try:
        rmap = load_rectify_map(path)
    except DatasetError:
        return
    assert np.isfinite(rmap).mean() >= 0.5
