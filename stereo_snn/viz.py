"""Pictures: colour maps, event frames, voxel-grid panels, disparity/depth/error figures,
and animations. Headless (matplotlib's Agg backend is selected inside the functions that
draw figures); every file is written atomically (``stereo_snn.atomic.atomic_path``).

Conventions:
- Images are uint8 BGR (OpenCV order) of shape (H, W, 3).
- Disparities and errors are pixels, depths metres.
- Pixels without ground truth / without a value are drawn in ``INVALID_BGR`` (grey), so
  they never look like a genuine 0 (black in the ``magma`` map).
- Events: ON (brightness increase) red, OFF blue, on white, as in the DSEC and MVSEC papers.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import cv2
import numpy as np

from .atomic import atomic_path
from .errors import ConfigError, DatasetError, OutputError, StereoSNNError
from .events.geometry import disparity_to_depth
from .images import as_image, dsec_valid_mask, to_numpy
from .windows import read_windows

if TYPE_CHECKING:  # types only: the stereo layer imports this module
    from .stereo.data import Entry, StereoSource

__all__ = [
    "COLORMAPS",
    "INVALID_BGR",
    "colorize",
    "events_image",
    "depth_colormap",
    "error_map",
    "panel_image",
    "voxel_figure",
    "disparity_figure",
    "save_image",
    "save_animation",
    "VISUALIZE_ITEMS",
    "VisualizeReport",
    "visualize_sequence",
]

#: colour map names accepted by :func:`colorize` -> OpenCV colour map ids
COLORMAPS: dict[str, int] = {
    "magma": cv2.COLORMAP_MAGMA,
    "inferno": cv2.COLORMAP_INFERNO,
    "plasma": cv2.COLORMAP_PLASMA,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "turbo": cv2.COLORMAP_TURBO,
    "jet": cv2.COLORMAP_JET,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
    "twilight": cv2.COLORMAP_TWILIGHT,
}
#: colour of pixels without a value (BGR)
INVALID_BGR = (128, 128, 128)
_INVALID_RGB01 = tuple(c / 255.0 for c in INVALID_BGR[::-1])
_ON_BGR = np.array([40, 40, 215], np.float64)  # red
_OFF_BGR = np.array([200, 90, 30], np.float64)  # blue


def _finite_range(values: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    """Fill a missing vmin/vmax from the finite values (0/1 if there are none)."""
    finite = values[np.isfinite(values)]
    lo = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def colorize(
    array: Any,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "magma",
    invalid_mask: np.ndarray | None = None,
    reverse: bool = False,
) -> np.ndarray:
    """Colour a 2-D array with an OpenCV colour map.

    Args:
        array: (H, W) values (numpy or torch); non-finite values count as invalid.
        vmin, vmax: values mapped to the two ends of the map (default: finite min/max);
            values outside are clipped.
        cmap: one of :data:`COLORMAPS`.
        invalid_mask: bool (H, W), True where there is no value; drawn in ``INVALID_BGR``.
        reverse: flip the map (high values dark).

    Returns:
        uint8 BGR (H, W, 3).
    """
    if cmap not in COLORMAPS:
        raise ConfigError(f"unknown colour map {cmap!r}; choose one of {', '.join(COLORMAPS)}")
    a = _as_2d(array, "colorize input")
    invalid = ~np.isfinite(a)
    if invalid_mask is not None:
        invalid |= np.asarray(invalid_mask, dtype=bool)
    lo, hi = _finite_range(np.where(invalid, np.nan, a), vmin, vmax)
    scaled = np.clip((np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo), 0.0, 1.0)
    if reverse:
        scaled = 1.0 - scaled
    img = cv2.applyColorMap(np.rint(scaled * 255).astype(np.uint8), COLORMAPS[cmap])
    img[invalid] = INVALID_BGR
    return img


def _as_2d(array: Any, name: str) -> np.ndarray:
    return as_image(array, name, error=ConfigError, what="a 2-D (H, W) array")


def events_image(events: Any, height: int, width: int, saturation: float = 95.0) -> np.ndarray:
    """Event frame: ON-dominated pixels red, OFF-dominated blue, on white.

    The colour strength grows with the pixel's net polarity count, saturating at the
    ``saturation``-th percentile of the non-empty pixels; pixels with equal ON and OFF
    counts are drawn dark grey. Coordinates are rounded to the nearest pixel (as in
    :func:`stereo_snn.events.histogram`); events outside the frame are dropped.

    Returns:
        uint8 BGR (height, width, 3).
    """
    from .events.represent import histogram  # numba: only when drawing

    if int(height) < 1 or int(width) < 1:
        raise ConfigError(f"events_image: size must be positive, got height={height}, width={width}")
    off, on = histogram(events[0], events[1], events[2], events[3], int(height), int(width)).reshape(2, -1)
    net = (on - off).astype(np.float64)
    hits = (on + off) > 0
    n_pix = net.size
    mag = np.abs(net)
    scale = float(np.percentile(mag[mag > 0], saturation)) if np.any(mag > 0) else 1.0
    alpha = np.clip(0.35 + 0.65 * mag / max(scale, 1.0), 0.0, 1.0)[:, None]
    colour = np.where((net > 0)[:, None], _ON_BGR, _OFF_BGR)
    img = np.full((n_pix, 3), 255.0)
    img = np.where(hits[:, None], (1 - alpha) * 255.0 + alpha * colour, img)
    img[hits & (net == 0)] = 80.0
    return np.rint(img).astype(np.uint8).reshape(int(height), int(width), 3)


def depth_colormap(
    depth_m: Any,
    min_depth: float | None = None,
    max_depth: float | None = None,
    cmap: str = "magma",
) -> np.ndarray:
    """Colour a depth map (metres): near bright, far dark; non-finite or <= 0 is invalid.

    ``min_depth``/``max_depth`` (metres) default to the 2nd/98th percentiles of the
    valid depths, so a few far outliers do not wash the picture out.
    """
    d = _as_2d(depth_m, "depth map")
    invalid = ~np.isfinite(d) | (d <= 0)
    valid = d[~invalid]
    if valid.size:
        min_depth = float(np.percentile(valid, 2)) if min_depth is None else min_depth
        max_depth = float(np.percentile(valid, 98)) if max_depth is None else max_depth
    return colorize(d, min_depth, max_depth, cmap=cmap, invalid_mask=invalid, reverse=True)


def error_map(pred: Any, gt: Any, max_error: float = 5.0, cmap: str = "inferno") -> tuple[np.ndarray, np.ndarray]:
    """Absolute disparity error |pred - gt| (pixels) where the ground truth is valid
    (finite and > 0), NaN elsewhere, and its colour picture (0 to ``max_error`` px).

    Returns:
        (float32 (H, W) error, uint8 BGR (H, W, 3)).
    """

    p = _as_2d(pred, "prediction")
    g = _as_2d(gt, "ground truth")
    if p.shape != g.shape:
        raise ConfigError(f"prediction shape {p.shape} does not match ground-truth shape {g.shape}")
    valid = dsec_valid_mask(g)
    err = np.where(valid, np.abs(p - g), np.nan).astype(np.float32)
    return err, colorize(err, 0.0, max_error, cmap=cmap)


def panel_image(
    images: Sequence[np.ndarray], labels: Sequence[str] | None = None, gap: int = 4, min_height: int = 0
) -> np.ndarray:
    """Tile images of equal height side by side on white, each with a caption above it
    (OpenCV drawing: fast enough for every frame of an animation).

    Args:
        images: uint8 BGR (H, W, 3) or grey (H, W) images, all the same height.
        labels: one caption per image (or None for none).
        gap: white pixels between panels.
        min_height: enlarge small images by a whole factor (nearest neighbour, pixels
            stay sharp) until they are at least this many pixels high.
    Returns:
        uint8 BGR image.
    """
    if not images:
        raise ConfigError("panel_image: no images given")
    tiles = [cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else im for im in images]
    h = tiles[0].shape[0]
    if any(t.shape[0] != h for t in tiles):
        raise ConfigError(f"panel_image: all images must share a height, got {[t.shape[0] for t in tiles]}")
    zoom = max(1, -(-int(min_height) // h))
    if zoom > 1:
        tiles = [cv2.resize(t, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST) for t in tiles]
        h *= zoom
    scale = max(0.35, h / 500.0)
    thick = max(1, int(round(scale * 1.5)))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    caption_h = th + base + 2 * gap if labels else 0
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    out = np.full((h + caption_h, width, 3), 255, np.uint8)
    x = 0
    for i, tile in enumerate(tiles):
        out[caption_h:, x : x + tile.shape[1]] = tile
        if labels:
            cv2.putText(
                out, str(labels[i]), (x + 2, gap + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA
            )
        x += tile.shape[1] + gap
    return out


def _pyplot():
    import matplotlib

    if "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig: Any, path: str | os.PathLike, dpi: int) -> Path:
    plt = _pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", facecolor="white")
    except ValueError as exc:  # matplotlib: unknown format
        raise OutputError(f"{path}: cannot save figure ({exc})") from exc
    finally:
        plt.close(fig)
    return Path(path)


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=_INVALID_RGB01)


def voxel_figure(voxel: Any, path: str | os.PathLike, title: str | None = None, dpi: int = 150) -> Path:
    """Draw each bin of a voxel grid [B, H, W] as a panel with one shared, symmetric
    diverging colour bar (red positive / ON, blue negative / OFF); saved atomically.

    Returns the written path.
    """

    v = to_numpy(voxel)
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[0] < 1:
        raise ConfigError(f"voxel_figure: expected a [bins, H, W] array, got shape {tuple(v.shape)}")
    bins, h, w = v.shape
    nonzero = np.abs(v[v != 0])
    vmax = float(np.percentile(nonzero, 99)) if nonzero.size else 1.0
    plt = _pyplot()
    cols = min(bins, 5)
    rows = -(-bins // cols)
    panel_w = 2.6
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel_w * cols + 0.8, panel_w * h / w * rows + 0.5), squeeze=False, layout="constrained"
    )
    im = None
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < bins:
            im = ax.imshow(v[k], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_title(f"bin {k}", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label="voxel value")
    if title:
        fig.suptitle(title, fontsize=11)
    return _save_figure(fig, path, dpi)


def disparity_figure(
    pred: Any | None,
    gt: Any | None,
    events_img: np.ndarray | None,
    path: str | os.PathLike,
    max_disp: float,
    depth: Any | None = None,
    max_error: float = 5.0,
    title: str | None = None,
    dpi: int = 150,
    depth_label: str = "Depth",
) -> Path:
    """Side-by-side figure: events | prediction | ground truth | error (| depth), with
    colour bars in pixels (disparity 0..``max_disp``, error 0..``max_error``) and metres.

    Args:
        pred: predicted disparity (H, W), pixels; None omits the prediction and error panels.
        gt: ground-truth disparity (H, W), pixels, 0/NaN = invalid; None omits the ground
            truth and error panels.
        events_img: BGR event frame (e.g. :func:`events_image`) or None to omit it.
        path: output file (.png, .pdf, .svg), written atomically.
        max_disp: upper end of the disparity colour scale, pixels.
        depth: optional predicted depth (H, W), metres, drawn as the last panel.
        max_error: upper end of the error colour scale, pixels.
        title: optional figure title (e.g. sequence and timestamp).
        depth_label: title of the depth panel (say whose depth it is).
    Returns:
        the written path.
    """

    if not max_disp > 0:
        raise ConfigError(f"max_disp must be positive pixels, got {max_disp}")
    p = None if pred is None else _as_2d(pred, "prediction")
    g = None if gt is None else _as_2d(gt, "ground truth")
    if p is None and g is None:
        raise ConfigError("disparity_figure: give a prediction, a ground truth, or both")
    if p is not None and g is not None and g.shape != p.shape:
        raise ConfigError(f"prediction shape {p.shape} does not match ground-truth shape {g.shape}")
    panels: list[tuple[str, Any, dict[str, Any], str | None]] = []
    if events_img is not None:
        panels.append(("Events", np.asarray(events_img)[..., ::-1], {}, None))
    disp_kw = {"cmap": _cmap("magma"), "vmin": 0.0, "vmax": float(max_disp)}
    if p is not None:
        panels.append(("Prediction", p, disp_kw, "disparity [px]"))
    if g is not None:
        valid = dsec_valid_mask(g)
        panels.append(("Ground truth", np.ma.masked_where(~valid, g), disp_kw, "disparity [px]"))
        if p is not None:
            err = np.ma.masked_where(~valid, np.abs(p - g))
            panels.append(
                ("|Error|", err, {"cmap": _cmap("inferno"), "vmin": 0.0, "vmax": float(max_error)}, "error [px]")
            )
    if depth is not None:
        d = _as_2d(depth, "depth")
        ok = np.isfinite(d) & (d > 0)
        lo, hi = np.percentile(d[ok], [2, 98]) if ok.any() else (0.0, 1.0)
        panels.append(
            (
                depth_label,
                np.ma.masked_where(~ok, d),
                {"cmap": _cmap("magma_r"), "vmin": float(lo), "vmax": float(max(hi, lo + 1e-6))},
                "depth [m]",
            )
        )
    plt = _pyplot()
    h, w = (p if p is not None else g).shape  # type: ignore[union-attr]
    panel_w = 3.2
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(panel_w * len(panels), panel_w * h / w + 1.0 + 0.3 * bool(title)),
        squeeze=False,
        layout="compressed",
    )
    for ax, (name, data, kw, bar) in zip(axes[0], panels):
        im = ax.imshow(data, interpolation="nearest", **kw)
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
        if bar:
            fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.06, pad=0.03, label=bar)
        else:  # keep the events panel the same height as those with a colour bar
            cax = fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.06, pad=0.03)
            cax.ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save_figure(fig, path, dpi)


def save_image(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write an image (uint8 BGR/grey, or uint16 for 16-bit PNG) atomically with OpenCV;
    the format follows the extension. Raises :class:`OutputError` if it cannot be written."""
    target = Path(path)
    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or arr.dtype not in (np.uint8, np.uint16):
        raise OutputError(f"{target}: expected a uint8/uint16 (H, W[, C]) image, got {arr.dtype} {arr.shape}")
    with atomic_path(target) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), arr)
        except cv2.error as exc:
            raise OutputError(f"{target}: cannot write image ({exc.err or exc})") from exc
        if not ok:
            raise OutputError(f"{target}: OpenCV could not write this image format")
    return target


def save_animation(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 10.0) -> Path:
    """Write frames (uint8 BGR or grey, all one size) as an animation, atomically.

    ``.mp4``: OpenCV VideoWriter with the ``mp4v`` codec; ``.gif``: Pillow, looping.
    Frames are consumed one at a time for mp4 (bounded memory); a gif needs them all.
    Returns the written path.
    """
    target = Path(path)
    ext = target.suffix.lower()
    if ext not in (".mp4", ".gif"):
        raise ConfigError(f"{target}: animation must end in .mp4 or .gif")
    if not fps > 0:
        raise ConfigError(f"animation fps must be positive, got {fps}")
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ConfigError(f"{target}: no frames to animate")

    def bgr(frame: np.ndarray, index: int) -> np.ndarray:
        f = np.asarray(frame)
        f = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f
        if f.dtype != np.uint8 or f.shape != first_shape:
            raise ConfigError(f"{target}: frame {index} is {f.dtype} {f.shape}, expected uint8 {first_shape}")
        return f

    first_shape = (np.asarray(first).shape[0], np.asarray(first).shape[1], 3)
    h, w = first_shape[:2]
    with atomic_path(target) as tmp:
        if ext == ".mp4":
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
            if not writer.isOpened():
                raise OutputError(f"{target}: OpenCV cannot open an mp4v video writer here")
            try:
                writer.write(bgr(first, 0))
                for i, frame in enumerate(it, start=1):
                    writer.write(bgr(frame, i))
            finally:
                writer.release()
        else:
            from PIL import Image

            images = [Image.fromarray(bgr(f, i)[..., ::-1]) for i, f in enumerate([first, *it])]
            images[0].save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=images[1:],
                duration=max(20, int(round(1000.0 / fps))),
                loop=0,
            )
    return target


# ------------------------------------------------------------------------- whole sequences
#: animation frames of smaller recordings are enlarged to at least this height (pixels)
ANIMATION_MIN_HEIGHT = 240
#: what :func:`visualize_sequence` can draw per window
VISUALIZE_ITEMS = ("events", "voxel", "disparity", "depth", "error", "panel")


@dataclass
class VisualizeReport:
    """What :func:`visualize_sequence` wrote, and the windows it skipped (with the reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    animation: Path | None = None
    max_disp: float | None = None


def _auto_max_disp(maps: Iterable[np.ndarray | None]) -> float:
    """Colour-scale top for a whole sequence: 105 % of the largest valid disparity in
    ``maps``, rounded up to a multiple of 8 px (64 px when there is none)."""
    tops = [
        float(np.max(m[np.isfinite(m) & (m > 0)])) for m in maps if m is not None and np.any(np.isfinite(m) & (m > 0))
    ]
    return float(8 * max(1, int(np.ceil(1.05 * max(tops) / 8)))) if tops else 64.0


def _prediction_path(prediction_dir: Path, source_name: str, index: int) -> Path:
    """``DIR/<seq>/<index>.png`` (the ``stereo-snn infer`` layout) or ``DIR/<index>.png``."""
    nested = prediction_dir / source_name / f"{index:06d}.png"
    return nested if nested.is_file() else prediction_dir / f"{index:06d}.png"


def visualize_sequence(
    source: StereoSource,
    out_dir: str | os.PathLike,
    entries: Sequence[Entry] | None = None,
    what: Sequence[str] = ("events", "disparity", "panel"),
    window_us: int = 50_000,
    prediction_dir: str | os.PathLike | None = None,
    animation: str | os.PathLike | None = None,
    fps: float = 5.0,
    max_disp: float | None = None,
    bins: int = 10,
    progress: bool = True,
) -> VisualizeReport:
    """Draw the pictures of a recording, window by window, and optionally an animation.

    Args:
        source: a stereo source (``stereo_snn.stereo.data.StereoSource``: ``name``,
            ``height``, ``width``, ``entries()``, ``window(entry, window_us)``,
            ``disparity(entry)``, ``focal_baseline``, optionally ``depth(disparity)``).
        out_dir: output root; pictures go to ``OUT/<item>/<6-digit entry index>.png``
            (``disparity_gt/`` for the ground truth, ``disparity/`` for the prediction).
        entries: windows to draw (default: ``source.entries()``); each window is the
            ``window_us`` microseconds before the entry's time.
        what: any of :data:`VISUALIZE_ITEMS`. ``events``: ON/OFF event frame of the left
            camera; ``voxel``: the left voxel grid (``bins`` panels); ``disparity``: colour
            maps of ground truth and prediction; ``depth``: depth colour map (prediction,
            else ground truth; needs a calibrated source); ``error``: |prediction - ground
            truth| map; ``panel``: the side-by-side figure with colour bars.
        prediction_dir: ``stereo-snn infer`` output (``DIR/<seq>/<index>.png`` or
            ``DIR/<index>.png``, uint16 disparity x 256); windows without a file are drawn
            without prediction.
        animation: ``.gif`` or ``.mp4`` path: one tiled frame per window
            (events | prediction | ground truth | error, whichever exist).
        fps: animation frame rate.
        max_disp: top of the disparity colour scale, pixels (default: 105 % of the largest
            ground-truth or predicted disparity in up to 16 windows spread over the
            sequence, rounded up to a multiple of 8; 64 without any).
        bins: voxel-grid bins for ``voxel``.
        progress: show a tqdm progress bar.

    Returns:
        :class:`VisualizeReport`. A window that cannot be read (outside the recording,
        unreadable) is skipped with its reason; the others go on.

    Raises:
        ConfigError: unknown items, ``error`` without predictions, ``depth`` for a source
            without calibration, no windows; DatasetError: a missing prediction folder.
    """
    from tqdm import tqdm

    from .events.dsec import read_disparity_png  # h5py, hdf5plugin: only when drawing
    from .events.represent import voxel_grid  # numba

    items = list(dict.fromkeys(what))
    unknown = [w for w in items if w not in VISUALIZE_ITEMS]
    if unknown or not items:
        raise ConfigError(f"--what: unknown item(s) {unknown}; choose from {', '.join(VISUALIZE_ITEMS)}")
    pred_root = Path(prediction_dir) if prediction_dir is not None else None
    if pred_root is not None and not pred_root.is_dir():
        raise DatasetError(f"{pred_root}: prediction folder not found (expected `stereo-snn infer` output)")
    if "error" in items and pred_root is None:
        raise ConfigError("--what error needs predictions to compare: give --prediction DIR")
    depth_fn = getattr(source, "depth", None) if "depth" in items else None
    if "depth" in items and depth_fn is None:
        focal_baseline = getattr(source, "focal_baseline", None)
        if focal_baseline is None:
            raise ConfigError(
                f"{source.name}: --what depth needs a calibrated source (DSEC or MVSEC), this one has none"
            )

        def depth_fn(d: np.ndarray) -> np.ndarray:
            return np.nan_to_num(disparity_to_depth(d, float(focal_baseline)), nan=0.0)

    todo = list(source.entries() if entries is None else entries)
    if not todo:
        raise ConfigError(f"{source.name}: no windows to draw (no ground-truth/test entries; give --timestamps)")
    if not bins >= 1:
        raise ConfigError(f"--bins must be >= 1, got {bins}")
    out = Path(out_dir)
    report = VisualizeReport()
    h, w = int(source.height), int(source.width)

    def prediction(entry: Entry) -> np.ndarray | None:
        if pred_root is None:
            return None
        path = _prediction_path(pred_root, source.name, int(entry.index))
        if not path.is_file():
            return None
        pred = read_disparity_png(path)
        if pred.shape != (h, w):
            raise DatasetError(f"{path}: prediction is {pred.shape[0]}x{pred.shape[1]} (HxW), the recording is {h}x{w}")
        return pred

    if max_disp is None:  # one colour scale for the whole sequence, from up to 16 sampled windows
        sample = [todo[i] for i in sorted({int(k) for k in np.linspace(0, len(todo) - 1, min(len(todo), 16))})]
        maps: list[np.ndarray | None] = []
        for entry in sample:
            try:
                maps += [source.disparity(entry), prediction(entry)]
            except StereoSNNError:
                continue  # reported when the window itself is drawn
        max_disp = _auto_max_disp(maps)

    layout: list[str] = []  # animation tiles, in order

    def frames() -> Iterable[np.ndarray]:
        def read(entry: Entry) -> tuple[Any, Any, Any, Any]:
            left, _right = source.window(entry, int(window_us))
            gt = source.disparity(entry)
            pred = prediction(entry)
            basis = pred if pred is not None else gt
            depth = None if depth_fn is None or basis is None else np.asarray(depth_fn(basis), np.float32)
            return left, gt, pred, depth

        bar = tqdm(todo, desc=f"visualize {source.name}", unit="win", disable=not progress)
        for window in read_windows(bar, read, report.skipped):
            entry, (left, gt, pred, depth) = window.entry, window.value
            name = f"{int(entry.index):06d}.png"
            ev_img = events_image(left, h, w)
            disp_imgs = {
                k: colorize(v, 0.0, max_disp, invalid_mask=v <= 0)
                for k, v in (("Prediction", pred), ("Ground truth", gt))
                if v is not None
            }
            err = error_map(pred, gt)[1] if pred is not None and gt is not None else None
            if "events" in items:
                report.written.append(save_image(out / "events" / name, ev_img))
            if "voxel" in items:
                vox = voxel_grid(left.x, left.y, left.t, left.p, bins, h, w)
                report.written.append(
                    voxel_figure(vox, out / "voxel" / name, title=f"{source.name} #{int(entry.index)}: left voxel grid")
                )
            if "disparity" in items:
                for key, folder in (("Prediction", "disparity"), ("Ground truth", "disparity_gt")):
                    if key in disp_imgs:
                        report.written.append(save_image(out / folder / name, disp_imgs[key]))
            if depth is not None:
                report.written.append(save_image(out / "depth" / name, depth_colormap(depth)))
            if "error" in items and err is not None:
                report.written.append(save_image(out / "error" / name, err))
            if "panel" in items and (pred is not None or gt is not None):
                report.written.append(
                    disparity_figure(
                        pred,
                        gt,
                        ev_img,
                        out / "panel" / name,
                        max_disp,
                        depth=depth,
                        depth_label="Depth (prediction)" if pred is not None else "Depth (ground truth)",
                        title=f"{source.name}  #{int(entry.index)}  t = {int(entry.t_us)} us",
                    )
                )
            tiles = {"Events": ev_img, **disp_imgs, **({"|Error|": err} if err is not None else {})}
            if not layout:  # fixed by the first window; later gaps are drawn as blank tiles
                layout.extend(
                    k
                    for k in ("Events", "Prediction", "Ground truth", "|Error|")
                    if k in tiles or (pred_root is not None and k in ("Prediction", "|Error|"))
                )
            blank = np.full((h, w, 3), INVALID_BGR, np.uint8)
            yield panel_image([tiles.get(k, blank) for k in layout], layout, min_height=ANIMATION_MIN_HEIGHT)

    stream = iter(frames())
    first = next(stream, None)  # None: every window was skipped, nothing to animate
    if animation is not None and first is not None:
        report.animation = save_animation(itertools.chain([first], stream), animation, fps=fps)
    else:
        for _ in stream:
            pass
    report.max_disp = max_disp
    return report
