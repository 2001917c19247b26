"""Event sequences from a stereo photo pair (`stereo-snn simulate-photo`): a tiny synthetic pair
whose right view is the left one shifted by a known disparity map, through the DSEC and MVSEC
readers, plus the file loaders, the errors and the bundled motorcycle."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from stereo_snn.cli import main
from stereo_snn.errors import ConfigError, DatasetError, OutputError
from stereo_snn.events import DSECSequence
from stereo_snn.events.mvsec import MVSECRecording
from stereo_snn.events.represent import histogram
from stereo_snn.events.simulator.photo_pair import (
    PhotoPair,
    PhotoSwayConfig,
    bundled_pair,
    load_photo_pair,
    simulate_photo_pair,
    write_photo_sequences,
)

PH, PW = 40, 60  # the photo pair
H, W = 36, 52  # the output view
NEAR, FAR = 8.0, 4.0  # known disparities (pixels of the photo)
BOX = (slice(12, 28), slice(28, 48))  # the near rectangle in the left view


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (PH, PW)).astype(np.float32), (0, 0), 1.2)
    img = (img - img.min()) / (img.max() - img.min())
    return np.rint(40 + 200 * img).astype(np.uint8)


def _known_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left uint8, right uint8, disparity float32): right[y, x - d] = left[y, x]; the near box
    is drawn last, so it occludes the background; disoccluded pixels keep a second texture."""
    left = _texture(0)
    disp = np.full((PH, PW), FAR, np.float32)
    disp[BOX] = NEAR
    right = _texture(1)
    for layer in (disp == FAR, disp == NEAR):
        ys, xs = np.nonzero(layer)
        xr = xs - disp[ys, xs].astype(int)
        ok = xr >= 0
        right[ys[ok], xr[ok]] = left[ys[ok], xs[ok]]
    disp[:, : int(FAR)] = 0  # no match in the right view: invalid
    return left, right, disp


def _pair() -> PhotoPair:
    left, right, disp = _known_pair()
    lin = lambda img: (img.astype(np.float32) / 255.0) ** 2.2  # noqa: E731
    return PhotoPair("box", lin(left), lin(right), disp, fx=60.0, baseline_m=0.1)


def _config(**kw) -> PhotoSwayConfig:
    settings = dict(
        name="box",
        height=H,
        width=W,
        duration_ms=300.0,
        speed_px_s=40.0,
        rotation_deg=0.0,
        zoom=0.0,
        seed=5,
        start_time_us=1_000_000,
    )
    settings.update(kw)
    return PhotoSwayConfig(**settings)


@pytest.fixture(scope="module")
def simulated():
    return simulate_photo_pair(_pair(), _config())


def test_ground_truth_is_the_known_disparity_scaled_with_the_images(simulated):
    rec, info = simulated
    values = np.unique(np.round(rec.gt_disparity[rec.gt_disparity > 0], 4))
    np.testing.assert_allclose(values, np.round([FAR * info.canvas_scale_x, NEAR * info.canvas_scale_x], 4))
    assert info.gt_min_px == pytest.approx(FAR * info.canvas_scale_x)
    assert info.gt_max_px == pytest.approx(NEAR * info.canvas_scale_x)
    # the near box moves with the sway and stays a solid rectangle (nearest-neighbour warp)
    near = rec.gt_disparity > FAR * info.canvas_scale_x + 0.1
    assert not np.array_equal(near[0], near[-1])
    for mask in near:
        ys, xs = np.nonzero(mask)
        assert mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()


def test_right_events_are_the_left_events_shifted_by_the_ground_truth(simulated):
    rec, info = simulated
    counts = []
    for ev in (rec.left, rec.right):
        off, on = histogram(ev.x.astype(np.float32), ev.y.astype(np.float32), ev.t, ev.p, H, W)
        counts.append(on - off)
    left, right = counts
    far = FAR * info.canvas_scale_x
    shifts = np.arange(0, 13)
    # correlation of left(x) with right(x - s) over the columns both cover
    score = [float(np.sum(left[:, 12:] * right[:, 12 - s : W - s])) for s in shifts]
    assert abs(shifts[int(np.argmax(score))] - far) <= 1.0


def test_dsec_layout_reads_back_with_events_in_both_cameras(tmp_path, simulated):
    rec, info = simulated
    (path,) = write_photo_sequences(_pair(), _config(), tmp_path, count=1)
    assert path == tmp_path / "box"
    with DSECSequence(path) as seq:
        assert (seq.height, seq.width) == (H, W)
        np.testing.assert_array_equal(seq.disparity_timestamps_us(), rec.gt_timestamps_us)
        assert seq.disparity_timestamps_us()[0] == 1_000_000 and len(rec.gt_timestamps_us) == 4
        for i in range(len(rec.gt_timestamps_us)):
            gt = seq.disparity(i)
            np.testing.assert_array_equal(gt > 0, rec.gt_disparity[i] > 0)
            assert np.abs(gt - rec.gt_disparity[i]).max() <= 1 / 256
        t_gt = int(rec.gt_timestamps_us[2])
        for cam in ("left", "right"):
            window = seq.events(cam, t_gt - 50_000, t_gt)
            assert window.count > 100
            np.testing.assert_array_equal(seq.rectify_map(cam)[5, 7], [7, 5])  # identity
        assert seq.calibration.focal_baseline == pytest.approx(rec.focal_baseline)
    record = json.loads((path / "photo_pair.json").read_text())
    assert record["gt_max_px"] == pytest.approx(info.gt_max_px) and record["events_left"] == rec.left.count


def test_mvsec_layout_reads_back_with_the_disparity(tmp_path, simulated):
    rec, _ = simulated
    (data_path,) = write_photo_sequences(_pair(), _config(layout="mvsec"), tmp_path)
    with MVSECRecording(data_path) as mv:
        assert mv.sensor_size == (H, W)
        for i in range(len(rec.gt_timestamps_us)):
            np.testing.assert_allclose(mv.disparity(i), rec.gt_disparity[i], rtol=1e-5, atol=1e-5)
        for cam in ("left", "right"):
            assert mv.events(cam, 1_000_000, 1_300_001).count > 1000


def test_layout_sets_the_default_size():
    assert PhotoSwayConfig(layout="dsec").size == (480, 640)
    assert PhotoSwayConfig(layout="mvsec").size == (260, 346)


def test_same_seed_same_sequence_other_seed_other_sway(simulated):
    rec, _ = simulated
    again, _ = simulate_photo_pair(_pair(), _config())
    for a, b in zip(rec.left, again.left):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rec.gt_disparity, again.gt_disparity)
    other, _ = simulate_photo_pair(_pair(), _config(seed=6))
    assert not np.array_equal(rec.gt_disparity, other.gt_disparity)


def test_zoom_scales_the_disparity_and_roll_is_bounded():
    rec, info = simulate_photo_pair(_pair(), _config(zoom=0.05, rotation_deg=1.0, duration_ms=500.0))
    near = rec.gt_disparity[rec.gt_disparity > (FAR + NEAR) / 2 * info.canvas_scale_x]
    base = NEAR * info.canvas_scale_x
    assert near.min() >= base * 0.95 * math.cos(math.radians(1.0)) - 1e-4 and near.max() <= base * 1.05 + 1e-4
    assert near.max() - near.min() > 0.02 * base  # the zoom did change the disparity
    assert info.max_vertical_error_px == pytest.approx(info.gt_max_px * math.sin(math.radians(1.0)), rel=0.2)


def test_automatic_render_rate_keeps_motion_below_one_pixel_per_frame(simulated):
    _, info = simulated
    assert info.max_motion_px_per_frame <= 1.0
    fast = _config(speed_px_s=400.0)
    _, info_fast = simulate_photo_pair(_pair(), fast)
    assert info_fast.render_rate_hz > info.render_rate_hz and info_fast.max_motion_px_per_frame <= 1.0
    with pytest.raises(ConfigError, match="render_rate_hz"):
        simulate_photo_pair(_pair(), _config(speed_px_s=400.0, render_rate_hz=20.0))


def test_max_disparity_refuses_larger_ground_truth():
    with pytest.raises(ConfigError, match="max_disparity.*reaches"):
        simulate_photo_pair(_pair(), _config(max_disparity=5.0))


def test_files_load_with_their_disparity_scale(tmp_path):
    left, right, disp = _known_pair()
    cv2.imwrite(str(tmp_path / "l.png"), left)
    cv2.imwrite(str(tmp_path / "r.png"), np.dstack([right] * 3))
    pfm = np.where(disp > 0, disp, np.inf).astype(np.float32)  # Middlebury: inf = invalid
    cv2.imwrite(str(tmp_path / "d.pfm"), pfm)
    cv2.imwrite(str(tmp_path / "d.png"), np.rint(disp * 256).astype(np.uint16))  # KITTI-style
    np.save(tmp_path / "d.npy", disp * 2)
    for name, scale in (("d.pfm", None), ("d.png", None), ("d.npy", 2.0)):
        pair = load_photo_pair(tmp_path / "l.png", tmp_path / "r.png", tmp_path / name, disparity_scale=scale)
        np.testing.assert_allclose(pair.disparity, disp, err_msg=name)
        assert pair.name == "l" and pair.fx == PW
    assert 0 <= pair.left.min() and pair.left.max() <= 1 and pair.right.shape == (PH, PW)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (("missing.png", "l.png", "d.npy"), "missing.png: image not found"),
        (("l.png", "junk.png", "d.npy"), "junk.png: cannot decode"),
        (("l.png", "small.png", "d.npy"), "same height and width"),
        (("l.png", "l.png", "zero.npy"), "zero.npy: no valid disparity"),
        (("l.png", "l.png", "none.npy"), "none.npy: disparity file not found"),
    ],
)
def test_bad_pair_files_raise_one_clear_error(tmp_path, files, message):
    left, right, disp = _known_pair()
    cv2.imwrite(str(tmp_path / "l.png"), left)
    cv2.imwrite(str(tmp_path / "small.png"), right[:, :50])
    np.save(tmp_path / "d.npy", disp)
    np.save(tmp_path / "zero.npy", np.zeros_like(disp))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=message):
        load_photo_pair(*(tmp_path / f for f in files))


def test_bad_settings_raise_one_clear_error():
    with pytest.raises(ConfigError, match="pair: unknown"):
        bundled_pair("piano")
    with pytest.raises(ConfigError, match="format"):
        PhotoSwayConfig(layout="kitti")


def test_cli_writes_sequences_and_reports_errors_in_one_line(tmp_path, capsys):
    left, right, disp = _known_pair()
    for name, img in (("l.png", left), ("r.png", right)):
        cv2.imwrite(str(tmp_path / name), img)
    np.save(tmp_path / "d.npy", disp)
    out = tmp_path / "out"
    args = [
        "simulate-photo",
        "--left",
        str(tmp_path / "l.png"),
        "--right",
        str(tmp_path / "r.png"),
        "--disparity",
        str(tmp_path / "d.npy"),
        "--out",
        str(out),
        "--height",
        "32",
        "--width",
        "48",
        "--duration-ms",
        "200",
        "--sequences",
        "2",
        "--speed",
        "30",
        "--no-progress",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "GT disparity" in printed and "wrote 2 DSEC sequence(s)" in printed
    assert sorted(p.name for p in out.iterdir()) == ["l_000", "l_001"]
    with DSECSequence(out / "l_001") as seq:
        assert seq.height == 32 and len(seq.disparity_timestamps_us()) == 3
    with pytest.raises(OutputError):  # the same sequences again
        write_photo_sequences(
            load_photo_pair(tmp_path / "l.png", tmp_path / "r.png", tmp_path / "d.npy"),
            PhotoSwayConfig(name="l", height=32, width=48),
            out,
            count=2,
        )
    assert main(["simulate-photo", "--left", str(tmp_path / "l.png"), "--out", str(out)]) == 2
    assert (
        main(
            [
                "simulate-photo",
                "--left",
                str(tmp_path / "l.png"),
                "--right",
                str(tmp_path / "nope.png"),
                "--disparity",
                str(tmp_path / "d.npy"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("stereo-snn simulate-photo: error: left: --left needs")
    assert "nope.png: image not found" in err[1] and len(err) == 2


def test_bundled_motorcycle_gives_its_ground_truth_range():
    pair = bundled_pair("motorcycle")
    assert pair.size == (500, 741) and 0.9 < (pair.disparity > 0).mean() < 0.95
    assert pair.disparity[pair.disparity > 0].min() == pytest.approx(7.19, abs=0.01)
    rec, info = simulate_photo_pair(pair, PhotoSwayConfig(name="moto", height=48, width=64, duration_ms=100.0))
    assert info.gt_max_px == pytest.approx(59.9 * info.canvas_scale_x, rel=0.02)
    assert 0 < info.gt_min_px < info.gt_max_px and rec.left.count > 0 and rec.right.count > 0
