"""Stereo metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stereo_snn.errors import ConfigError, DatasetError
from stereo_snn.stereo.metrics import (
    MetricAccumulator,
    Regions,
    ddes_depth,
    discontinuity_mask,
    dsec_metrics,
    edge_mask,
    format_table,
    mvsec_metrics,
    near_mask,
    occlusion_mask,
    region_metrics,
)

FB = 19.941772  # indoor_flying focal x baseline, pixel-metres


def test_dsec_hand_computed():
    gt = np.array([[10.0, 10.0, 10.0, 0.0], [10.0, 10.0, 0.0, 0.0]])
    pred = np.array([[10.5, 11.0, 12.0, 99.0], [13.0, 10.0, 50.0, 7.0]])
    # valid: errors 0.5, 1.0, 2.0, 3.0, 0.0 (the 0-gt pixels are ignored)
    m = dsec_metrics(pred, gt)
    assert m["valid_pixels"] == 5
    assert m["mae"] == pytest.approx((0.5 + 1 + 2 + 3 + 0) / 5)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 1 + 4 + 9 + 0) / 5))
    # strict '>': an error of exactly 1 px is not a 1-pixel error, exactly 2 px not a 2PE
    assert m["one_pe"] == pytest.approx(100 * 2 / 5)  # 2.0 and 3.0
    assert m["two_pe"] == pytest.approx(100 * 1 / 5)  # 3.0 only


def test_strict_boundary_just_above():
    gt = np.array([[5.0, 5.0]])
    m = dsec_metrics(gt + np.array([[1.0, 1.0 + 1e-6]]), gt)
    assert m["one_pe"] == pytest.approx(50.0)


def test_accepts_torch_and_batched_shapes():
    torch = pytest.importorskip("torch")
    gt = torch.full((1, 1, 3, 4), 4.0)
    pred = gt + 0.25
    assert dsec_metrics(pred, gt)["mae"] == pytest.approx(0.25)
    acc = MetricAccumulator("dsec")
    acc.update(torch.stack([pred[0], pred[0] + 2]), torch.stack([gt[0], gt[0]]))  # (B, 1, H, W)
    assert acc.compute()["mae"] == pytest.approx((0.25 + 2.25) / 2)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(DatasetError, match="does not match"):
        dsec_metrics(np.zeros((3, 4)), np.zeros((4, 3)))


def test_nan_prediction_at_valid_pixel_is_an_error():
    with pytest.raises(DatasetError, match="NaN"):
        dsec_metrics(np.array([[np.nan, 1.0]]), np.array([[2.0, 1.0]]))


def test_mvsec_depth_conversion_and_metrics():
    # ground-truth depths 2 m and 4 m -> disparities FB/2 and FB/4; one invalid (NaN depth)
    gt_depth = np.array([[2.0, 4.0, np.nan]])
    gt = FB / gt_depth
    pred = np.array([[FB / 2.5, FB / 4.0 + 1.5, 3.0]])
    m = mvsec_metrics(pred, gt, FB)
    assert m["valid_pixels"] == 2
    d1, d2 = FB / 2 - FB / 2.5, 1.5
    assert m["mean_disparity_error"] == pytest.approx((d1 + d2) / 2)
    assert d1 > 1 and d2 > 1
    assert m["one_pe"] == pytest.approx(100.0)
    assert m["one_pixel_accuracy"] == pytest.approx(0.0)
    depth_err = [0.5, abs(FB / (FB / 4 + 1.5) - 4.0)]
    assert m["mean_depth_error_m"] == pytest.approx(np.mean(depth_err), rel=1e-6)
    assert m["median_depth_error_m"] == pytest.approx(np.median(depth_err), rel=1e-6)


def test_mvsec_one_pixel_accuracy_boundary():
    gt = np.array([[10.0, 10.0, 10.0, 10.0]])
    pred = np.array([[11.0, 9.0, 12.0, 10.2]])  # |err| = 1, 1, 2, 0.2 -> only 2 is > 1
    m = mvsec_metrics(pred, gt, FB)
    assert m["one_pe"] == pytest.approx(25.0)
    assert m["one_pixel_accuracy"] == pytest.approx(75.0)


def test_mvsec_prediction_clamp():
    gt = np.array([[FB / 5.0]])  # 5 m
    zero = np.array([[0.0]])
    clamped = mvsec_metrics(zero, gt, FB)  # clamp at 1 px -> depth FB m
    assert clamped["mean_depth_error_m"] == pytest.approx(FB - 5.0, rel=1e-6)
    ddes = mvsec_metrics(zero, gt, FB, min_disparity=0)  # DDES: FB / 1e-7
    assert ddes["mean_depth_error_m"] == pytest.approx(FB / 1e-7 - 5.0, rel=1e-6)
    with pytest.raises(ConfigError):
        mvsec_metrics(zero, gt, FB, min_disparity=-1)


def test_ddes_depth():
    d = ddes_depth(np.array([FB, FB / 2, np.inf, np.nan]), FB)
    assert d[0] == pytest.approx(1.0) and d[1] == pytest.approx(2.0)
    assert np.isinf(d[2]) and np.isinf(d[3])
    with pytest.raises(ConfigError, match="focal_baseline"):
        ddes_depth(np.ones(2), 0.0)


def test_accumulator_skips_images_without_gt_and_means_per_image():
    acc = MetricAccumulator("dsec")
    gt_a = np.full((2, 2), 3.0)
    gt_b = np.array([[3.0, 0.0], [0.0, 0.0]])
    acc.update(gt_a + 1.0, gt_a)  # mae 1 over 4 px
    acc.update(np.zeros((2, 2)), np.zeros((2, 2)))  # no valid gt: skipped
    out = acc.update(gt_b + 3.0, gt_b)  # mae 3 over 1 px
    assert out[0]["image"] == 2
    res = acc.compute()
    # mean over images (1 + 3) / 2, not over pixels (4 + 3) / 5
    assert res["mae"] == pytest.approx(2.0)
    assert res["images"] == 2 and res["skipped_images"] == 1
    assert [r["image"] for r in acc.per_image] == [0, 2]
    assert not any(isinstance(v, float) and math.isnan(v) for v in res.values())


def test_accumulator_empty_is_none_not_nan():
    acc = MetricAccumulator("mvsec", focal_baseline=FB)
    acc.update(np.ones((2, 2)), np.full((2, 2), np.nan))
    res = acc.compute()
    assert res["mean_depth_error_m"] is None and res["skipped_images"] == 1
    acc.reset()
    assert acc.compute()["skipped_images"] == 0


def test_accumulator_bad_settings():
    with pytest.raises(ConfigError, match="focal_baseline"):
        MetricAccumulator("mvsec")
    with pytest.raises(ConfigError, match="kind"):
        MetricAccumulator("kitti")  # type: ignore[arg-type]


def test_format_table_side_by_side():
    rows = {
        "snn": {"mae": 0.5, "one_pe": 10.0, "two_pe": 2.5, "rmse": 1.25, "images": 3, "skipped_images": 0},
        "sgbm": {"mae": 2.0, "one_pe": None, "two_pe": 20.0, "rmse": 3.0, "images": 3, "skipped_images": 0},
    }
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["method", "MAE"]
    assert lines[2].split()[:2] == ["snn", "0.500"]
    assert "n/a" in lines[3]
    mv = format_table({"m": {"mean_depth_error_m": 0.155}})
    assert "15.5" in mv and "MDE [cm]" in mv
    assert format_table({}) == ""


def _step_gt() -> np.ndarray:
    """8x10 map: background 4 px in columns 0-4, a foreground 12 px in columns 5-9;
    row 7 has no ground truth (0) and column 9 of row 0 is invalid too."""
    gt = np.full((8, 10), 4.0)
    gt[:, 5:] = 12.0
    gt[7] = 0.0
    gt[0, 9] = 0.0
    return gt


def test_discontinuity_and_edge_masks_on_a_step():
    gt = _step_gt()
    valid = gt > 0
    jump = discontinuity_mask(gt, valid)
    # columns 4 and 5 of the valid rows; the valid/invalid borders (row 7, pixel (0, 9)) are not edges
    expected = np.zeros_like(valid)
    expected[:7, 4:6] = True
    assert np.array_equal(jump, expected)
    assert np.array_equal(edge_mask(gt, valid, radius_px=0), expected)
    edge = edge_mask(gt, valid, radius_px=2)
    # a disk of radius 2 reaches columns 2..7 on the valid rows, never an invalid pixel
    assert np.array_equal(edge.any(axis=0), np.isin(np.arange(10), range(2, 8)))
    assert edge[3, 2:8].all() and not edge[3, :2].any() and not edge[3, 8:].any()
    assert not edge[7].any()
    # a jump of exactly the threshold is not a discontinuity (strict '>')
    ramp = np.array([[1.0, 2.0, 3.0]])
    assert not discontinuity_mask(ramp, ramp > 0, jump_px=1.0).any()
    assert discontinuity_mask(ramp, ramp > 0, jump_px=0.5).all()


def test_near_mask_relative_and_absolute():
    gt = _step_gt()
    valid = gt > 0
    # 35 of the 69 valid pixels are 4 px: the median is 4, near = gt > 6 = the 12 px foreground
    assert np.array_equal(near_mask(gt, valid), valid & (gt == 12.0))
    assert not near_mask(gt, valid, ratio=3.0).any()  # 12 is not > 3 x 4 (strict)
    # scale-free: the same pixels when every disparity is 2.5x larger (another resolution / rig)
    assert np.array_equal(near_mask(2.5 * gt, valid), near_mask(gt, valid))
    # a flat background holding most pixels does not make everything near (a quantile would)
    mostly_flat = np.full((4, 5), 4.8)
    mostly_flat[0, :3] = 11.0
    assert near_mask(mostly_flat, mostly_flat > 0).sum() == 3
    assert np.array_equal(near_mask(gt, valid, near_px=8.0), valid & (gt > 8.0))
    assert not near_mask(gt, valid, near_px=12.0).any()  # strict '>'
    assert not near_mask(gt, np.zeros_like(valid)).any()


def test_region_metrics_error_only_at_the_edge():
    gt = _step_gt()
    valid = gt > 0
    pred = gt.copy()
    pred[:7, 4] = 7.0  # background next to the step: 3 px too far (bled foreground)
    pred[:7, 5] = 10.0  # foreground next to the step: 2 px short
    m = region_metrics(pred, gt, valid, Regions())
    # edge: columns 2..7 of the 7 valid rows = 42 pixels, 7 of them off by 3 px and 7 by 2 px
    assert m["edge_pixels"] == 42
    assert m["edge_mae"] == pytest.approx((7 * 3 + 7 * 2) / 42)
    assert m["edge_two_pe"] == pytest.approx(100 * 7 / 42)  # only the 3 px errors are > 2
    # near = foreground (34 px): 7 px off by 2 -> MAE 14/34, none strictly > 2 px
    assert m["near_pixels"] == 34
    assert m["near_mae"] == pytest.approx(14 / 34) and m["near_two_pe"] == 0.0
    # far from the edge the prediction is exact: the overall MAE is much lower than the edge MAE
    overall = dsec_metrics(pred, gt)["mae"]
    assert overall == pytest.approx(35 / 69) and overall < m["edge_mae"]


def test_the_occluded_region_is_left_of_a_near_object_as_wide_as_its_disparity_step():
    gt = np.full((3, 80), 5.0)  # background at 5 px
    gt[:, 40:60] = 20.0  # a nearer block: in the right view it covers columns 20..39
    gt[2, 70] = 0.0  # a hole: not valid, never occluded
    occluded = occlusion_mask(gt, gt > 0)
    expected = np.zeros(80, bool)
    expected[:5] = True  # x < d: the match lies outside the right image
    expected[25:40] = True  # background whose match x - 5 falls on the block (15 = 20 - 5 columns)
    assert np.array_equal(occluded[0], expected) and np.array_equal(occluded[1], expected)
    assert not occluded[2, 70]
    assert not occlusion_mask(gt, gt > 0, margin_px=20.0)[0, 25:40].any()  # only nearer by > margin
    pred = gt.copy()
    pred[:, 25:40] = 20.0  # the block bled over the occluded band
    m = region_metrics(pred, gt, gt > 0, Regions())
    assert m["occluded_pixels"] == 3 * 20 and m["occluded_mae"] == pytest.approx(15 * 15 / 20)
    assert "occluded" in Regions().describe()
    with pytest.raises(ConfigError, match="occlusion"):
        Regions(occlusion_px=-1.0)


def test_accumulator_region_means_skip_images_without_the_region():
    acc = MetricAccumulator("dsec", regions=Regions(near_px=8.0))
    gt = _step_gt()
    flat = np.full((8, 10), 4.0)  # no edge and nothing near 8 px
    acc.update(gt + 1.0, gt)
    acc.update(flat + 3.0, flat)
    res = acc.compute()
    assert res["mae"] == pytest.approx(2.0)  # both images
    assert res["near_mae"] == pytest.approx(1.0) and res["edge_mae"] == pytest.approx(1.0)  # first image only
    assert res["near_images"] == res["edge_images"] == 1 and res["images"] == 2
    assert acc.per_image[1]["edge_mae"] is None and acc.per_image[1]["edge_pixels"] == 0
    only_flat = MetricAccumulator("mvsec", focal_baseline=FB, regions=Regions())
    only_flat.update(flat + 0.5, flat)
    res = only_flat.compute()
    # a flat map has no edge and nothing in front of its median depth: None, not NaN
    assert res["edge_mae"] is None and res["edge_images"] == 0
    assert res["near_mae"] is None and res["near_images"] == 0
    assert res["mean_disparity_error"] == pytest.approx(0.5)
    assert not any(isinstance(v, float) and math.isnan(v) for v in res.values())
    assert "near_mae" not in MetricAccumulator("dsec").compute()  # regions are opt-in (training)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"near_px": -1.0}, "near-px"),
        ({"near_ratio": 0.0}, "near ratio"),
        ({"edge_radius_px": -1}, "edge-radius"),
        ({"edge_radius_px": 1.5}, "edge-radius"),
        ({"edge_jump_px": float("nan")}, "jump"),
    ],
)
def test_regions_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Regions(**kwargs)


def test_format_table_region_columns():
    text = format_table({"snn": {"mae": 1.0, "near_mae": 4.25, "edge_mae": None}}, ["mae", "near_mae", "edge_mae"])
    header, _, row = text.splitlines()
    assert "near MAE" in header and "edge MAE" in header
    assert row.split()[1:] == ["1.000", "4.250", "n/a"]
