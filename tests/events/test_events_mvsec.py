"""MVSEC layout: write then read, rectification maps, depth/disparity, split protocol, bad input."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from stereo_snn.errors import DatasetError, EventFileError
from stereo_snn.events import Events, depth_to_disparity, disparity_to_depth
from stereo_snn.events.mvsec import (
    FOCAL_BASELINE,
    MVSECRecording,
    load_split_protocol,
    mvsec_split,
    scene_of,
    write_mvsec_recording,
)

UNIX_T0 = 1_504_645_177_000_000  # an MVSEC-like unix time in microseconds (Sept 2017)


@pytest.fixture
def mvsec_rec(recording, make_events):
    h, w = recording.height, recording.width
    recording.name = "indoor_flying2"
    recording.left = make_events(3000, UNIX_T0, 400_000, h, w, seed=7)
    recording.right = make_events(2000, UNIX_T0, 400_000, h, w, seed=8)
    recording.gt_timestamps_us = UNIX_T0 + 1234 + np.arange(4, dtype=np.int64) * 100_000
    return recording


@pytest.fixture
def data_path(tmp_path, mvsec_rec):
    return write_mvsec_recording(mvsec_rec, tmp_path / "mvsec", scene_name="indoor_flying")


def test_files_written(data_path):
    folder = data_path.parent
    assert sorted(p.name for p in folder.iterdir()) == [
        "indoor_flying2_data.hdf5",
        "indoor_flying2_gt.hdf5",
        "indoor_flying_left_x_map.txt",
        "indoor_flying_left_y_map.txt",
        "indoor_flying_right_x_map.txt",
        "indoor_flying_right_y_map.txt",
    ]
    with h5py.File(data_path, "r") as f:
        ev = f["davis/left/events"]
        assert ev.dtype == np.float64 and ev.shape == (3000, 4)
        assert set(np.unique(ev[:, 3])) == {-1.0, 1.0}
        assert 1.5e9 < ev[0, 2] < 1.6e9  # seconds


@pytest.mark.parametrize("camera", ["left", "right"])
def test_events_round_trip(data_path, mvsec_rec, brute_force, camera):
    raw = getattr(mvsec_rec, camera)
    rmap = getattr(mvsec_rec, f"rectify_{camera}")
    with MVSECRecording(data_path) as rec:
        assert rec.scene == "indoor_flying" and rec.name == "indoor_flying2"
        assert rec.sensor_size == (24, 32)
        assert rec.num_events(camera) == len(raw)
        assert rec.time_range_us(camera) == (int(raw.t[0]), int(raw.t[-1]) + 1)
        first = int(raw.t[0]) - UNIX_T0
        for a, b in [(0, 50_000), (12_345, 12_346), (99_999, 250_001), (-10, first + 10)]:
            ref = brute_force(raw, UNIX_T0 + a, UNIX_T0 + b)
            got = rec.events(camera, UNIX_T0 + a, UNIX_T0 + b, rectify=False)
            for u, v in zip(got, ref):
                np.testing.assert_array_equal(u, v)
            assert got.t.dtype == np.int64 and got.p.dtype == np.int8
            kept = rec.events(camera, UNIX_T0 + a, UNIX_T0 + b, keep_outside=True)
            np.testing.assert_allclose(kept.x, rmap[ref.y, ref.x, 0])
            np.testing.assert_allclose(kept.y, rmap[ref.y, ref.x, 1])
            dropped = rec.events(camera, UNIX_T0 + a, UNIX_T0 + b)
            assert len(dropped) <= len(kept)


def test_ground_truth_round_trip(data_path, mvsec_rec):
    rec = MVSECRecording(data_path)
    assert rec.has_ground_truth and rec.num_depth_frames() == 4
    np.testing.assert_array_equal(rec.depth_timestamps_us(), mvsec_rec.gt_timestamps_us)
    fb = mvsec_rec.focal_baseline
    assert rec.focal_baseline == pytest.approx(fb)  # the file attribute beats the scene table
    for i in range(4):
        gt = mvsec_rec.gt_disparity[i]
        depth = rec.depth(i)
        assert depth.dtype == np.float32
        assert np.isnan(depth[gt == 0]).all()
        np.testing.assert_allclose(depth[gt > 0], fb / gt[gt > 0], rtol=1e-6)
        disp = rec.disparity(i)
        np.testing.assert_allclose(disp, gt, rtol=1e-5)
        assert (disp[gt == 0] == 0).all()
    assert MVSECRecording(data_path, focal_baseline=1.0).focal_baseline == 1.0


def test_scene_attribute_finds_maps(tmp_path, mvsec_rec):
    mvsec_rec.name = "rig_take_07"
    data = write_mvsec_recording(mvsec_rec, tmp_path, scene_name="lab")
    rec = MVSECRecording(data)
    assert rec.scene == "lab" and (tmp_path / "lab_left_x_map.txt").is_file()
    assert rec.events("left", UNIX_T0, UNIX_T0 + 100_000).x.dtype == np.float32
    assert MVSECRecording(data, scene="other").scene == "other"


def test_focal_baseline_from_scene_table(tmp_path, data_path):
    with h5py.File(data_path.with_name("indoor_flying2_gt.hdf5"), "a") as f:
        del f.attrs["focal_baseline"]
    rec = MVSECRecording(data_path)
    assert rec.focal_baseline == FOCAL_BASELINE["indoor_flying"] == 19.941772
    np.testing.assert_allclose(rec.depth_to_disparity(np.array([19.941772, np.nan])), [1.0, 0.0])
    other = MVSECRecording(data_path, scene="lab_rig")
    with pytest.raises(DatasetError, match="unknown scene 'lab_rig'"):
        _ = other.focal_baseline


def test_depth_disparity_conversions():
    depth = np.array([1.0, 2.0, np.nan, 0.0, -1.0, np.inf])
    disp = depth_to_disparity(depth, 19.635287)
    np.testing.assert_allclose(disp, [19.635287, 19.635287 / 2, 0, 0, 0, 0], rtol=1e-6)
    back = disparity_to_depth(disp, 19.635287)
    np.testing.assert_allclose(back[:2], [1.0, 2.0], rtol=1e-6)
    assert np.isnan(back[2:]).all()
    assert scene_of("outdoor_night3") == "outdoor_night" and scene_of("indoor_flying") == "indoor_flying"


def test_split_protocol_file_and_frames():
    pkg = load_split_protocol()
    linked = Path(__file__).resolve().parents[2] / "datasets" / "mvsec" / "indoor_flying_splits.yaml"
    assert yaml.safe_load(linked.read_text()) == pkg
    s1 = mvsec_split(1)
    assert len(s1["train"]) == (1580 - 160) + (1815 - 125)
    assert {seq for seq, _ in s1["train"]} == {"indoor_flying2", "indoor_flying3"}
    assert len(s1["val"]) == 200 and len(s1["test"]) == (1201 - 140) - 200
    assert set(s1["val"]).isdisjoint(s1["test"])
    assert sorted(s1["val"] + s1["test"]) == [("indoor_flying1", f) for f in range(140, 1201)]
    assert s1 == mvsec_split(1, seed=pkg["default_seed"])
    assert mvsec_split(1, seed=1)["val"] != s1["val"]
    s3 = mvsec_split(3)
    assert s3["train"][0] == ("indoor_flying1", 80) and s3["train"][-1] == ("indoor_flying2", 1579)
    assert min(f for _, f in s3["val"] + s3["test"]) == 73
    with pytest.raises(DatasetError, match="split must be one of"):
        mvsec_split(4)


def test_bad_split_file(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("sequences: {1: a}\n")
    with pytest.raises(DatasetError, match="s.yaml: missing key 'train_frames'"):
        load_split_protocol(bad)
    with pytest.raises(DatasetError, match="cannot read"):
        load_split_protocol(tmp_path / "none.yaml")


# ---------------------------------------------------------------------------- bad input


def test_missing_files(tmp_path, data_path):
    with pytest.raises(DatasetError, match="data file not found"):
        MVSECRecording(tmp_path / "x_data.hdf5")
    with pytest.raises(DatasetError, match="ground-truth file not found"):
        MVSECRecording(data_path, gt_path=tmp_path / "nope_gt.hdf5")
    rec = MVSECRecording(data_path, maps_dir=tmp_path)
    with pytest.raises(DatasetError, match="indoor_flying_left_x_map.txt: MVSEC rectification map not found"):
        rec.events("left", UNIX_T0, UNIX_T0 + 1000)
    assert len(rec.events("left", UNIX_T0, UNIX_T0 + 100_000, rectify=False)) > 0
    data_path.with_name("indoor_flying2_gt.hdf5").unlink()
    rec = MVSECRecording(data_path)
    assert not rec.has_ground_truth
    with pytest.raises(DatasetError, match="no ground truth"):
        rec.depth(0)


def test_malformed_data(tmp_path, mvsec_rec, data_path):
    bad = tmp_path / "bad_data.hdf5"
    with h5py.File(bad, "w") as f:
        f["davis/left/events"] = np.zeros((5, 3))
        f["davis/right/events"] = np.zeros((5, 4))
    with pytest.raises(EventFileError, match="must be N x 4"):
        MVSECRecording(bad)
    with h5py.File(bad, "w") as f:
        f["davis/left/events"] = np.zeros((5, 4))
    with pytest.raises(EventFileError, match="missing dataset davis/right/events"):
        MVSECRecording(bad)
    with h5py.File(bad, "w") as f:
        f["davis/left/events"] = np.zeros((5, 4), np.int32)
        f["davis/right/events"] = np.zeros((5, 4))
    with pytest.raises(EventFileError, match="must be float"):
        MVSECRecording(bad)
    bad.write_bytes(data_path.read_bytes()[:2000])
    with pytest.raises(EventFileError, match="bad_data.hdf5"):
        MVSECRecording(bad)
    maps = data_path.parent / "indoor_flying_right_y_map.txt"
    maps.write_text("1 2\n3 x\n")
    with pytest.raises(DatasetError, match="malformed map"):
        MVSECRecording(data_path).events("right", UNIX_T0, UNIX_T0 + 1000)


def test_bad_windows_and_unsorted(tmp_path, mvsec_rec, data_path):
    rec = MVSECRecording(data_path)
    with pytest.raises(EventFileError, match="outside the recording"):
        rec.events("left", UNIX_T0 - 10_000, UNIX_T0 - 1)
    with pytest.raises(EventFileError, match="t_end must be greater"):
        rec.events("left", UNIX_T0 + 5, UNIX_T0 + 5)
    with pytest.raises(DatasetError, match="camera must be"):
        rec.events("middle", UNIX_T0, UNIX_T0 + 5)
    t = mvsec_rec.left.t.copy()
    t[100], t[101] = t[101] + 5, t[100]
    mvsec_rec.left = Events(mvsec_rec.left.x, mvsec_rec.left.y, t, mvsec_rec.left.p)
    folder = tmp_path / "swap"
    folder.mkdir()
    with h5py.File(folder / "swap_data.hdf5", "w") as f:
        for cam in ("left", "right"):
            ev = mvsec_rec.left
            f[f"davis/{cam}/events"] = np.stack([ev.x, ev.y, ev.t / 1e6, np.where(ev.p > 0, 1.0, -1.0)], 1)
    rec = MVSECRecording(folder / "swap_data.hdf5")
    with pytest.raises(EventFileError, match="not sorted"):
        rec.events("left", int(t[0]), int(t[-1]) + 1, rectify=False)


def test_readers_never_modify_files(data_path, file_digest):
    files = sorted(data_path.parent.iterdir())
    before = [file_digest(p) for p in files]
    with MVSECRecording(data_path) as rec:
        rec.events("left", UNIX_T0, UNIX_T0 + 200_000)
        rec.depth(2)
        rec.depth_timestamps_us()
    assert [file_digest(p) for p in files] == before


def test_recording_pickles_for_worker_processes(data_path):
    import pickle

    with MVSECRecording(data_path, focal_baseline=2.5) as rec:
        clone = pickle.loads(pickle.dumps(rec))
        np.testing.assert_array_equal(
            rec.events("right", UNIX_T0, UNIX_T0 + 90_000).t, clone.events("right", UNIX_T0, UNIX_T0 + 90_000).t
        )
        assert clone.focal_baseline == 2.5
        clone.close()
