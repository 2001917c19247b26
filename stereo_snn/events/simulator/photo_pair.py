"""Event sequences made from a real stereo photograph pair, for testing only.

A rectified stereo pair with ground-truth disparity in the left view (scikit-image's
Middlebury 2014 motorcycle, or the user's own files) is shown to the event model as if a
camera rig swayed in front of it: one smooth image-plane motion (translation of a few
pixels per 50 ms, a small roll and a small zoom oscillation, all drawn from the seed) is
applied identically to both views with ``cv2.warpAffine``, frame by frame, and the frames
are fed to the simulator's :class:`~.esim.EventGenerator` (simulator defaults for
thresholds, mismatch, refractory period and noise). Ground truth at each timestamp is the
left disparity warped with the same transform (nearest neighbour, 0 = invalid), its values
multiplied by the zoom (``s cos(theta)``: translation leaves disparity unchanged, a zoom
scales it). The result is written in DSEC or MVSEC layout by the simulator's writers.

Geometry notes. Translation and zoom of both views are exact for a rectified pair (they
are a change of principal point and focal length). A roll of both images by ``theta`` is
not: the true right view would differ by a vertical offset of ``d sin(theta)`` at
disparity ``d`` (:attr:`PhotoSequenceInfo.max_vertical_error_px` reports the bound), which
is why the default roll is small (0.2 degrees).

Such pairs are test data: never train, tune or choose a model on them. (The motorcycle's
left image is also one of the simulator's bundled photo textures, see
``textures._PHOTO_FILES``.)
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from tqdm import tqdm

from ...atomic import write_json
from ...errors import ConfigError, DatasetError
from ..recording import Events, StereoRecording
from .api import MAX_MOTION_PX_PER_FRAME, _concat, plan_sequences
from .config import SimConfig
from .esim import EventGenerator

__all__ = [
    "LAYOUT_SIZES",
    "BUNDLED_PAIRS",
    "PhotoPair",
    "PhotoSwayConfig",
    "PhotoSequenceInfo",
    "Sway",
    "SwayPath",
    "load_photo_pair",
    "bundled_pair",
    "simulate_photo_pair",
    "write_photo_sequences",
]

#: (height, width) of each output layout
LAYOUT_SIZES: dict[str, tuple[int, int]] = {"dsec": (480, 640), "mvsec": (260, 346)}
#: stereo pairs available by name (scikit-image's bundled data)
BUNDLED_PAIRS = ("motorcycle",)
#: the automatic render rate keeps image motion at or below this many pixels per frame
TARGET_MOTION_PX_PER_FRAME = 1.0


@dataclass(frozen=True)
class PhotoPair:
    """A rectified stereo pair in memory.

    Attributes:
        name: short name (default sequence name).
        left, right: float32 (H, W) linear intensities in [0, 1] (grayscale).
        disparity: float32 (H, W) disparity of the left view in pixels (the left pixel x
            matches the right pixel x - d); 0 = invalid.
        fx: focal length in pixels of these images (for depth = fx * baseline / disparity).
        baseline_m: stereo baseline in metres.
    """

    name: str
    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    fx: float
    baseline_m: float

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.left.shape[0]), int(self.left.shape[1]))


def _srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light in [0, 1] (IEC 61966-2-1)."""
    v = np.asarray(values, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear_gray(image: np.ndarray, where: str) -> np.ndarray:
    """8/16-bit gray or RGB (channels last, RGB order) image -> float32 linear luminance in [0, 1]."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        v = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        v = img.astype(np.float32) / 65535.0
    else:
        raise DatasetError(f"{where}: expected an 8- or 16-bit image, got {img.dtype}")
    lin = _srgb_to_linear(v)
    if lin.ndim == 2:
        return lin
    if lin.ndim == 3 and lin.shape[2] in (3, 4):
        return (0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]).astype(np.float32)
    raise DatasetError(f"{where}: expected a gray or RGB image, got shape {img.shape}")


def _clean_disparity(disparity: np.ndarray, where: str) -> np.ndarray:
    d = np.asarray(disparity, dtype=np.float32)
    if d.ndim != 2:
        raise DatasetError(f"{where}: disparity must be a single-channel (H, W) map, got shape {d.shape}")
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
    if not (d > 0).any():
        raise DatasetError(f"{where}: no valid disparity (every value is 0, negative, NaN or inf)")
    return d


def _make_pair(
    name: str,
    left: np.ndarray,
    right: np.ndarray,
    disparity: np.ndarray,
    fx: float,
    baseline_m: float,
    where: tuple[str, str, str],
) -> PhotoPair:
    left_l = _linear_gray(left, where[0])
    right_l = _linear_gray(right, where[1])
    disp = _clean_disparity(disparity, where[2])
    if right_l.shape != left_l.shape or disp.shape != left_l.shape:
        raise DatasetError(
            f"{where[0]}: left {left_l.shape[:2]}, right {right_l.shape[:2]} and disparity {disp.shape[:2]} "
            "must have the same height and width"
        )
    if min(left_l.shape) < 8:
        raise DatasetError(f"{where[0]}: image {left_l.shape} is too small (min 8x8)")
    if not (fx > 0 and baseline_m > 0 and math.isfinite(fx) and math.isfinite(baseline_m)):
        raise ConfigError(f"fx/baseline: must be positive, got {fx} px / {baseline_m} m")
    return PhotoPair(name, left_l, right_l, disp, float(fx), float(baseline_m))


def bundled_pair(name: str) -> PhotoPair:
    """A stereo pair shipped with scikit-image, by name (``"motorcycle"``).

    motorcycle: Middlebury 2014, 741x500 (scikit-image's 4x down-sampled copy), ground truth
    7.2-59.9 px, NaN/inf = invalid (about 7 % of the pixels); focal length 994.978 px and
    baseline 0.193 m from scikit-image's documentation (depth also needs Middlebury's
    ``doffs``, which the written files do not carry: their depth is fx * baseline / d).
    """
    if name not in BUNDLED_PAIRS:
        raise ConfigError(f"pair: unknown stereo pair {name!r} (bundled: {', '.join(BUNDLED_PAIRS)})")
    import skimage.data

    left, right, disp = skimage.data.stereo_motorcycle()
    where = f"scikit-image stereo_motorcycle ({name})"
    return _make_pair(name, left, right, disp, 994.978, 0.193, (where, where, where))


def _read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: image not found")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"{path}: cannot decode the image (corrupt or not an image)")
    if img.ndim == 3:  # OpenCV's BGR(A) -> RGB
        img = img[..., 2::-1] if img.shape[2] >= 3 else img[..., 0]
    return img


def _read_disparity(path: Path, scale: float | None) -> np.ndarray:
    """Disparity in pixels = stored value / scale; the default scale is 256 for 16-bit PNGs
    (KITTI / DSEC) and 1 for everything else (.pfm, .npy, 8-bit PNG)."""
    if not path.is_file():
        raise DatasetError(f"{path}: disparity file not found")
    if path.suffix.lower() == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read the .npy disparity ({exc})") from exc
        if not np.issubdtype(values.dtype, np.number):
            raise DatasetError(f"{path}: disparity must be numeric, got {values.dtype}")
    else:
        values = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if values is None:
            raise DatasetError(f"{path}: cannot decode the disparity file (use .pfm, .png or .npy)")
    if values.ndim == 3:
        values = values[..., 0]
    default = 256.0 if values.dtype == np.uint16 else 1.0
    s = default if scale is None else float(scale)
    if not (s > 0 and math.isfinite(s)):
        raise ConfigError(f"disparity_scale: must be positive, got {scale}")
    return values.astype(np.float32) / np.float32(s)


def load_photo_pair(
    left: str | os.PathLike,
    right: str | os.PathLike,
    disparity: str | os.PathLike,
    disparity_scale: float | None = None,
    fx: float | None = None,
    baseline_m: float = 0.1,
    name: str | None = None,
) -> PhotoPair:
    """Read a rectified stereo pair with left-view ground truth from files.

    Args:
        left, right: images OpenCV can read (8- or 16-bit, gray or colour, sRGB-encoded).
        disparity: left-view disparity in pixels (left x matches right x - d): ``.pfm``
            (Middlebury; inf = invalid), ``.png`` or ``.npy``; stored value / ``disparity_scale``.
            0, negative, NaN and inf mark invalid pixels.
        disparity_scale: divisor of the stored values (default 256 for 16-bit PNG as in
            KITTI and DSEC, else 1).
        fx: focal length of these images in pixels (default: the image width), only used to
            write depth (MVSEC) and the calibration.
        baseline_m: stereo baseline in metres (same use).
        name: default sequence name (default: the left file's stem).

    Raises:
        DatasetError: a file is missing or unreadable, the shapes differ, or no pixel of the
            disparity is valid.
    """
    lp, rp, dp = Path(left), Path(right), Path(disparity)
    left_img, right_img = _read_image(lp), _read_image(rp)
    disp = _read_disparity(dp, disparity_scale)
    width = float(left_img.shape[1])
    return _make_pair(
        name or lp.stem,
        left_img,
        right_img,
        disp,
        fx if fx is not None else width,
        baseline_m,
        (str(lp), str(rp), str(dp)),
    )


@dataclass(frozen=True)
class PhotoSwayConfig:
    """How a photo pair becomes an event sequence.

    Attributes:
        name: sequence name (folder / file stem).
        layout: "dsec" or "mvsec": output layout and default size (640x480 / 346x260).
        height, width: output size in pixels (default: the layout's).
        duration_ms: length of the sequence.
        gt_rate_hz: ground-truth maps per second (from the first frame, both ends included).
        render_rate_hz: frames per second fed to the event model (default: the lowest rate
            that keeps image motion at or below 1 px per frame).
        speed_px_s: mean image speed of the translation, pixels per second (default 0.1 *
            width: 3.2 px per 50 ms at 640 wide).
        rotation_deg: amplitude of the roll oscillation in degrees.
        zoom: amplitude of the zoom oscillation (fraction; disparity scales with it).
        max_disparity: if set, the ground truth must stay at or below it (pixels).
        seed: random seed of the sway and of the event model; the output is a deterministic
            function of the pair and this config.
        start_time_us: absolute time of the first frame (microseconds).
    """

    name: str = "photo"
    layout: str = "dsec"
    height: int | None = None
    width: int | None = None
    duration_ms: float = 1000.0
    gt_rate_hz: float = 10.0
    render_rate_hz: float | None = None
    speed_px_s: float | None = None
    rotation_deg: float = 0.2
    zoom: float = 0.01
    max_disparity: float | None = None
    seed: int = 0
    start_time_us: int = 0

    def __post_init__(self) -> None:
        checks = [
            (
                self.layout in LAYOUT_SIZES,
                f"format: unknown layout {self.layout!r} (choose {' or '.join(LAYOUT_SIZES)})",
            ),
            ((self.height is None) == (self.width is None), "size: give both height and width, or neither"),
            (
                self.height is None or (self.height >= 8 and self.width >= 8),
                f"size: {self.height}x{self.width} is too small (min 8x8)",
            ),
            (
                self.duration_ms > 0 and math.isfinite(self.duration_ms),
                f"duration_ms: must be > 0, got {self.duration_ms}",
            ),
            (self.gt_rate_hz > 0, f"gt_rate_hz: must be > 0, got {self.gt_rate_hz}"),
            (
                self.render_rate_hz is None or self.render_rate_hz >= self.gt_rate_hz,
                f"render_rate_hz: {self.render_rate_hz} Hz is below gt_rate_hz {self.gt_rate_hz} Hz",
            ),
            (
                self.render_rate_hz is None or self.render_rate_hz <= 1e6,
                f"render_rate_hz: {self.render_rate_hz} Hz is above 1 MHz",
            ),
            (
                self.speed_px_s is None or 0 <= self.speed_px_s < 1e5,
                f"speed_px_s: must be in [0, 1e5), got {self.speed_px_s}",
            ),
            (0 <= self.rotation_deg <= 10, f"rotation_deg: must be in [0, 10], got {self.rotation_deg}"),
            (0 <= self.zoom <= 0.2, f"zoom: must be in [0, 0.2], got {self.zoom}"),
            (
                self.max_disparity is None or self.max_disparity > 0,
                f"max_disparity: must be > 0, got {self.max_disparity}",
            ),
            (self.start_time_us >= 0, f"start_time_us: must be >= 0, got {self.start_time_us}"),
            (
                bool(self.name) and "/" not in self.name and "\\" not in self.name and self.name not in (".", ".."),
                f"name: {self.name!r} is not a valid file name",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the output in pixels."""
        if self.height is not None and self.width is not None:
            return (int(self.height), int(self.width))
        return LAYOUT_SIZES[self.layout]

    @property
    def speed(self) -> float:
        return float(self.speed_px_s) if self.speed_px_s is not None else 0.1 * self.size[1]


@dataclass(frozen=True)
class SwayPath:
    """The rig's sway sampled at given times: view pixel ``v = s R(theta) (c - cc) + vc + (tx, ty)``
    for canvas pixel ``c`` (cc, vc: the canvas and view centres). Arrays of the same length."""

    t_s: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    theta: np.ndarray
    scale: np.ndarray

    def at(self, i: int) -> tuple[float, float, float, float]:
        return float(self.tx[i]), float(self.ty[i]), float(self.theta[i]), float(self.scale[i])


@dataclass(frozen=True)
class _Sinusoids:
    """A sum of sinusoids ``sum a_k sin(2 pi f_k t + phi_k)`` of time in seconds."""

    amp: np.ndarray
    freq: np.ndarray
    phase: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, f_lo: float, f_hi: float) -> "_Sinusoids":
        return cls(rng.uniform(0.5, 1.0, n), rng.uniform(f_lo, f_hi, n), rng.uniform(0.0, 2 * math.pi, n))

    def __call__(self, t: np.ndarray) -> np.ndarray:
        arg = 2 * math.pi * self.freq[:, None] * np.asarray(t, np.float64)[None, :] + self.phase[:, None]
        return np.sum(self.amp[:, None] * np.sin(arg), axis=0)


@dataclass(frozen=True)
class Sway:
    """A smooth sway of the rig over ``[0, duration_s]``: translation as three sinusoids per
    axis (0.4-2 Hz) scaled so that the mean image speed over the span is ``speed_px_s``;
    roll and zoom one sinusoid each (0.3-1 Hz) scaled to peak at ``rotation_rad`` and
    ``zoom`` over the span. :meth:`sample` evaluates it at any times."""

    x: _Sinusoids
    y: _Sinusoids
    roll: _Sinusoids
    zoom_wave: _Sinusoids
    gain_px: float
    rotation_rad: float
    zoom: float

    @classmethod
    def draw(cls, config: PhotoSwayConfig, rng: np.random.Generator) -> "Sway":
        x, y = _Sinusoids.draw(rng, 3, 0.4, 2.0), _Sinusoids.draw(rng, 3, 0.4, 2.0)
        roll, zoom = _Sinusoids.draw(rng, 1, 0.3, 1.0), _Sinusoids.draw(rng, 1, 0.3, 1.0)
        span = config.duration_ms * 1e-3
        fine = np.linspace(0.0, span, max(2, int(span * 2000) + 1))  # 0.5 ms steps
        step = float(fine[1] - fine[0])
        mean_speed = float(np.mean(np.hypot(np.diff(x(fine)), np.diff(y(fine))))) / step
        gain = config.speed / mean_speed if mean_speed > 0 else 0.0
        return cls(
            x,
            y,
            _peak_normalised(roll, fine),
            _peak_normalised(zoom, fine),
            gain,
            math.radians(config.rotation_deg),
            config.zoom,
        )

    def sample(self, times_s: np.ndarray) -> SwayPath:
        t = np.asarray(times_s, dtype=np.float64)
        return SwayPath(
            t,
            self.gain_px * self.x(t),
            self.gain_px * self.y(t),
            self.rotation_rad * self.roll(t),
            1.0 + self.zoom * self.zoom_wave(t),
        )


def _peak_normalised(wave: _Sinusoids, fine: np.ndarray) -> _Sinusoids:
    peak = float(np.max(np.abs(wave(fine))))
    return dataclasses.replace(wave, amp=wave.amp / peak) if peak > 0 else wave


def _forward(
    path: SwayPath, i: int, canvas_centre: tuple[float, float], view_centre: tuple[float, float]
) -> np.ndarray:
    """2x3 affine canvas -> view of sample ``i`` (what cv2.warpAffine takes)."""
    tx, ty, theta, s = path.at(i)
    c, sn = s * math.cos(theta), s * math.sin(theta)
    a = np.array([[c, -sn], [sn, c]])
    offset = np.array(view_centre) + np.array([tx, ty]) - a @ np.array(canvas_centre)
    return np.hstack([a, offset[:, None]])


def _needed_half_extent(path: SwayPath, size: tuple[int, int]) -> tuple[float, float]:
    """Largest |canvas - canvas centre| reached by the view's corners over the path (x, y)."""
    h, w = size
    vc = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64) - vc
    hx = hy = 0.0
    for i in range(path.t_s.size):
        tx, ty, theta, s = path.at(i)
        c, sn = math.cos(theta) / s, math.sin(theta) / s
        rel = corners - np.array([tx, ty])
        cx = c * rel[:, 0] + sn * rel[:, 1]  # inverse rotation and scale
        cy = -sn * rel[:, 0] + c * rel[:, 1]
        hx, hy = max(hx, float(np.abs(cx).max())), max(hy, float(np.abs(cy).max()))
    return hx, hy


def _max_motion_per_frame(path: SwayPath, size: tuple[int, int]) -> float:
    """Largest displacement (pixels) of any view corner or the centre between consecutive samples."""
    h, w = size
    vc = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    pts = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [vc[0], vc[1]]], dtype=np.float64) - vc
    prev = None
    worst = 0.0
    for i in range(path.t_s.size):
        tx, ty, theta, s = path.at(i)
        c, sn = s * math.cos(theta), s * math.sin(theta)
        # the canvas point under view point p at sample 0 moves with the forward map of sample i
        moved = np.stack([c * pts[:, 0] - sn * pts[:, 1] + tx, sn * pts[:, 0] + c * pts[:, 1] + ty], axis=1)
        if prev is not None:
            worst = max(worst, float(np.max(np.hypot(*(moved - prev).T))))
        prev = moved
    return worst


@dataclass(frozen=True)
class PhotoSequenceInfo:
    """What :func:`simulate_photo_pair` did, for the record (written as ``photo_pair.json``)."""

    pair: str
    layout: str
    height: int
    width: int
    seed: int
    source_size: tuple[int, int]
    canvas_scale_x: float
    gt_min_px: float
    gt_max_px: float
    gt_valid_fraction: float
    render_rate_hz: float
    max_motion_px_per_frame: float
    mean_speed_px_s: float
    rotation_deg: float
    zoom: float
    max_vertical_error_px: float
    max_disparity: float | None
    events_left: int
    events_right: int

    def summary(self) -> str:
        return (
            f"{self.pair} -> {self.width}x{self.height} ({self.layout}), seed {self.seed}: "
            f"GT disparity {self.gt_min_px:.1f}-{self.gt_max_px:.1f} px ({100 * self.gt_valid_fraction:.0f} % valid), "
            f"events left {self.events_left:,} right {self.events_right:,}, "
            f"{self.render_rate_hz:.0f} Hz render ({self.max_motion_px_per_frame:.2f} px/frame), "
            f"roll error <= {self.max_vertical_error_px:.2f} px"
        )


def _frame_times(cfg: PhotoSwayConfig, rate_hz: float) -> np.ndarray:
    dt_us = max(1, int(round(1e6 / rate_hz)))
    duration_us = int(round(cfg.duration_ms * 1000.0))
    n = -(-duration_us // dt_us)
    return np.array([min(k * dt_us, duration_us) for k in range(n + 1)], np.int64)


def _gt_times(cfg: PhotoSwayConfig) -> np.ndarray:
    period_us = 1e6 / cfg.gt_rate_hz
    duration_us = int(round(cfg.duration_ms * 1000.0))
    n = int(math.floor(duration_us / period_us + 1e-9)) + 1
    return np.array([int(round(i * period_us)) for i in range(n)], np.int64)


def _plan(cfg: PhotoSwayConfig, sway: Sway) -> tuple[np.ndarray, SwayPath, float]:
    """Frame times (µs from the start), the sway at those times, and the render rate (the
    given one, or the lowest multiple of 10 Hz that keeps motion <= 1 px per frame)."""
    rate = cfg.render_rate_hz
    if rate is None:
        per_ms = _max_motion_per_frame(sway.sample(_frame_times(cfg, 1000.0) * 1e-6), cfg.size)
        rate = max(cfg.gt_rate_hz, math.ceil(1000.0 * per_ms * 1.05 / TARGET_MOTION_PX_PER_FRAME / 10.0) * 10.0)
    times = _frame_times(cfg, rate)
    return times, sway.sample(times * 1e-6), float(rate)


def _canvas(pair: PhotoPair, hx: float, hy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Both images and the disparity resized (same factor, aspect kept) so that the canvas
    reaches ``hx``/``hy`` pixels (+ 2 for interpolation) on each side of its centre.
    Returns (left, right, disparity scaled to canvas pixels, horizontal factor)."""
    h0, w0 = pair.size
    k = max((2 * hx + 4) / w0, (2 * hy + 4) / h0)
    wc, hc = max(1, math.ceil(w0 * k)), max(1, math.ceil(h0 * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    left = np.clip(cv2.resize(pair.left, (wc, hc), interpolation=interp), 0.0, 1.0)
    right = np.clip(cv2.resize(pair.right, (wc, hc), interpolation=interp), 0.0, 1.0)
    kx = wc / w0
    disp = cv2.resize(pair.disparity, (wc, hc), interpolation=cv2.INTER_NEAREST_EXACT) * np.float32(kx)
    return left, right, disp, kx


def simulate_photo_pair(
    pair: PhotoPair, config: PhotoSwayConfig, progress: bool = False
) -> tuple[StereoRecording, PhotoSequenceInfo]:
    """Turn ``pair`` into a stereo event recording with ground truth (see the module docstring).

    Returns:
        The recording (raw = rectified: identity rectify maps; events integer pixels, t
        absolute µs from ``config.start_time_us``, p in {0, 1}; GT at ``config.gt_rate_hz``)
        and a :class:`PhotoSequenceInfo`.

    Raises:
        ConfigError: a given render rate lets the image move more than
            ``MAX_MOTION_PX_PER_FRAME`` pixels per frame, the ground truth exceeds
            ``config.max_disparity``, or no valid ground truth is left in the view.
    """
    sim = SimConfig()  # the simulator's event-model defaults
    size = h, w = config.size
    path_ss, left_ss, right_ss = np.random.SeedSequence(config.seed).spawn(3)
    sway = Sway.draw(config, np.random.default_rng(path_ss))
    times, path, rate = _plan(config, sway)
    motion = _max_motion_per_frame(path, size)
    if motion > MAX_MOTION_PX_PER_FRAME:
        raise ConfigError(
            f"render_rate_hz: the image moves up to {motion:.2f} px per frame at {rate} Hz "
            f"(limit {MAX_MOTION_PX_PER_FRAME}); raise render_rate_hz or lower speed/rotation/zoom"
        )
    gt_rel = _gt_times(config)
    gt_path = sway.sample(gt_rel * 1e-6)
    hx, hy = _needed_half_extent(path, size)
    left_c, right_c, disp_c, kx = _canvas(pair, hx, hy)
    cc = ((left_c.shape[1] - 1) / 2.0, (left_c.shape[0] - 1) / 2.0)
    vc = ((w - 1) / 2.0, (h - 1) / 2.0)

    gens = {
        cam: EventGenerator(
            h,
            w,
            threshold_pos=sim.threshold_pos,
            threshold_neg=sim.threshold_neg,
            threshold_sigma=sim.threshold_sigma,
            refractory_us=sim.refractory_us,
            noise_rate_hz=sim.noise_rate_hz,
            log_eps=sim.log_eps,
            rng=np.random.default_rng(ss),
        )
        for cam, ss in (("left", left_ss), ("right", right_ss))
    }
    images = {"left": left_c, "right": right_c}
    chunks: dict[str, list[Events]] = {"left": [], "right": []}
    t0 = int(config.start_time_us)
    for k in tqdm(range(times.size), desc=config.name, unit="frame", disable=not progress, leave=False):
        m = _forward(path, k, cc, vc)
        for cam, gen in gens.items():
            frame = cv2.warpAffine(images[cam], m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            np.clip(frame, 0.0, 1.0, out=frame)
            if k == 0:
                gen.reset(frame, t0)
            else:
                chunks[cam].append(gen.step(frame, t0 + int(times[k])))

    gt = np.empty((gt_rel.size, h, w), np.float32)
    for i in range(gt_rel.size):
        _, _, theta, s = gt_path.at(i)
        warped = cv2.warpAffine(
            disp_c,
            _forward(gt_path, i, cc, vc),
            (w, h),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
        gt[i] = warped * np.float32(s * math.cos(theta))
    valid = gt[gt > 0]
    if valid.size == 0:
        raise ConfigError(f"{pair.name}: no valid ground-truth pixel is left in the {w}x{h} view")
    gt_max = float(valid.max())
    if config.max_disparity is not None and gt_max > config.max_disparity:
        raise ConfigError(
            f"max_disparity: the ground truth of {pair.name} reaches {gt_max:.1f} px at {w}x{h}, "
            f"above --max-disparity {config.max_disparity:g}"
        )
    left_ev, right_ev = _concat(chunks["left"]), _concat(chunks["right"])
    fx = pair.fx * kx * float(np.mean(path.scale))
    identity = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    recording = StereoRecording(
        name=config.name,
        height=h,
        width=w,
        left=left_ev,
        right=right_ev,
        rectify_left=identity,
        rectify_right=identity.copy(),
        gt_timestamps_us=gt_rel + t0,
        gt_disparity=gt,
        fx=fx,
        fy=fx,
        cx=vc[0],
        cy=vc[1],
        baseline_m=pair.baseline_m,
        t_offset_us=t0,
    )
    info = PhotoSequenceInfo(
        pair=pair.name,
        layout=config.layout,
        height=h,
        width=w,
        seed=config.seed,
        source_size=pair.size,
        canvas_scale_x=kx,
        gt_min_px=float(valid.min()),
        gt_max_px=gt_max,
        gt_valid_fraction=float(valid.size / gt.size),
        render_rate_hz=rate,
        max_motion_px_per_frame=motion,
        mean_speed_px_s=config.speed,
        rotation_deg=config.rotation_deg,
        zoom=config.zoom,
        max_vertical_error_px=gt_max * math.sin(float(np.max(np.abs(path.theta)))),
        max_disparity=config.max_disparity,
        events_left=left_ev.count,
        events_right=right_ev.count,
    )
    return recording, info


def write_photo_sequences(
    pair: PhotoPair,
    config: PhotoSwayConfig,
    out_dir: str | os.PathLike,
    count: int = 1,
    progress: bool = False,
    on_done: Callable[[PhotoSequenceInfo, Path], Any] | None = None,
) -> list[Path]:
    """Write ``count`` sequences of ``pair`` (seeds ``config.seed + i``, names
    ``<name>_<i:03d>`` when ``count > 1``) in ``config.layout`` under ``out_dir``, each with
    ``out_dir/<name>/photo_pair.json`` (:class:`PhotoSequenceInfo`).

    Returns:
        The written paths (DSEC: sequence folders; MVSEC: ``<name>_data.hdf5`` files).

    Raises:
        ConfigError: bad settings; OutputError: the output is unwritable or a sequence of the
        same name already exists there.
    """
    writer, out, configs = plan_sequences(config, out_dir, config.layout, count)
    paths = []
    for cfg in configs:
        recording, info = simulate_photo_pair(pair, cfg, progress=progress)
        path = writer(recording, out)
        write_json(out / cfg.name / "photo_pair.json", dataclasses.asdict(info))
        paths.append(path)
        if on_done is not None:
            on_done(info, path)
    return paths
