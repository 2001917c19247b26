"""SGBM baseline on event frames: synthetic random-dot pairs recover the shift."""

from __future__ import annotations

import numpy as np
import pytest

from stereo_snn.errors import ConfigError, RepresentationError
from stereo_snn.events.recording import Events, empty_events
from stereo_snn.stereo.baseline import event_frame, fill_invalid_disparity, sgbm_disparity
from stereo_snn.stereo.metrics import dsec_metrics

H, W = 64, 128


def random_dot_pair(shift: float, n: int = 4000, seed: int = 0) -> tuple[Events, Events]:
    """Left events at random sub-pixel positions; right events the same points moved
    ``shift`` px to the left (a fronto-parallel plane at disparity ``shift``)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, W, n).astype(np.float32)
    y = rng.uniform(0, H, n).astype(np.float32)
    t = np.sort(rng.integers(1_000_000, 1_050_000, n)).astype(np.int64)
    p = rng.integers(0, 2, n).astype(np.int8)
    return Events(x, y, t, p), Events(x - np.float32(shift), y, t, p)


@pytest.mark.parametrize("mode", ["count", "time_surface", "polarity"])
@pytest.mark.parametrize("shift", [6, 13])
def test_sgbm_recovers_shift(mode, shift):
    left, right = random_dot_pair(shift)
    disp = sgbm_disparity(left, right, H, W, max_disp=24, frame_mode=mode)
    assert disp.shape == (H, W) and disp.dtype == np.float32
    assert np.isfinite(disp).all()
    gt = np.full((H, W), float(shift), np.float32)
    gt[:, : 32 + shift] = 0  # SGBM cannot match the left border (numDisparities + occluded band)
    m = dsec_metrics(disp, gt)
    assert m["mae"] < 0.25, m
    assert m["one_pe"] < 2.0, m


def test_sgbm_fills_every_pixel_and_clips_range():
    left, right = random_dot_pair(8)
    raw = sgbm_disparity(left, right, H, W, max_disp=16, fill=False)
    assert np.isnan(raw[:, :10]).all()  # the left border has no match
    filled = sgbm_disparity(left, right, H, W, max_disp=16)
    assert np.isfinite(filled).all() and filled.min() >= 0 and filled.max() <= 16
    assert np.median(filled[:, :10]) == pytest.approx(8, abs=0.5)


def test_sgbm_empty_window_gives_zeros():
    disp = sgbm_disparity(empty_events(True), empty_events(True), H, W, max_disp=16)
    assert disp.shape == (H, W) and not disp.any()


def test_sgbm_bad_settings():
    left, right = random_dot_pair(4, n=100)
    with pytest.raises(ConfigError, match="block_size"):
        sgbm_disparity(left, right, H, W, max_disp=16, block_size=4)
    with pytest.raises(ConfigError, match="width"):
        sgbm_disparity(left, right, H, 40, max_disp=40)
    with pytest.raises(ConfigError, match="max_disp"):
        sgbm_disparity(left, right, H, W, max_disp=0)
    with pytest.raises(ConfigError, match="mode"):
        event_frame(left, H, W, mode="voxel")  # type: ignore[arg-type]
    with pytest.raises(RepresentationError, match="size"):
        event_frame(left, 0, W)


def test_event_frame_counts_round_and_drop_outside():
    ev = Events(
        np.array([1.2, 0.8, 5.0, -3.0, 200.0], np.float32),
        np.array([2.0, 2.4, 3.0, 1.0, 1.0], np.float32),
        np.arange(5, dtype=np.int64),
        np.array([1, 1, 0, 1, 1], np.int8),
    )
    img = event_frame(ev, 8, 10, mode="count", blur_sigma=0, percentile=100)
    assert img.dtype == np.uint8 and img.shape == (8, 10)
    assert img[2, 1] == 255  # two events -> the maximum
    assert 0 < img[3, 5] < 255  # one event: log(2) / log(3) of full scale
    assert img[3, 5] == round(255 * np.log(2) / np.log(3))
    assert img.astype(int).sum() == 255 + int(img[3, 5])  # outside events dropped
    pol = event_frame(ev, 8, 10, mode="polarity", blur_sigma=0, percentile=100)
    assert pol[0, 0] == 128 and pol[2, 1] > 128 and pol[3, 5] < 128
    ts = event_frame(ev, 8, 10, mode="time_surface", blur_sigma=0)
    assert ts[3, 5] == 255 and 0 < ts[2, 1] < 255  # latest event brightest


def test_fill_prefers_background():
    disp = np.array([[10.0, -1, -1, 4.0], [-1, -1, 7.0, -1], [-1, -1, -1, -1]])
    filled = fill_invalid_disparity(disp, disp >= 0)
    assert filled[0].tolist() == [10, 4, 4, 4]  # gap takes the smaller (background) side
    assert filled[1].tolist() == [7, 7, 7, 7]
    assert filled[2].tolist() == [7, 7, 7, 7]  # empty row filled along columns
    assert not fill_invalid_disparity(disp, np.zeros_like(disp, bool)).any()


def test_sgbm_on_simulated_events(sim_root):
    """On simulated DSEC-layout windows, where SGBM gives a disparity it is closer to the
    truth than the best constant guess (the median ground truth) on the same pixels."""
    from stereo_snn.events import DSECSequence
    from stereo_snn.stereo.metrics import MetricAccumulator

    sgbm, constant = MetricAccumulator("dsec"), MetricAccumulator("dsec")
    density = []
    for path in sorted(p for p in sim_root.iterdir() if p.is_dir())[:2]:
        with DSECSequence(path) as seq:
            for row, t in enumerate(seq.disparity_timestamps_us()[1:], start=1):
                left, right = (seq.events(cam, int(t) - 50_000, int(t)) for cam in ("left", "right"))
                gt = seq.disparity(row)
                raw = sgbm_disparity(left, right, seq.height, seq.width, max_disp=16, fill=False)
                matched = np.isfinite(raw)
                density.append(matched.mean())
                gt_matched = np.where(matched, gt, 0)  # score only the pixels SGBM matched
                sgbm.update(np.nan_to_num(raw), gt_matched)
                constant.update(np.full_like(gt, np.median(gt[gt > 0])), gt_matched)
    ours, guess = sgbm.compute(), constant.compute()
    assert ours["images"] >= 4 and np.mean(density) > 0.1
    assert ours["mae"] < guess["mae"], (ours, guess)
