"""DSEC layout: sequence round trip, rectification, ground truth, calibration, submissions."""

from __future__ import annotations

import zipfile

import cv2
import h5py
import numpy as np
import pytest
import yaml

from stereo_snn.errors import DatasetError, EventFileError
from stereo_snn.events import (
    DSECSequence,
    DSECSplit,
    Events,
    load_calibration,
    load_rectify_map,
    read_disparity_png,
    rectify_events,
    validate_submission,
    write_disparity_png,
    write_dsec_sequence,
    write_rectify_map,
    write_submission_png,
    write_test_csv,
    zip_submission,
)
from stereo_snn.events.dsec import read_test_csv


@pytest.fixture
def seq_dir(tmp_path, recording):
    return write_dsec_sequence(recording, tmp_path / "train", write_test_csv_file=True)


def test_layout_matches_dsec(seq_dir, recording):
    names = sorted(str(p.relative_to(seq_dir)) for p in seq_dir.rglob("*") if p.is_file())
    assert names == [
        "calibration/cam_to_cam.yaml",
        "disparity/event/000000.png",
        "disparity/event/000002.png",
        "disparity/event/000004.png",
        "disparity/event/000006.png",
        "disparity/timestamps.txt",
        "events/left/events.h5",
        "events/left/rectify_map.h5",
        "events/right/events.h5",
        "events/right/rectify_map.h5",
        f"{recording.name}.csv",
    ]
    with h5py.File(seq_dir / "events/left/events.h5", "r") as f:
        assert set(f) == {"events", "ms_to_idx", "t_offset"}
        assert int(f["t_offset"][()]) == recording.t_offset_us
    with h5py.File(seq_dir / "events/left/rectify_map.h5", "r") as f:
        assert f["rectify_map"].shape == (24, 32, 2)


@pytest.mark.parametrize("camera", ["left", "right"])
def test_sequence_events_round_trip(seq_dir, recording, brute_force, camera):
    raw = getattr(recording, camera)
    rmap = getattr(recording, f"rectify_{camera}")
    t0 = recording.t_offset_us
    with DSECSequence(seq_dir) as seq:
        assert (seq.name, seq.height, seq.width) == (recording.name, 24, 32)
        assert seq.time_range_us(camera) == (t0, int(raw.t[-1]) + 1)
        for a, b in [(0, 50_000), (49_999, 150_001), (333_000, 400_000)]:
            ref = brute_force(raw, t0 + a, t0 + b)
            got_raw = seq.events(camera, t0 + a, t0 + b, rectify=False)
            for u, v in zip(got_raw, ref):
                np.testing.assert_array_equal(u, v)
            kept = seq.events(camera, t0 + a, t0 + b, keep_outside=True)
            np.testing.assert_array_equal(kept.x, rmap[ref.y, ref.x, 0])
            np.testing.assert_array_equal(kept.y, rmap[ref.y, ref.x, 1])
            assert kept.x.dtype == np.float32
            inside = (kept.x >= 0) & (kept.x < 32) & (kept.y >= 0) & (kept.y < 24)
            assert 0 < inside.sum() < len(ref)  # the shifted maps push some events out
            dropped = seq.events(camera, t0 + a, t0 + b)
            np.testing.assert_array_equal(dropped.t, ref.t[inside])
            np.testing.assert_array_equal(dropped.x, kept.x[inside])


def test_ground_truth_round_trip(seq_dir, recording):
    seq = DSECSequence(seq_dir)
    assert seq.has_ground_truth
    np.testing.assert_array_equal(seq.disparity_timestamps_us(), recording.gt_timestamps_us)
    for i in range(4):
        d = seq.disparity(i)
        assert d.dtype == np.float32 and d.shape == (24, 32)
        np.testing.assert_allclose(d, np.round(recording.gt_disparity[i] * 256) / 256, atol=0)
        assert np.all(d[:3] == 0)
        assert seq.disparity_file_index(i) == 2 * i
    with pytest.raises(DatasetError, match="out of range"):
        seq.disparity(4)


def test_calibration_and_depth(seq_dir, recording):
    cal = DSECSequence(seq_dir).calibration
    assert (cal.fx, cal.fy, cal.cx, cal.cy) == (30.0, 30.5, 15.5, 11.5)
    assert cal.baseline_m == pytest.approx(0.6)
    assert cal.Q.shape == (4, 4)
    disp = np.array([[0.0, 1.0, 18.0, np.nan, -2.0]])
    depth = cal.disparity_to_depth(disp)
    np.testing.assert_allclose(depth[0, 1:3], [18.0, 1.0], rtol=1e-6)
    assert np.isnan(depth[0, [0, 3, 4]]).all()
    np.testing.assert_allclose(cal.depth_to_disparity(depth), [[0.0, 1.0, 18.0, 0.0, 0.0]], rtol=1e-6)
    # Q is applied in full: a principal-point difference shifts disparity
    q = cal.Q.copy()
    q[3, 3] = 2.0 * q[3, 2]
    path = seq_dir / "calibration" / "cam_to_cam.yaml"
    data = yaml.safe_load(path.read_text())
    data["disparity_to_depth"]["cams_03"] = q.tolist()
    path.write_text(yaml.safe_dump(data))
    assert load_calibration(path).disparity_to_depth(np.array([16.0]))[0] == pytest.approx(18.0 / 18.0)


def test_test_csv_lookup(seq_dir, recording, tmp_path):
    entries = DSECSequence(seq_dir).test_entries()
    assert [e.file_index for e in entries] == [0, 2, 4, 6]
    assert [e.timestamp_us for e in entries] == recording.gt_timestamps_us.tolist()
    other = tmp_path / "csvs"
    write_test_csv(other / f"{recording.name}.csv", [(123, 20), (456, 40)])
    assert (other / f"{recording.name}.csv").read_text().startswith("# timestamp, file_index\n")
    assert DSECSequence(seq_dir, test_csv=other).test_entries() == [(123, 20), (456, 40)]
    assert DSECSequence(seq_dir, test_csv=other / f"{recording.name}.csv").test_entries()[1].file_index == 40
    with pytest.raises(DatasetError, match="test csv"):
        DSECSequence(seq_dir, test_csv=tmp_path / "none").test_entries()


def test_split(tmp_path, recording):
    root = tmp_path / "train"
    write_dsec_sequence(recording, root)
    recording.name = "another_seq"
    write_dsec_sequence(recording, root)
    (root / "notes").mkdir()
    split = DSECSplit(root)
    assert len(split) == 2 and split.names == ["another_seq", "sim_seq_00"]
    assert split[1].name == "sim_seq_00" and split["another_seq"].name == "another_seq"
    assert [s.name for s in split] == split.names
    with pytest.raises(DatasetError, match="no sequence named"):
        split["zurich"]
    with pytest.raises(DatasetError, match="out of range"):
        split[5]
    with pytest.raises(DatasetError, match="no DSEC sequences"):
        DSECSplit(root / "notes")


# ---------------------------------------------------------------------------- rectification


def test_rectify_events_keep_and_drop(shifted_map):
    rmap = shifted_map(4, 5, 0.5, -0.25)
    ev = Events(
        np.array([0, 4, 2, 4], np.uint16),
        np.array([0, 3, 1, 0], np.uint16),
        np.arange(4),
        np.array([1, 0, 1, 0], np.int8),
    )
    kept = rectify_events(ev, rmap, keep_outside=True)
    np.testing.assert_array_equal(kept.x, [0.5, 4.5, 2.5, 4.5])
    np.testing.assert_array_equal(kept.y, [-0.25, 2.75, 0.75, -0.25])
    dropped = rectify_events(ev, rmap)
    np.testing.assert_array_equal(dropped.t, [1, 2])  # x = 4.5 is inside (< 5), y = -0.25 is not
    rmap[1, 2] = np.nan
    np.testing.assert_array_equal(rectify_events(ev, rmap).t, [1])
    with pytest.raises(EventFileError, match="outside the 5x4 rectify map"):
        rectify_events(Events(np.array([5], np.uint16), np.array([0], np.uint16), np.zeros(1), np.zeros(1)), rmap)
    with pytest.raises(EventFileError, match="must be integers"):
        rectify_events(kept, rmap)
    with pytest.raises(EventFileError, match="shape"):
        rectify_events(ev, rmap[..., 0])


def test_rectify_map_file(tmp_path, shifted_map):
    rmap = shifted_map(6, 7, 1.0, 2.0)
    write_rectify_map(tmp_path / "r.h5", rmap)
    np.testing.assert_array_equal(load_rectify_map(tmp_path / "r.h5", shape=(6, 7)), rmap)
    with pytest.raises(DatasetError, match="expected 480x640"):
        load_rectify_map(tmp_path / "r.h5", shape=(480, 640))
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["something_else"] = rmap
    with pytest.raises(DatasetError, match="missing dataset 'rectify_map'"):
        load_rectify_map(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "shape.h5", "w") as f:
        f["rectify_map"] = rmap[..., :1]
    with pytest.raises(DatasetError, match=r"shape.h5: rectify map must have shape"):
        load_rectify_map(tmp_path / "shape.h5")
    with pytest.raises(DatasetError, match="not found"):
        load_rectify_map(tmp_path / "nope.h5")


# ---------------------------------------------------------------------------- PNG and bad input


def test_disparity_png_round_trip(tmp_path):
    d = np.array([[0.0, 1.0 / 256, 12.3456, 200.0, np.nan, -4.0, 1000.0]], np.float32)
    write_disparity_png(tmp_path / "d.png", d)
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, [[0, 1, round(12.3456 * 256), 51200, 0, 0, 65535]])
    np.testing.assert_allclose(read_disparity_png(tmp_path / "d.png"), raw / 256.0)
    cv2.imwrite(str(tmp_path / "u8.png"), np.zeros((2, 2), np.uint8))
    with pytest.raises(DatasetError, match="uint16"):
        read_disparity_png(tmp_path / "u8.png")
    (tmp_path / "junk.png").write_bytes(b"no png")
    with pytest.raises(DatasetError, match="cannot decode"):
        read_disparity_png(tmp_path / "junk.png")


def test_sequence_bad_input(tmp_path, seq_dir):
    with pytest.raises(DatasetError, match="not found"):
        DSECSequence(tmp_path / "missing")
    with pytest.raises(DatasetError, match="missing events/"):
        DSECSequence(tmp_path)
    seq = DSECSequence(seq_dir)
    with pytest.raises(DatasetError, match="camera must be"):
        seq.events("center", 0, 1)
    (seq_dir / "disparity" / "event" / "000006.png").unlink()
    with pytest.raises(DatasetError, match="3 disparity PNGs but 4 rows"):
        seq.disparity(0)
    (seq_dir / "calibration" / "cam_to_cam.yaml").write_text("intrinsics: {camRect0: {}}\n")
    with pytest.raises(DatasetError, match="missing key intrinsics.camRect0.camera_matrix"):
        _ = seq.calibration
    (seq_dir / "events" / "right" / "rectify_map.h5").unlink()
    with pytest.raises(DatasetError, match="rectify map file not found"):
        seq.events("right", 0, 1)
    (seq_dir / "events" / "left" / "events.h5").unlink()
    with pytest.raises(EventFileError, match="events.h5: event file not found"):
        seq.events("left", 0, 1)


def test_no_ground_truth_on_test_sequence(tmp_path, seq_dir):
    import shutil

    shutil.rmtree(seq_dir / "disparity")
    seq = DSECSequence(seq_dir)
    assert not seq.has_ground_truth
    with pytest.raises(DatasetError, match="no disparity ground truth"):
        seq.disparity_timestamps_us()


def test_readers_never_modify_files(seq_dir, recording, file_digest):
    files = sorted(p for p in seq_dir.rglob("*") if p.is_file())
    before = [file_digest(p) for p in files]
    with DSECSequence(seq_dir) as seq:
        for cam in ("left", "right"):
            seq.events(cam, recording.t_offset_us, recording.t_offset_us + 100_000)
        seq.disparity(1)
        _ = seq.calibration
        seq.test_entries()
    assert [file_digest(p) for p in files] == before


# ---------------------------------------------------------------------------- submissions


@pytest.fixture
def good_submission(tmp_path):
    csv_dir = tmp_path / "csv"
    write_test_csv(csv_dir / "interlaken_00_a.csv", [(1000, 20), (2000, 40)])
    write_test_csv(csv_dir / "thun_01_a.csv", [(5000, 0)])
    sub = tmp_path / "sub"
    rng = np.random.default_rng(0)
    for seq, idx in [("interlaken_00_a", 20), ("interlaken_00_a", 40), ("thun_01_a", 0)]:
        write_submission_png(sub, seq, idx, rng.uniform(0, 80, (480, 640)))
    return sub, csv_dir


def test_submission_png_values(tmp_path):
    d = np.full((480, 640), 10.3, np.float32)
    d[0, 0], d[0, 1], d[0, 2] = -1.0, np.nan, 1e6
    path = write_submission_png(tmp_path, "thun_01_a", 7, d)
    assert path == tmp_path / "thun_01_a" / "000007.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (480, 640)
    assert raw[0, 0] == 0 and raw[0, 1] == 0 and raw[0, 2] == 65535 and raw[5, 5] == round(10.3 * 256)


def test_valid_submission_dir_and_zip(tmp_path, good_submission):
    sub, csv_dir = good_submission
    assert validate_submission(sub, csv_dir) == []
    z = zip_submission(sub, tmp_path / "out" / "submission.zip")
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == [
            "interlaken_00_a/000020.png",
            "interlaken_00_a/000040.png",
            "thun_01_a/000000.png",
        ]
    assert validate_submission(z, csv_dir) == []
    assert validate_submission(sub, {"interlaken_00_a": [20, 40], "thun_01_a": [0]}) == []


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("missing_file", "1 files missing, e.g. 000040.png"),
        ("extra_file", "interlaken_00_a/000060.png: extra file"),
        ("wrong_shape", "shape (480, 320), expected (480, 640)"),
        ("uint8", "must be single-channel uint16"),
        ("rgb", "must be single-channel uint16"),
        ("not_png", "not a readable PNG"),
        ("unknown_sequence", "'zurich_city_99_a' is not a test sequence"),
        ("missing_sequence", "thun_01_a: sequence missing"),
        ("stray_file", "README.txt: unexpected entry"),
    ],
)
def test_invalid_submissions(tmp_path, good_submission, damage, expected):
    sub, csv_dir = good_submission
    seq = sub / "interlaken_00_a"
    if damage == "missing_file":
        (seq / "000040.png").unlink()
    elif damage == "extra_file":
        write_submission_png(sub, "interlaken_00_a", 60, np.zeros((480, 640)))
    elif damage == "wrong_shape":
        write_submission_png(sub, "interlaken_00_a", 40, np.zeros((480, 320)))
    elif damage == "uint8":
        cv2.imwrite(str(seq / "000040.png"), np.zeros((480, 640), np.uint8))
    elif damage == "rgb":
        cv2.imwrite(str(seq / "000040.png"), np.zeros((480, 640, 3), np.uint16))
    elif damage == "not_png":
        (seq / "000040.png").write_bytes(b"garbage")
    elif damage == "unknown_sequence":
        write_submission_png(sub, "zurich_city_99_a", 0, np.zeros((480, 640)))
    elif damage == "missing_sequence":
        import shutil

        shutil.rmtree(sub / "thun_01_a")
    elif damage == "stray_file":
        (sub / "README.txt").write_text("hi")
    problems = validate_submission(sub, csv_dir)
    assert len(problems) == 1 and expected in problems[0], problems
    with pytest.raises(DatasetError, match="1 problems") as info:
        validate_submission(sub, csv_dir, raise_errors=True)
    assert expected in str(info.value)
    z = zip_submission(sub, tmp_path / "s.zip") if damage != "stray_file" else None
    if z is not None:
        assert any(expected in p for p in validate_submission(z, csv_dir))


def test_all_problems_listed(tmp_path, good_submission):
    sub, csv_dir = good_submission
    (sub / "interlaken_00_a" / "000040.png").unlink()
    (sub / "thun_01_a" / "000000.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="2 problems") as info:
        validate_submission(sub, csv_dir, raise_errors=True)
    assert "000040.png" in str(info.value) and "not a readable PNG" in str(info.value)


def test_submission_bad_input(tmp_path, good_submission):
    sub, csv_dir = good_submission
    with pytest.raises(DatasetError, match="submission not found"):
        validate_submission(tmp_path / "nothing", csv_dir)
    (tmp_path / "bad.zip").write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match="not a readable zip"):
        validate_submission(tmp_path / "bad.zip", csv_dir)
    (csv_dir / "broken.csv").write_text("# timestamp, file_index\n1, 2, 3\n")
    with pytest.raises(DatasetError, match="broken.csv"):
        validate_submission(sub, csv_dir)
    with pytest.raises(DatasetError, match="no <sequence>/<index>.png"):
        zip_submission(tmp_path / "csv", tmp_path / "x.zip")
    assert read_test_csv(csv_dir / "thun_01_a.csv") == [(5000, 0)]


@pytest.mark.parametrize("keep_outside", [False, True])
def test_parallel_and_serial_rectify_kernels_agree(monkeypatch, make_events, shifted_map, keep_outside):
    import stereo_snn.events.rectify as rect

    ev = make_events(20_000, 0, 10_000, 30, 40, seed=9)
    rmap = shifted_map(30, 40, 1.7, -2.2)
    rmap[5:9, 10:20] = np.nan
    serial = rectify_events(ev, rmap, keep_outside=keep_outside)
    monkeypatch.setattr(rect, "PARALLEL_MIN_THREADS", 1)
    monkeypatch.setattr(rect, "PARALLEL_MIN_EVENTS", 1)
    parallel = rectify_events(ev, rmap, keep_outside=keep_outside)
    xr, yr = rmap[ev.y, ev.x, 0], rmap[ev.y, ev.x, 1]
    inside = (xr >= 0) & (xr < 40) & (yr >= 0) & (yr < 30)
    keep = np.ones_like(inside) if keep_outside else inside
    for got in (serial, parallel):
        np.testing.assert_array_equal(got.x, xr[keep])
        np.testing.assert_array_equal(got.y, yr[keep])
        np.testing.assert_array_equal(got.t, ev.t[keep])
        np.testing.assert_array_equal(got.p, ev.p[keep])


def test_sequence_pickles_for_worker_processes(seq_dir, recording):
    import pickle

    t0 = recording.t_offset_us
    with DSECSequence(seq_dir) as seq:
        before = seq.events("left", t0, t0 + 100_000)
        clone = pickle.loads(pickle.dumps(seq))
        assert clone._files == {}
        after = clone.events("left", t0, t0 + 100_000)
        clone.close()
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
