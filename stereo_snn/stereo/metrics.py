"""Stereo disparity metrics for DSEC and MVSEC (numpy only; torch tensors are accepted).

Every metric is computed per image on the valid ground-truth pixels and then averaged
over images.

DSEC (``dsec_metrics``): valid pixels are ``gt > 0``. MAE and RMSE are in pixels; 1PE / 2PE
are the percentage of valid pixels whose absolute error is *strictly greater* than 1 / 2 px.

MVSEC (``mvsec_metrics``), DDES protocol: valid pixels have a finite, positive ground-truth
disparity; depth is ``focal_baseline / (disparity + 1e-7)``; mean and median depth error (m),
one-pixel accuracy ``100 - 1PE`` (%), mean disparity error (px). The *predicted* disparity is
clamped from below at ``min_disparity`` (default 1 px); ``min_disparity=0`` is DDES exactly.

Images without a valid ground-truth pixel are skipped and counted by
:class:`MetricAccumulator` (``skipped_images``); no metric is ever NaN.

Region metrics (:class:`Regions`, :func:`region_metrics`, in disparity pixels): *near* =
valid pixels with ``gt > near_ratio`` (1.5) x the median of the image's valid gt, or
``gt > near_px``; *edge* = valid pixels within ``edge_radius_px`` (2, a disk) of a jump of more
than ``edge_jump_px`` (1 px) between 4-neighbouring valid gt pixels; *occluded* = valid pixels
whose match in the right view is hidden behind a nearer surface (by more than
``occlusion_px``, 1 px) or lies outside it (:func:`occlusion_mask`). Per region: MAE, 2PE and
the pixel count; an image without pixels in a region has None there, and a region absent
from every image averages to None.

Why these rules (the DDES clamp, the relative near region): docs/stereo.md, "Metrics" and
"stereo-snn evaluate".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

import cv2
import numpy as np

from ..errors import ConfigError, DatasetError
from ..images import as_image, dsec_valid_mask, to_numpy

__all__ = [
    "to_numpy",
    "ddes_depth",
    "dsec_valid_mask",
    "mvsec_valid_mask",
    "mean_absolute_error",
    "root_mean_square_error",
    "n_pixel_error",
    "mean_depth_error",
    "median_depth_error",
    "dsec_metrics",
    "mvsec_metrics",
    "Regions",
    "near_mask",
    "discontinuity_mask",
    "edge_mask",
    "occlusion_mask",
    "region_metrics",
    "REGION_KEYS",
    "MetricAccumulator",
    "format_table",
    "DSEC_KEYS",
    "MVSEC_KEYS",
]

#: metric names returned by :func:`dsec_metrics` (besides ``valid_pixels``), in table order
DSEC_KEYS = ("mae", "one_pe", "two_pe", "rmse")
#: metric names returned by :func:`mvsec_metrics` (besides ``valid_pixels``), in table order
MVSEC_KEYS = (
    "mean_depth_error_m",
    "median_depth_error_m",
    "one_pixel_accuracy",
    "one_pe",
    "mean_disparity_error",
)

#: region names of :func:`region_metrics`, in table order
REGIONS = ("near", "edge", "occluded")
#: metric names returned by :func:`region_metrics` that are averaged over images
REGION_KEYS = tuple(f"{r}_{m}" for r in REGIONS for m in ("mae", "two_pe"))

#: DDES's additive guard in depth = focal_baseline / (disparity + eps)
_DDES_EPS = 1e-7


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p = as_image(pred, "prediction")
    g = as_image(gt, "ground truth")
    if p.shape != g.shape:
        raise DatasetError(f"prediction shape {p.shape} does not match ground-truth shape {g.shape}")
    return p, g


def mvsec_valid_mask(gt: np.ndarray) -> np.ndarray:
    """MVSEC valid pixels: finite, positive ground-truth disparity (NaN/inf/0 = invalid)."""
    return np.isfinite(gt) & (gt > 0)


def ddes_depth(disparity_px: Any, focal_baseline: float, min_disparity: float = 0.0) -> np.ndarray:
    """Depth in metres as the DDES evaluation computes it:
    ``focal_baseline / (max(d, min_disparity) + 1e-7)``, ``inf`` for non-finite ``d``.

    Unlike :func:`stereo_snn.events.disparity_to_depth` (the data layer's conversion,
    NaN for d <= 0) this keeps DDES's additive guard, so a zero prediction is a huge but
    finite depth, as in the published numbers. ``focal_baseline`` is fx (pixels) times
    the baseline (metres).
    """
    if not (focal_baseline > 0 and math.isfinite(focal_baseline)):
        raise ConfigError(f"focal_baseline must be a positive number of pixel-metres, got {focal_baseline!r}")
    d = to_numpy(disparity_px)
    d = np.maximum(d, min_disparity) if min_disparity > 0 else d
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = focal_baseline / (d + _DDES_EPS)
    depth[~np.isfinite(d)] = np.inf
    return depth


def mean_absolute_error(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean of |pred - gt| over ``mask`` (same unit as the inputs); 0 if the mask is empty."""
    if not mask.any():
        return 0.0
    return float(np.mean(np.abs(pred[mask] - gt[mask])))


def root_mean_square_error(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Square root of the mean of (pred - gt)^2 over ``mask``; 0 if the mask is empty."""
    if not mask.any():
        return 0.0
    return float(np.sqrt(np.mean((pred[mask] - gt[mask]) ** 2)))


def n_pixel_error(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, n: float) -> float:
    """Percentage (0-100) of ``mask`` pixels with |pred - gt| strictly greater than ``n`` px."""
    if not mask.any():
        return 0.0
    return float(100.0 * np.mean(np.abs(pred[mask] - gt[mask]) > n))


def _depth_errors(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, focal_baseline: float, min_disparity: float
) -> np.ndarray:
    _check_prediction(pred, mask)
    pred_depth = ddes_depth(pred[mask], focal_baseline, min_disparity)
    gt_depth = ddes_depth(gt[mask], focal_baseline)
    return np.abs(pred_depth - gt_depth)


def mean_depth_error(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, focal_baseline: float, min_disparity: float = 1.0
) -> float:
    """Mean absolute depth error (metres) over ``mask``, depths from disparities (pixels)
    with :func:`ddes_depth`; predictions clamped below at ``min_disparity`` px."""
    if not mask.any():
        return 0.0
    return float(np.mean(_depth_errors(pred, gt, mask, focal_baseline, min_disparity)))


def median_depth_error(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, focal_baseline: float, min_disparity: float = 1.0
) -> float:
    """Median absolute depth error (metres) over ``mask`` (as DDES also reports)."""
    if not mask.any():
        return 0.0
    return float(np.median(_depth_errors(pred, gt, mask, focal_baseline, min_disparity)))


def _check_prediction(pred: np.ndarray, mask: np.ndarray) -> None:
    """A NaN/inf prediction at a valid pixel can only come from a broken model: say so."""
    if not np.all(np.isfinite(pred[mask])):
        raise DatasetError("prediction holds NaN or infinite disparities at valid ground-truth pixels")


def dsec_metrics(pred: Any, gt: Any) -> dict[str, float | int]:
    """DSEC metrics of one disparity map (pixels) against its ground truth (pixels, 0 = invalid).

    Returns ``mae`` (px), ``one_pe`` and ``two_pe`` (% of valid pixels with error > 1 / > 2
    px, strict), ``rmse`` (px) and ``valid_pixels`` (count). With no valid pixel every
    metric is 0 and ``valid_pixels`` is 0 (the accumulator skips such images).
    """
    p, g = _pair(pred, gt)
    mask = dsec_valid_mask(g)
    _check_prediction(p, mask)
    return {
        "mae": mean_absolute_error(p, g, mask),
        "one_pe": n_pixel_error(p, g, mask, 1.0),
        "two_pe": n_pixel_error(p, g, mask, 2.0),
        "rmse": root_mean_square_error(p, g, mask),
        "valid_pixels": int(mask.sum()),
    }


def mvsec_metrics(
    pred_disp: Any, gt_disp: Any, focal_baseline: float, min_disparity: float = 1.0
) -> dict[str, float | int]:
    """MVSEC metrics (DDES protocol) of one disparity map against ground-truth disparity.

    Args:
        pred_disp: predicted disparity (H, W), pixels.
        gt_disp: ground-truth disparity (H, W), pixels; NaN, inf or <= 0 = invalid.
        focal_baseline: fx * baseline in pixel-metres (indoor_flying: 19.941772).
        min_disparity: lower clamp (pixels) on the predicted disparity before the depth
            conversion (see the module docstring); 0 reproduces DDES exactly.

    Returns ``mean_depth_error_m`` and ``median_depth_error_m`` (metres),
    ``one_pixel_accuracy`` (% of valid pixels with error <= 1 px), ``one_pe`` (its
    complement, error > 1 px), ``mean_disparity_error`` (px) and ``valid_pixels``.
    """
    if min_disparity < 0:
        raise ConfigError(f"min_disparity must be >= 0 pixels, got {min_disparity}")
    p, g = _pair(pred_disp, gt_disp)
    mask = mvsec_valid_mask(g)
    _check_prediction(p, mask)
    one_pe = n_pixel_error(p, g, mask, 1.0)
    valid = int(mask.sum())
    return {
        "mean_depth_error_m": mean_depth_error(p, g, mask, focal_baseline, min_disparity),
        "median_depth_error_m": median_depth_error(p, g, mask, focal_baseline, min_disparity),
        "one_pixel_accuracy": 100.0 - one_pe if valid else 0.0,
        "one_pe": one_pe,
        "mean_disparity_error": mean_absolute_error(p, g, mask),
        "valid_pixels": valid,
    }


@dataclass(frozen=True)
class Regions:
    """Where the region metrics look (see the module docstring).

    near_px: absolute near threshold, pixels of disparity (``gt > near_px``); None (default)
        uses ``near_ratio`` instead.
    near_ratio: near = ``gt >`` this factor times the median of the image's valid ground
        truth (default 1.5: closer than 2/3 of the median depth).
    edge_radius_px: edge pixels lie within this distance (pixels, a disk; 0 = only the
        pixels on the discontinuity) of a ground-truth discontinuity.
    edge_jump_px: a discontinuity is a jump of more than this many pixels of disparity
        between 4-neighbouring valid ground-truth pixels.
    occlusion_px: a pixel is occluded when a surface nearer by more than this many pixels of
        disparity covers its match in the right view (:func:`occlusion_mask`).
    """

    near_px: float | None = None
    near_ratio: float = 1.5
    edge_radius_px: int = 2
    edge_jump_px: float = 1.0
    occlusion_px: float = 1.0

    def __post_init__(self) -> None:
        if self.near_px is not None and not (math.isfinite(self.near_px) and self.near_px >= 0):
            raise ConfigError(f"near threshold (--near-px) must be >= 0 pixels, got {self.near_px!r}")
        if not (math.isfinite(self.near_ratio) and self.near_ratio > 0):
            raise ConfigError(f"near ratio must be a positive factor of the median disparity, got {self.near_ratio!r}")
        if not (isinstance(self.edge_radius_px, int) and self.edge_radius_px >= 0):
            raise ConfigError(
                f"edge radius (--edge-radius) must be an integer >= 0 pixels, got {self.edge_radius_px!r}"
            )
        if not (math.isfinite(self.edge_jump_px) and self.edge_jump_px >= 0):
            raise ConfigError(f"edge jump must be >= 0 pixels, got {self.edge_jump_px!r}")
        if not (math.isfinite(self.occlusion_px) and self.occlusion_px >= 0):
            raise ConfigError(f"occlusion margin must be >= 0 pixels, got {self.occlusion_px!r}")

    def describe(self) -> str:
        """One line saying what "near" and "edge" mean with these settings."""
        near = (
            f"gt > {self.near_px:g} px"
            if self.near_px is not None
            else f"gt > {self.near_ratio:g} x the median of each image's valid gt"
        )
        return (
            f"near: {near}; edge: within {self.edge_radius_px} px of a gt jump > {self.edge_jump_px:g} px "
            f"between neighbouring valid pixels; occluded: match hidden in the right view or outside it"
        )


def near_mask(gt: np.ndarray, valid: np.ndarray, near_px: float | None = None, ratio: float = 1.5) -> np.ndarray:
    """Near pixels of one ground-truth disparity map (pixels): valid and ``gt > near_px``, or,
    with ``near_px=None``, valid and ``gt > ratio * median(valid gt)``."""
    if not valid.any():
        return np.zeros_like(valid)
    threshold = near_px if near_px is not None else ratio * float(np.median(gt[valid]))
    return valid & (gt > threshold)


def discontinuity_mask(gt: np.ndarray, valid: np.ndarray, jump_px: float = 1.0) -> np.ndarray:
    """Pixels on a ground-truth depth discontinuity: both pixels of every 4-neighbour pair
    that are both valid and whose disparities (pixels) differ by more than ``jump_px``."""
    out = np.zeros(gt.shape, dtype=bool)
    for axis in (0, 1):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        ia, ib = tuple(a), tuple(b)
        with np.errstate(invalid="ignore"):
            jump = valid[ia] & valid[ib] & (np.abs(gt[ia] - gt[ib]) > jump_px)
        out[ia] |= jump
        out[ib] |= jump
    return out


def edge_mask(gt: np.ndarray, valid: np.ndarray, radius_px: int = 2, jump_px: float = 1.0) -> np.ndarray:
    """Valid pixels within ``radius_px`` (a disk) of a ground-truth discontinuity
    (:func:`discontinuity_mask`)."""
    edges = discontinuity_mask(gt, valid, jump_px)
    if radius_px > 0 and edges.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))
        edges = cv2.dilate(edges.astype(np.uint8), kernel).astype(bool)
    return edges & valid


def occlusion_mask(gt: np.ndarray, valid: np.ndarray, margin_px: float = 1.0) -> np.ndarray:
    """Valid left-view pixels whose match in the right view cannot be seen, from the left
    ground-truth disparity (pixels) alone.

    A pixel at column x with disparity d matches right column x - d. It is occluded when x - d
    lies left of the right image (x < d), or when a valid pixel of the same row that is nearer
    by more than ``margin_px`` lands on the same right column: each valid pixel is drawn into
    a per-row depth buffer of the right view at columns floor(x - d) and floor(x - d) + 1 (two
    columns, so that the gaps a slanted surface leaves when it projects do not read as holes).
    This is the region left of every near object (as wide as its disparity step) that stereo
    benchmarks report apart (Middlebury's non-occluded/all split). Hand-written: OpenCV and
    the DSEC/MVSEC tools have no such routine; a few numpy lines, no data-dependent loop."""
    g = np.where(valid, gt, 0.0).astype(np.float64)
    h, w = g.shape
    x = np.broadcast_to(np.arange(w, dtype=np.float64), (h, w))
    target = np.floor(x - g)
    inside = valid & (target >= 0)
    zbuf = np.full((h, w + 1), -np.inf)
    rows = np.broadcast_to(np.arange(h)[:, None], (h, w))[inside]
    cols = target[inside].astype(np.int64)
    for c in (cols, cols + 1):
        np.maximum.at(zbuf, (rows, c), g[inside])
    occluded = valid & ~inside
    occluded[inside] = zbuf[rows, cols] > g[inside] + margin_px
    return occluded


def region_metrics(pred: Any, gt: Any, valid: np.ndarray, regions: Regions) -> dict[str, float | int | None]:
    """MAE (px), 2PE (%) and pixel count of ``pred`` on the near, edge and occluded regions
    of ``gt``.

    ``valid`` is the image's valid ground-truth mask (the metric family's own). Keys:
    ``<region>_mae, <region>_two_pe, <region>_pixels`` for each of :data:`REGIONS`; the MAE
    and 2PE of an empty region are None (the accumulator leaves the image out of that mean).
    """
    p, g = _pair(pred, gt)
    masks = {
        "near": near_mask(g, valid, regions.near_px, regions.near_ratio),
        "edge": edge_mask(g, valid, regions.edge_radius_px, regions.edge_jump_px),
        "occluded": occlusion_mask(g, valid, regions.occlusion_px),
    }
    out: dict[str, float | int | None] = {}
    for name in REGIONS:
        mask = masks[name]
        has = bool(mask.any())
        out[f"{name}_mae"] = mean_absolute_error(p, g, mask) if has else None
        out[f"{name}_two_pe"] = n_pixel_error(p, g, mask, 2.0) if has else None
        out[f"{name}_pixels"] = int(mask.sum())
    return out


def _batch(array: Any, name: str) -> np.ndarray:
    """(H, W) -> (1, H, W); (B, H, W) and (B, 1, H, W) -> (B, H, W)."""
    a = to_numpy(array)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise DatasetError(f"{name}: expected (H, W), (B, H, W) or (B, 1, H, W), got shape {tuple(a.shape)}")
    return a


class MetricAccumulator:
    """Collects per-image metrics and averages them over images.

    ``kind="dsec"`` uses :func:`dsec_metrics`; ``kind="mvsec"`` uses :func:`mvsec_metrics`
    and needs ``focal_baseline`` (pixel-metres). With ``regions`` every image also gets
    :func:`region_metrics` (near / edge / occluded MAE and 2PE, disparity pixels). Images with no valid
    ground-truth pixel are skipped and counted in :attr:`skipped`; they never enter the
    means; an image with no pixel in a region only leaves that region's means.

    Attributes:
        per_image: list of the per-image metric dicts that entered the means, each with
            an ``image`` key (running index over every update, skipped ones included).
        skipped: number of images skipped for lack of valid ground truth.
    """

    def __init__(
        self,
        kind: Literal["dsec", "mvsec"] = "dsec",
        focal_baseline: float | None = None,
        min_disparity: float = 1.0,
        regions: Regions | None = None,
    ) -> None:
        if kind not in ("dsec", "mvsec"):
            raise ConfigError(f"metric kind must be 'dsec' or 'mvsec', got {kind!r}")
        if kind == "mvsec":
            if focal_baseline is None:
                raise ConfigError("MVSEC metrics need focal_baseline (fx * baseline, pixel-metres)")
            fb = float(focal_baseline)
            self._fn: Callable[[np.ndarray, np.ndarray], dict[str, float | int]] = lambda p, g: mvsec_metrics(
                p, g, fb, min_disparity
            )
            self.keys: tuple[str, ...] = MVSEC_KEYS
            self._valid: Callable[[np.ndarray], np.ndarray] = mvsec_valid_mask
        else:
            self._fn = dsec_metrics
            self.keys = DSEC_KEYS
            self._valid = dsec_valid_mask
        if regions is not None:
            self.keys = self.keys + REGION_KEYS
        self.kind = kind
        self.focal_baseline = focal_baseline
        self.regions = regions
        self.per_image: list[dict[str, float | int | None]] = []
        self.skipped = 0
        self._seen = 0

    def update(self, pred: Any, gt: Any) -> list[dict[str, float | int] | None]:
        """Add one image (H, W) or a batch (B, H, W) / (B, 1, H, W), pixels.

        Returns the per-image metric dicts of this call (None for a skipped image).
        """
        p = _batch(pred, "prediction")
        g = _batch(gt, "ground truth")
        if p.shape != g.shape:
            raise DatasetError(f"prediction shape {p.shape} does not match ground-truth shape {g.shape}")
        out: list[dict[str, float | int | None] | None] = []
        for pi, gi in zip(p, g):
            m: dict[str, float | int | None] = dict(self._fn(pi, gi))
            index = self._seen
            self._seen += 1
            if m["valid_pixels"] == 0:
                self.skipped += 1
                out.append(None)
                continue
            if self.regions is not None:
                m.update(region_metrics(pi, gi, self._valid(gi), self.regions))
            row = {"image": index, **m}
            self.per_image.append(row)
            out.append(row)
        return out

    def compute(self) -> dict[str, float | int | None]:
        """Means over the accumulated images, plus ``images`` (count averaged) and
        ``skipped_images``; with regions also ``<region>_images`` (images that
        have such pixels, the ones the region means average over). A mean over no image is
        None (never NaN)."""
        result: dict[str, float | int | None] = {}
        for key in self.keys:
            values = [r[key] for r in self.per_image if r.get(key) is not None]
            result[key] = float(np.mean(values)) if values else None
        result["images"] = len(self.per_image)
        result["skipped_images"] = self.skipped
        if self.regions is not None:
            for name in REGIONS:
                result[f"{name}_images"] = sum(1 for r in self.per_image if r.get(f"{name}_mae") is not None)
        return result

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.per_image.clear()
        self.skipped = 0
        self._seen = 0


#: how each known metric is labelled and printed in tables
_COLUMN_FORMAT: dict[str, tuple[str, str]] = {
    "mae": ("MAE [px]", "{:.3f}"),
    "one_pe": ("1PE [%]", "{:.2f}"),
    "two_pe": ("2PE [%]", "{:.2f}"),
    "rmse": ("RMSE [px]", "{:.3f}"),
    "mean_depth_error_m": ("MDE [cm]", "{:.1f}"),
    "median_depth_error_m": ("MedDE [cm]", "{:.1f}"),
    "one_pixel_accuracy": ("1PA [%]", "{:.2f}"),
    "mean_disparity_error": ("MDispE [px]", "{:.3f}"),
    "near_mae": ("near MAE", "{:.3f}"),
    "near_two_pe": ("near 2PE", "{:.2f}"),
    "edge_mae": ("edge MAE", "{:.3f}"),
    "edge_two_pe": ("edge 2PE", "{:.2f}"),
    "occluded_mae": ("occl. MAE", "{:.3f}"),
    "occluded_two_pe": ("occl. 2PE", "{:.2f}"),
    "images": ("images", "{:d}"),
    "skipped_images": ("skipped", "{:d}"),
}
_CENTIMETRE_KEYS = {"mean_depth_error_m", "median_depth_error_m"}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    fmt = _COLUMN_FORMAT.get(key, (key, "{:.4g}"))[1]
    if key in _CENTIMETRE_KEYS:
        value = 100.0 * float(value)
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def format_table(rows: Mapping[str, Mapping[str, Any]], keys: Iterable[str] | None = None) -> str:
    """Plain-text table, one row per method, metrics side by side.

    ``rows`` maps a method name to its metric dict (e.g. ``{"snn": acc.compute(),
    "sgbm": base.compute()}``). ``keys`` picks and orders the columns; by default every
    key present in any row, known metrics first in their usual order. Depth errors are
    printed in centimetres (as papers report them), missing values as ``n/a``.
    """
    if not rows:
        return ""
    if keys is None:
        present = {k for r in rows.values() for k in r}
        known = [k for k in _COLUMN_FORMAT if k in present]
        others = sorted(k for k in present if k not in _COLUMN_FORMAT and k not in ("image", "valid_pixels"))
        keys = known + others
    keys = list(keys)
    header = ["method"] + [_COLUMN_FORMAT.get(k, (k, ""))[0] for k in keys]
    body = [[str(name)] + [_cell(k, r.get(k)) for k in keys] for name, r in rows.items()]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt_line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt_line(header), rule, *(fmt_line(b) for b in body)])
