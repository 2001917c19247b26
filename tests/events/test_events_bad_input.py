"""Inconsistent or hostile event files give one clear project error naming the file, never a
silently wrong window (issue 13: ms_to_idx vs t, rectify maps, MVSEC ground truth, sizes,
permissions, a file where a folder is expected)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from stereo_snn import atomic
from stereo_snn.errors import DatasetError, EventFileError, StereoSNNError
from stereo_snn.events.dsec import DSECSequence, DSECSplit, load_calibration, write_dsec_sequence
from stereo_snn.events.files import open_events, write_event_h5
from stereo_snn.events.mvsec import MVSECRecording, write_mvsec_recording
from stereo_snn.events.rectify import load_rectify_map, write_rectify_map


@pytest.fixture
def seq_dir(tmp_path, recording):
    return write_dsec_sequence(recording, tmp_path / "train")


@pytest.fixture
def event_h5(tmp_path, small_events):
    """A DSEC-style events.h5 (with ms_to_idx) of ``small_events``; t_offset = first event."""
    t0 = int(small_events.t[0])
    return write_event_h5(tmp_path / "events.h5", small_events, t_offset_us=t0, sensor_size=(24, 32)), t0


def _edit_ms_to_idx(path, change):
    with h5py.File(path, "r+") as f:
        m = f["ms_to_idx"][()]
        f["ms_to_idx"][...] = change(m)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda m: np.minimum(m + 3000, m[-1]), id="offset by 3000 events"),
        pytest.param(lambda m: np.zeros_like(m), id="all zero"),
        pytest.param(lambda m: np.maximum(m.astype(np.int64) - 700, 0).astype(m.dtype), id="offset backwards"),
    ],
)
def test_ms_to_idx_inconsistent_with_t_is_refused(event_h5, brute_force, small_events, change):
    path, t0 = event_h5
    _edit_ms_to_idx(path, change)
    with open_events(path) as f:
        with pytest.raises(EventFileError, match=r"events\.h5: ms_to_idx is inconsistent with events/t"):
            f.slice(t0 + 100_000, t0 + 150_000)


def test_consistent_ms_to_idx_reads_exact_windows(event_h5, brute_force, small_events):
    path, t0 = event_h5
    with open_events(path) as f:
        for a, b in [(0, 1), (999, 1001), (100_000, 150_000), (0, 250_000), (249_000, 260_000)]:
            got = f.slice(t0 + a, t0 + b)
            assert np.array_equal(got.t, brute_force(small_events, t0 + a, t0 + b).t)


def test_dsec_sequence_with_shifted_ms_to_idx_names_the_file(seq_dir, recording):
    path = seq_dir / "events" / "left" / "events.h5"
    _edit_ms_to_idx(path, lambda m: np.minimum(m + 500, m[-1]))
    t0 = int(recording.gt_timestamps_us[1])
    with DSECSequence(seq_dir) as seq:
        with pytest.raises(EventFileError, match="left/events.h5: ms_to_idx is inconsistent"):
            seq.events("left", t0 - 50_000, t0)


def _bad_maps(h, w, good):
    nan = np.full_like(good, np.nan)
    return {
        "all NaN": (nan, "finite"),
        "mostly inf": (np.where(np.arange(h * w).reshape(h, w, 1) % 4 == 0, good, np.inf).astype(np.float32), "finite"),
        "scaled x1000": (good * 1000, "not a rectification"),
        "x/y swapped": (good[..., ::-1].copy(), "not a rectification"),
    }


@pytest.mark.parametrize("case", ["all NaN", "mostly inf", "scaled x1000", "x/y swapped"])
def test_implausible_rectify_map_is_refused_when_opened(seq_dir, recording, case):
    good = np.asarray(recording.rectify_left, np.float32)
    bad, expected = _bad_maps(*good.shape[:2], good)[case]
    path = seq_dir / "events" / "right" / "rectify_map.h5"
    write_rectify_map(path, bad)
    with pytest.raises(DatasetError, match=f"right/rectify_map.h5: .*{expected}"):
        load_rectify_map(path)
    from stereo_snn.stereo.data import DSECSource

    with pytest.raises(DatasetError, match="right/rectify_map.h5"):  # at open, not at every window
        DSECSource(seq_dir)


def test_transposed_rectify_map_is_refused(tmp_path):
    h, w = 48, 64
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    good = np.stack([xs + 0.3, ys - 0.2], axis=-1)
    path = write_rectify_map(tmp_path / "rectify_map.h5", good.transpose(1, 0, 2).copy())
    with pytest.raises(DatasetError, match="rectify_map.h5: .*transposed"):
        load_rectify_map(path)
    assert load_rectify_map(write_rectify_map(tmp_path / "ok.h5", good)).shape == (h, w, 2)


def test_calibration_yaml_error_is_one_line(seq_dir):
    path = seq_dir / "calibration" / "cam_to_cam.yaml"
    path.write_text("intrinsics:\n  camRect0: [1, 2\n  other: {\n")
    with pytest.raises(DatasetError) as err:
        load_calibration(path)
    message = str(err.value)
    assert "\n" not in message and "cam_to_cam.yaml: not valid YAML" in message and "line" in message


@pytest.fixture
def mvsec_files(tmp_path, recording):
    return write_mvsec_recording(recording, tmp_path / "mvsec", scene_name="lab")


def test_mvsec_gt_timestamps_out_of_order_are_refused(mvsec_files):
    gt = mvsec_files.with_name(mvsec_files.name.replace("_data", "_gt"))
    with h5py.File(gt, "r+") as f:
        ts = f["davis/left/depth_image_rect_ts"]
        ts[...] = ts[()][[0, 2, 1, 3]]
    with MVSECRecording(mvsec_files) as rec:
        with pytest.raises(DatasetError, match="_gt.hdf5: .*not strictly increasing"):
            rec.depth_timestamps_us()


@pytest.mark.parametrize("value", [0.0, -19.9, float("nan"), float("inf")])
def test_mvsec_focal_baseline_must_be_positive(mvsec_files, value):
    gt = mvsec_files.with_name(mvsec_files.name.replace("_data", "_gt"))
    with h5py.File(gt, "r+") as f:
        f.attrs["focal_baseline"] = value
    with MVSECRecording(mvsec_files) as rec:
        with pytest.raises(DatasetError, match="_gt.hdf5: attribute focal_baseline: .*positive"):
            rec.disparity(0)
    with pytest.raises(DatasetError, match="focal_baseline=: .*positive"):
        MVSECRecording(mvsec_files, focal_baseline=value)


def test_missing_mvsec_gt_is_reported_as_missing_not_as_unknown_scene(mvsec_files):
    mvsec_files.with_name(mvsec_files.name.replace("_data", "_gt")).unlink()
    with MVSECRecording(mvsec_files) as rec:
        with pytest.raises(DatasetError, match="_gt.hdf5 not found") as err:
            _ = rec.focal_baseline
    assert "unknown scene" not in str(err.value)


def test_generic_files_larger_than_the_given_size_are_refused_not_cropped(tmp_path, small_events):
    from stereo_snn.stereo.data import EventFilesSource

    left = write_event_h5(tmp_path / "l.h5", small_events)
    right = write_event_h5(tmp_path / "r.h5", small_events)
    src = EventFilesSource(left, right, height=12, width=16)
    t0 = int(small_events.t[0])
    with pytest.raises(EventFileError, match=r"l\.h5: event .* is outside the 16x12 sensor"):
        src.events("left", t0, t0 + 100_000)
    fits = EventFilesSource(left, right, height=24, width=32)
    assert len(fits.events("left", t0, t0 + 100_000)) > 0


@pytest.mark.parametrize("reader", ["DSECSequence", "DSECSplit", "open_sources"])
def test_file_where_a_folder_is_expected(tmp_path, reader):
    from stereo_snn.stereo.data import open_sources

    afile = tmp_path / "file.txt"
    afile.write_text("x")
    call = {"DSECSequence": DSECSequence, "DSECSplit": DSECSplit, "open_sources": lambda p: open_sources(p, "dsec")}
    with pytest.raises(DatasetError, match="file.txt: is a file"):
        call[reader](afile)


@pytest.fixture
def deny(monkeypatch):
    """Make ``os.access`` refuse reading the given paths (tests run as root, which ignores modes)."""
    denied: set[str] = set()
    real = atomic.os.access

    def access(path, mode, *a, **k):
        return False if str(path) in denied else real(path, mode, *a, **k)

    monkeypatch.setattr(atomic.os, "access", access)
    return denied


@pytest.mark.parametrize(
    "rel",
    [
        "events/left/events.h5",
        "events/left/rectify_map.h5",
        "calibration/cam_to_cam.yaml",
        "disparity/timestamps.txt",
        "events",
    ],
)
def test_unreadable_files_are_permission_problems(seq_dir, deny, rel):
    deny.add(str(seq_dir / rel))
    with pytest.raises(StereoSNNError, match=f"{rel}: permission denied"):
        with DSECSequence(seq_dir) as seq:
            seq.events("left", *seq.time_range_us("left"))
            seq.disparity_timestamps_us()
            _ = seq.calibration


def test_unreadable_mvsec_file_is_a_permission_problem(mvsec_files, deny):
    deny.add(str(mvsec_files))
    with pytest.raises(EventFileError, match="_data.hdf5: permission denied"):
        MVSECRecording(mvsec_files)


def test_rectify_map_of_another_sensor_size_is_refused(seq_dir, recording, shifted_map):
    from stereo_snn.stereo.data import DSECSource

    write_rectify_map(seq_dir / "events" / "right" / "rectify_map.h5", shifted_map(20, 30, 0.5, 0.5))
    with pytest.raises(DatasetError, match="right/rectify_map.h5: rectify map is 20x30 .* other camera's is 24x32"):
        DSECSource(seq_dir)
    write_rectify_map(seq_dir / "events" / "right" / "rectify_map.h5", recording.rectify_right)
    write_rectify_map(seq_dir / "events" / "left" / "rectify_map.h5", shifted_map(20, 30, 0.5, 0.5))
    write_rectify_map(seq_dir / "events" / "right" / "rectify_map.h5", shifted_map(20, 30, 0.5, 0.5))
    with DSECSequence(seq_dir) as seq:
        with pytest.raises(DatasetError, match="left/events.h5: the file states a 24x32 .* rectify_map.h5 is 20x30"):
            seq.event_file("left")


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda m: m.T, "transposed"),
        (lambda m: m * 100, "not a rectification"),
        (lambda m: np.full_like(m, np.nan), "finite"),
    ],
)
def test_mvsec_maps_are_checked_when_the_recording_is_opened(mvsec_files, damage, expected):
    from stereo_snn.stereo.data import MVSECSource

    for axis in ("x", "y"):
        path = mvsec_files.parent / f"lab_right_{axis}_map.txt"
        np.savetxt(path, damage(np.loadtxt(path, ndmin=2)))
    with pytest.raises(DatasetError, match=f"lab_right_.*{expected}"):
        MVSECSource(mvsec_files)


def test_mvsec_map_of_another_size_than_the_depth_maps_is_refused(mvsec_files, shifted_map):
    from stereo_snn.stereo.data import MVSECSource

    small = shifted_map(20, 30, 0.5, 0.5)
    for axis, channel in (("x", 0), ("y", 1)):
        np.savetxt(mvsec_files.parent / f"lab_left_{axis}_map.txt", small[..., channel])
    with pytest.raises(DatasetError, match="lab_left_x_map.txt: rectification map is 20x30 .* are 24x32"):
        MVSECSource(mvsec_files)


def test_a_corrupt_ms_to_idx_stops_infer_with_one_line_instead_of_skipping_windows(seq_dir, tmp_path, capsys):
    from stereo_snn.cli import main

    _edit_ms_to_idx(seq_dir / "events" / "left" / "events.h5", lambda m: np.minimum(m + 500, m[-1]))
    ckpt = tmp_path / "model.pt"
    _tiny_checkpoint(ckpt, (24, 32))
    assert (
        main(["infer", str(seq_dir), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ms_to_idx is inconsistent" in err[0] and "left/events.h5" in err[0]


def _tiny_checkpoint(path, size):
    import torch

    from stereo_snn.runtime import save_checkpoint
    from stereo_snn.search import Genotype, genotype_to_dict
    from stereo_snn.stereo.config import load_config
    from stereo_snn.stereo.network import build_network, build_supernet

    torch.manual_seed(0)
    cfg = load_config("tiny")
    sup = build_supernet(cfg)
    genotype = Genotype({name: part.derive() for name, part in sup.components().items()})
    state = {
        "model": build_network(cfg, genotype).state_dict(),
        "config": cfg.to_dict(),
        "genotype": genotype_to_dict(genotype),
        "data_size": list(size),
    }
    save_checkpoint(path, state)
