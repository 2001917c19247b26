"""Simulated recordings through the files: DSEC and MVSEC round trips, `stereo-snn simulate`
end to end (in-process) and the demo dataset helper."""

from __future__ import annotations

import numpy as np
import pytest

from stereo_snn.cli import main
from stereo_snn.events import DSECSequence, rectify_events
from stereo_snn.events.mvsec import MVSECRecording
from stereo_snn.events.simulator import SimConfig, make_demo_sequences, simulate_stereo, write_sequences

H, W = 40, 56


@pytest.fixture(scope="module")
def config() -> SimConfig:
    return SimConfig(
        name="round",
        height=H,
        width=W,
        duration_ms=150,
        seed=11,
        start_time_us=5_000_000,
        speed_px_s=100.0,
        noise_rate_hz=1.0,
    )


@pytest.fixture(scope="module")
def recording(config):
    return simulate_stereo(config)


def _assert_events_equal(a, b) -> None:
    for u, v in zip(a, b):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_dsec_round_trip(recording, config, tmp_path):
    (path,) = write_sequences(config, tmp_path, "dsec")
    assert path == tmp_path / "round"
    with DSECSequence(path) as seq:
        assert (seq.height, seq.width) == (H, W)
        np.testing.assert_array_equal(seq.disparity_timestamps_us(), recording.gt_timestamps_us)
        for i in range(len(recording.gt_timestamps_us)):
            gt = seq.disparity(i)
            assert np.abs(gt - recording.gt_disparity[i]).max() <= 1 / 256
            np.testing.assert_array_equal(gt > 0, recording.gt_disparity[i] > 0)
        t0, t1 = 5_000_000, 5_150_001
        for cam, ev, rmap in (
            ("left", recording.left, recording.rectify_left),
            ("right", recording.right, recording.rectify_right),
        ):
            _assert_events_equal(seq.events(cam, t0, t1, rectify=False), ev)
            rect = seq.events(cam, t0, t1, rectify=True, keep_outside=True)
            np.testing.assert_allclose(rect.x, rmap[ev.y, ev.x, 0], atol=1e-4)
            np.testing.assert_allclose(rect.y, rmap[ev.y, ev.x, 1], atol=1e-4)
            np.testing.assert_array_equal(rect.t, ev.t)
            # a 50 ms window before a GT map, as a stereo loader asks for it
            t_gt = int(recording.gt_timestamps_us[1])
            window = seq.events(cam, t_gt - 50_000, t_gt)
            ref = rectify_events(ev, rmap)
            m = (ref.t >= t_gt - 50_000) & (ref.t < t_gt)
            np.testing.assert_allclose(window.x, ref.x[m], atol=1e-4)
        cal = seq.calibration
        assert cal.fx == pytest.approx(recording.fx) and cal.baseline_m == pytest.approx(recording.baseline_m)
        assert cal.focal_baseline == pytest.approx(recording.focal_baseline)


def test_mvsec_round_trip(recording, config, tmp_path):
    (data_path,) = write_sequences(config, tmp_path, "mvsec")
    assert data_path == tmp_path / "round" / "round_data.hdf5"
    with MVSECRecording(data_path) as rec:
        np.testing.assert_array_equal(rec.depth_timestamps_us(), recording.gt_timestamps_us)
        for i in range(len(recording.gt_timestamps_us)):
            np.testing.assert_allclose(rec.disparity(i), recording.gt_disparity[i], rtol=1e-5, atol=1e-5)
        for cam, ev, rmap in (
            ("left", recording.left, recording.rectify_left),
            ("right", recording.right, recording.rectify_right),
        ):
            _assert_events_equal(rec.events(cam, 5_000_000, 5_150_001, rectify=False), ev)
            rect = rec.events(cam, 5_000_000, 5_150_001, keep_outside=True)
            np.testing.assert_allclose(rect.x, rmap[ev.y, ev.x, 0], atol=1e-4)


def test_cli_writes_sequences_and_reports(tmp_path, capsys):
    out = tmp_path / "sim"
    args = [
        "simulate",
        "--out",
        str(out),
        "--format",
        "dsec",
        "--sequences",
        "2",
        "--duration-ms",
        "120",
        "--height",
        "32",
        "--width",
        "48",
        "--seed",
        "3",
        "--max-disparity",
        "6",
        "--textures",
        "noise,photo",
        "--no-progress",
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "sim_000" in lines[0] and "sim_001" in lines[1] and "GT maps" in lines[0]
    seqs = sorted(p.name for p in out.iterdir())
    assert seqs == ["sim_000", "sim_001"]
    with DSECSequence(out / "sim_000") as a, DSECSequence(out / "sim_001") as b:
        assert (a.height, a.width) == (32, 48)
        assert len(a.disparity_timestamps_us()) == 2
        assert 0 < a.disparity(1).max() <= 6.0
        assert not np.array_equal(a.disparity(0), b.disparity(0))
    # the same names again: refused, nothing overwritten
    stamp = (out / "sim_000" / "events" / "left" / "events.h5").stat().st_mtime_ns
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "sim_000" / "events" / "left" / "events.h5").stat().st_mtime_ns == stamp


def test_cli_mvsec(tmp_path):
    out = tmp_path / "mv"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--format",
                "mvsec",
                "--name",
                "flying",
                "--duration-ms",
                "100",
                "--height",
                "32",
                "--width",
                "48",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (out / "flying" / "flying_data.hdf5").is_file() and (out / "flying" / "flying_left_x_map.txt").is_file()


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        (["--out", "{tmp}/file"], "not a folder"),
        (["--out", "{tmp}/a", "--width", "4"], "width"),
        (["--out", "{tmp}/b", "--textures", "marble"], "marble"),
        (["--out", "{tmp}/c", "--sequences", "0"], "sequences"),
        (["--out", "{tmp}/d", "--render-rate", "10"], "render_rate_hz"),
    ],
)
def test_cli_bad_options_give_one_line(tmp_path, capsys, extra, word):
    (tmp_path / "file").write_text("x")
    assert main(["simulate", "--no-progress", *(a.format(tmp=tmp_path) for a in extra)]) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1


def test_make_demo_sequences(tmp_path):
    paths = make_demo_sequences(tmp_path / "demo", count=2, seed=4, size=(32, 48), duration_ms=120)
    assert [p.name for p in paths] == ["demo_000", "demo_001"]
    for p in paths:
        with DSECSequence(p) as seq:
            assert (seq.height, seq.width) == (32, 48) and seq.has_ground_truth
            t0, t1 = seq.time_range_us("left")
            assert len(seq.events("left", t0, t1)) > 100
