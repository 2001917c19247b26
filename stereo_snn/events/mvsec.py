"""MVSEC stereo: recordings (``*_data.hdf5`` + ``*_gt.hdf5`` + rectification maps), the
indoor_flying split protocol, and a writer for simulated recordings.

Layout (MVSEC):

* ``<name>_data.hdf5``: ``davis/{left,right}/events``, N x 4 float64 rows
  ``[x, y, t_seconds, p in {-1, +1}]``, sorted by t.
* ``<name>_gt.hdf5``: ``davis/left/depth_image_rect`` (N, H, W) metres, NaN = invalid, and
  ``davis/left/depth_image_rect_ts`` (N,) seconds.
* ``<scene>_{left,right}_{x,y}_map.txt``: (H, W) text maps; rectified x = map_x[y, x],
  rectified y = map_y[y, x] (``<scene>`` e.g. ``indoor_flying``, from MVSEC's calibration zips).

Events are returned in the canonical form (t int64 absolute microseconds = round(t_s * 1e6),
p int8 {0, 1}). Windows are read with a bisection on the t column (a few one-row reads) and
one block read of the rows inside the window; the file is never loaded whole.

Disparity/depth conventions: disparity = focal_baseline / depth with focal x baseline per
scene (:data:`FOCAL_BASELINE`); disparity 0 = invalid, depth NaN = invalid. A ground-truth file
written by :func:`write_mvsec_recording` also carries a ``focal_baseline`` attribute, which
takes precedence over the scene table (but not over an explicit ``focal_baseline=``).
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import h5py
import numpy as np
import yaml

from ..atomic import atomic_path, check_readable, ensure_dir
from ..errors import DatasetError, EventFileError
from .files import ReopenOnPickle, bisect_time, check_events_for_writing, check_h5_filters, check_window, h5_errors
from .geometry import depth_to_disparity, disparity_to_depth
from .recording import Events, StereoRecording
from .rectify import check_rectify_map, check_rectify_plausible, rectify_events

__all__ = [
    "FOCAL_BASELINE",
    "MVSECRecording",
    "mvsec_split",
    "load_split_protocol",
    "load_mvsec_maps",
    "write_mvsec_recording",
    "scene_of",
]

#: focal length x baseline (pixel-metres) per MVSEC scene: disparity = FOCAL_BASELINE / depth
FOCAL_BASELINE: dict[str, float] = {
    "indoor_flying": 19.941772,
    "outdoor_day": 19.635287,
    "outdoor_night": 19.651191,
}
CAMERAS = ("left", "right")
SPLIT_FILE = "data/splits/mvsec_indoor_flying.yaml"


def scene_of(name: str) -> str:
    """Scene of a sequence name: ``indoor_flying1`` -> ``indoor_flying``."""
    return re.sub(r"_?\d+$", "", name)


def _check_focal_baseline(value: object, where: str) -> float:
    """``value`` as a positive, finite focal x baseline (pixel-metres), else :class:`DatasetError`."""
    try:
        fb = float(np.asarray(value).reshape(-1)[0]) if np.size(value) == 1 else float("nan")
    except (TypeError, ValueError):
        fb = float("nan")
    if not (np.isfinite(fb) and fb > 0):
        raise DatasetError(f"{where}: focal length x baseline must be a positive number of pixel-metres, got {value!r}")
    return fb


def _seconds_to_us(t_s: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(t_s, dtype=np.float64) * 1e6).astype(np.int64)


def load_mvsec_maps(maps_dir: str | os.PathLike, scene: str, camera: str) -> np.ndarray:
    """Read ``<scene>_<camera>_{x,y}_map.txt`` into a float32 (H, W, 2) rectify map."""
    maps_dir = Path(maps_dir)
    parts = []
    for axis in ("x", "y"):
        path = maps_dir / f"{scene}_{camera}_{axis}_map.txt"
        if not path.is_file():
            raise DatasetError(f"{path}: MVSEC rectification map not found (pass maps_dir=, or rectify=False)")
        check_readable(path, DatasetError, "rectification map")
        try:
            parts.append(np.loadtxt(path, dtype=np.float32, ndmin=2))
        except ValueError as exc:
            raise DatasetError(f"{path}: malformed map, expected rows of numbers ({exc})") from exc
    if parts[0].shape != parts[1].shape:
        raise DatasetError(
            f"{maps_dir}: {scene}_{camera} x and y maps differ in shape ({parts[0].shape} vs {parts[1].shape})"
        )
    where = str(maps_dir / f"{scene}_{camera}_{{x,y}}_map.txt")
    return check_rectify_plausible(check_rectify_map(np.stack(parts, axis=-1), where=where), where)


class MVSECRecording(ReopenOnPickle):
    """One MVSEC sequence: events per camera, rectification, depth ground truth.

    Args:
        data_path: ``<name>_data.hdf5``.
        gt_path: ``<name>_gt.hdf5``; default: that file beside ``data_path`` if it exists.
        maps_dir: folder of the ``<scene>_*_map.txt`` files; default: ``data_path``'s folder.
        scene: scene name for maps and focal x baseline; default: the data file's ``scene``
            attribute (written by :func:`write_mvsec_recording`), else the file name without
            its trailing number (``indoor_flying1`` -> ``indoor_flying``).
        focal_baseline: pixel-metres, overrides the file attribute and the scene table.

    Example (a tiny simulated recording in MVSEC layout, 24x32 pixels, 100 ms):

    >>> import tempfile
    >>> from stereo_snn.events import MVSECRecording
    >>> from stereo_snn.events.simulator import SimConfig, write_sequences
    >>> tmp = tempfile.TemporaryDirectory()
    >>> cfg = SimConfig.from_dict({"name": "indoor_flying1", "height": 24, "width": 32, "duration_ms": 100.0})
    >>> [data_file] = write_sequences(cfg, tmp.name, "mvsec")
    >>> with MVSECRecording(data_file) as rec:
    ...     print(rec.sensor_size, rec.depth_timestamps_us(), rec.disparity(1).shape)
    (24, 32) [     0 100000] (24, 32)
    >>> tmp.cleanup()
    """

    def __init__(
        self,
        data_path: str | os.PathLike,
        gt_path: str | os.PathLike | None = None,
        maps_dir: str | os.PathLike | None = None,
        scene: str | None = None,
        focal_baseline: float | None = None,
    ) -> None:
        self.data_path = Path(data_path)
        if not self.data_path.is_file():
            raise DatasetError(f"{self.data_path}: MVSEC data file not found")
        check_readable(self.data_path, EventFileError, "MVSEC data file")
        stem = self.data_path.stem
        self.name = stem[: -len("_data")] if stem.endswith("_data") else stem
        self.scene = scene or scene_of(self.name)  # refined below from the file's attribute
        if gt_path is None:
            guess = self.data_path.with_name(f"{self.name}_gt.hdf5")
            self.gt_path = guess if guess.is_file() else None
        else:
            self.gt_path = Path(gt_path)
            if not self.gt_path.is_file():
                raise DatasetError(f"{self.gt_path}: MVSEC ground-truth file not found")
        if self.gt_path is not None:
            check_readable(self.gt_path, DatasetError, "MVSEC ground-truth file")
        self.maps_dir = Path(maps_dir) if maps_dir is not None else self.data_path.parent
        self._init_args = (str(data_path), gt_path, maps_dir, scene, focal_baseline)
        self._focal_baseline = (
            None if focal_baseline is None else _check_focal_baseline(focal_baseline, "focal_baseline=")
        )
        self._maps: dict[str, np.ndarray] = {}
        self._gt: h5py.File | None = None
        if not h5py.is_hdf5(self.data_path):
            raise EventFileError(f"{self.data_path}: not an HDF5 file (or truncated)")
        with h5_errors(self.data_path, "opening"):
            self._h5 = h5py.File(self.data_path, "r")
        self._events: dict[str, h5py.Dataset] = {}
        if scene is None and "scene" in self._h5.attrs:
            self.scene = str(self._h5.attrs["scene"])
        try:
            for cam in CAMERAS:
                self._events[cam] = self._check_events(cam)
        except BaseException:
            self.close()
            raise

    # -- events ----------------------------------------------------------------------------
    def _check_events(self, camera: str) -> h5py.Dataset:
        key = f"davis/{camera}/events"
        with h5_errors(self.data_path, f"reading {key}"):
            if key not in self._h5 or not isinstance(self._h5[key], h5py.Dataset):
                raise EventFileError(f"{self.data_path}: missing dataset {key}")
            dset = self._h5[key]
            check_h5_filters(self.data_path, dset)
            if dset.ndim != 2 or dset.shape[1] != 4:
                raise EventFileError(f"{self.data_path}: {key} must be N x 4 [x, y, t, p], has shape {dset.shape}")
            if dset.dtype.kind != "f":
                raise EventFileError(f"{self.data_path}: {key} must be float (t in seconds), has dtype {dset.dtype}")
        return dset

    def _camera(self, camera: str) -> h5py.Dataset:
        if camera not in CAMERAS:
            raise DatasetError(f"{self.data_path}: camera must be 'left' or 'right', got {camera!r}")
        return self._events[camera]

    def _read_t(self, camera: str):
        dset = self._events[camera]

        def read(i0: int, i1: int) -> np.ndarray:
            with h5_errors(self.data_path, f"reading davis/{camera}/events"):
                return _seconds_to_us(dset[i0:i1, 2])

        return read

    def num_events(self, camera: str) -> int:
        """Number of events of ``camera``."""
        return int(self._camera(camera).shape[0])

    def time_range_us(self, camera: str) -> tuple[int, int]:
        """Half-open absolute span ``[t_first, t_last + 1)`` in microseconds."""
        n = self.num_events(camera)
        if n == 0:
            return (0, 0)
        read = self._read_t(camera)
        return int(read(0, 1)[0]), int(read(n - 1, n)[0]) + 1

    def events(
        self, camera: str, t_start_us: int, t_end_us: int, rectify: bool = True, keep_outside: bool = False
    ) -> Events:
        """Events of ``camera`` with ``t_start_us <= t < t_end_us`` (absolute microseconds).

        ``rectify`` uses the scene's map files (float32 coordinates; events that rectify
        outside the frame dropped unless ``keep_outside``); otherwise raw uint16 pixels.
        """
        dset = self._camera(camera)
        t_start_us, t_end_us = int(t_start_us), int(t_end_us)
        check_window(self.data_path, t_start_us, t_end_us, self.time_range_us(camera))
        read = self._read_t(camera)
        n = dset.shape[0]
        i0 = bisect_time(read, n, t_start_us)
        i1 = bisect_time(read, n, t_end_us, lo=i0)
        with h5_errors(self.data_path, f"reading davis/{camera}/events"):
            rows = np.asarray(dset[i0:i1])
        t = _seconds_to_us(rows[:, 2])
        if t.size > 1 and np.any(t[1:] < t[:-1]):
            raise EventFileError(f"{self.data_path}: davis/{camera}/events timestamps are not sorted near event {i0}")
        x, y = rows[:, 0], rows[:, 1]
        h, w = self._size_or_none() or (65536, 65536)
        if x.size and (x.min() < 0 or y.min() < 0 or x.max() >= w or y.max() >= h):
            raise EventFileError(f"{self.data_path}: davis/{camera}/events has coordinates outside the {w}x{h} sensor")
        ev = Events(x.astype(np.uint16), y.astype(np.uint16), t, (rows[:, 3] > 0).astype(np.int8))
        if not rectify:
            return ev
        return rectify_events(ev, self.rectify_map(camera), keep_outside=keep_outside)

    def rectify_map(self, camera: str) -> np.ndarray:
        """float32 (H, W, 2) map from ``<scene>_<camera>_{x,y}_map.txt`` (cached)."""
        self._camera(camera)
        if camera not in self._maps:
            rmap = load_mvsec_maps(self.maps_dir, self.scene, camera)
            if self.gt_path is not None:
                h, w = self._gt_dataset("depth_image_rect").shape[1:]
                if rmap.shape[:2] != (h, w):
                    raise DatasetError(
                        f"{self.maps_dir / f'{self.scene}_{camera}_x_map.txt'}: rectification map is "
                        f"{rmap.shape[0]}x{rmap.shape[1]} (HxW) but the depth maps of {self.gt_path.name} "
                        f"are {h}x{w}"
                    )
            self._maps[camera] = rmap
        return self._maps[camera]

    def _size_or_none(self) -> tuple[int, int] | None:
        if self.gt_path is not None:
            shape = self._gt_dataset("depth_image_rect").shape
            return int(shape[1]), int(shape[2])
        if (self.maps_dir / f"{self.scene}_left_x_map.txt").is_file():
            h, w = self.rectify_map("left").shape[:2]
            return int(h), int(w)
        return None

    @property
    def sensor_size(self) -> tuple[int, int]:
        """(height, width) in pixels: from the depth ground truth, else the rectification maps."""
        size = self._size_or_none()
        if size is None:
            raise DatasetError(f"{self.data_path}: sensor size unknown (no ground truth and no rectification maps)")
        return size

    # -- ground truth ----------------------------------------------------------------------
    @property
    def has_ground_truth(self) -> bool:
        return self.gt_path is not None

    def _gt_dataset(self, name: str) -> h5py.Dataset:
        if self.gt_path is None:
            raise DatasetError(f"{self.data_path}: no ground truth ({self.name}_gt.hdf5 not found; pass gt_path=)")
        if self._gt is None:
            if not h5py.is_hdf5(self.gt_path):
                raise DatasetError(f"{self.gt_path}: not an HDF5 file (or truncated)")
            with h5_errors(self.gt_path, "opening", error=DatasetError):
                self._gt = h5py.File(self.gt_path, "r")
        key = f"davis/left/{name}"
        if key not in self._gt:
            raise DatasetError(f"{self.gt_path}: missing dataset {key}")
        dset = self._gt[key]
        if name == "depth_image_rect" and (dset.ndim != 3 or dset.dtype.kind != "f"):
            raise DatasetError(f"{self.gt_path}: {key} must be float (N, H, W), has {dset.dtype} {dset.shape}")
        return dset

    def depth_timestamps_us(self) -> np.ndarray:
        """int64 (N,) absolute microseconds of the left depth maps."""
        ts = self._gt_dataset("depth_image_rect_ts")
        with h5_errors(self.gt_path, "reading depth_image_rect_ts", error=DatasetError):
            out = _seconds_to_us(ts[()]).reshape(-1)
        if out.size != self._gt_dataset("depth_image_rect").shape[0]:
            raise DatasetError(
                f"{self.gt_path}: {out.size} depth timestamps for {self._gt_dataset('depth_image_rect').shape[0]} depth maps"
            )
        if out.size > 1 and np.any(np.diff(out) <= 0):
            bad = int(np.argmax(np.diff(out) <= 0))
            raise DatasetError(
                f"{self.gt_path}: davis/left/depth_image_rect_ts is not strictly increasing "
                f"(row {bad + 1} at {out[bad + 1]} us follows {out[bad]} us)"
            )
        return out

    def num_depth_frames(self) -> int:
        return int(self._gt_dataset("depth_image_rect").shape[0])

    def depth(self, index: int) -> np.ndarray:
        """Left rectified depth ``index``: float32 (H, W) metres, NaN = invalid (0 and inf too)."""
        dset = self._gt_dataset("depth_image_rect")
        if not -dset.shape[0] <= index < dset.shape[0]:
            raise DatasetError(f"{self.gt_path}: depth index {index} out of range 0..{dset.shape[0] - 1}")
        with h5_errors(self.gt_path, "reading depth_image_rect", error=DatasetError):
            d = np.asarray(dset[index], dtype=np.float32)
        d[~np.isfinite(d) | (d <= 0)] = np.nan
        return d

    @property
    def focal_baseline(self) -> float:
        """fx * baseline (pixel-metres): explicit, else the gt file's attribute, else the scene table."""
        if self._focal_baseline is not None:
            return self._focal_baseline
        if self.gt_path is not None:
            self._gt_dataset("depth_image_rect")
            assert self._gt is not None
            if "focal_baseline" in self._gt.attrs:
                return _check_focal_baseline(
                    self._gt.attrs["focal_baseline"], f"{self.gt_path}: attribute focal_baseline"
                )
        if self.scene in FOCAL_BASELINE:
            return FOCAL_BASELINE[self.scene]
        if self.gt_path is None:
            raise DatasetError(
                f"{self.data_path}: no ground truth ({self.name}_gt.hdf5 not found beside it), so the focal length "
                f"x baseline is unknown for scene {self.scene!r}; add the _gt.hdf5 file or pass focal_baseline="
            )
        raise DatasetError(
            f"{self.data_path}: unknown scene {self.scene!r} (known: {', '.join(FOCAL_BASELINE)}); pass focal_baseline="
        )

    def disparity(self, index: int) -> np.ndarray:
        """Left disparity ``index`` in pixels (float32), 0 = invalid."""
        return depth_to_disparity(self.depth(index), self.focal_baseline)

    def depth_to_disparity(self, depth: np.ndarray) -> np.ndarray:
        """Disparity (pixels, 0 invalid) from depth (metres) with this scene's focal x baseline."""
        return depth_to_disparity(depth, self.focal_baseline)

    def disparity_to_depth(self, disparity: np.ndarray) -> np.ndarray:
        """Depth (metres, NaN invalid) from disparity (pixels) with this scene's focal x baseline."""
        return disparity_to_depth(disparity, self.focal_baseline)

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the files (idempotent)."""
        for f in (getattr(self, "_h5", None), self._gt):
            if f is not None:
                f.close()
        self._h5 = None
        self._gt = None

    def __repr__(self) -> str:
        return f"MVSECRecording({str(self.data_path)!r}, scene={self.scene!r})"


# --------------------------------------------------------------------------------------------
# split protocol


def load_split_protocol(path: str | os.PathLike | None = None) -> dict:
    """The indoor_flying protocol (package data ``stereo_snn/data/splits/mvsec_indoor_flying.yaml``)."""
    try:
        if path is None:
            text = resources.files("stereo_snn").joinpath(SPLIT_FILE).read_text(encoding="utf-8")
            where = f"stereo_snn/{SPLIT_FILE}"
        else:
            where = str(path)
            text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"{where}: cannot read the MVSEC split protocol ({exc})") from exc
    for key in ("sequences", "train_frames", "test_frames", "validation_frames", "default_seed"):
        if not isinstance(data, dict) or key not in data:
            raise DatasetError(f"{where}: missing key {key!r}")
    return data


def mvsec_split(split: int, seed: int | None = None, protocol: dict | None = None) -> dict[str, list[tuple[str, int]]]:
    """Frames of indoor_flying split ``split`` (1, 2 or 3) as ``(sequence, frame)`` pairs.

    Returns ``{"train": ..., "val": ..., "test": ...}``: train = the train ranges of the other
    two sequences; val = ``validation_frames`` of the test range picked by
    ``np.random.default_rng(seed).permutation`` (seed defaults to the file's ``default_seed``);
    test = the remaining test frames. Each list is sorted.
    """
    proto = protocol if protocol is not None else load_split_protocol()
    seqs = {int(k): str(v) for k, v in proto["sequences"].items()}
    if split not in seqs:
        raise DatasetError(f"MVSEC split must be one of {sorted(seqs)}, got {split!r}")
    seed = int(proto["default_seed"]) if seed is None else int(seed)

    def frames(kind: str, k: int) -> list[tuple[str, int]]:
        start, end = (int(v) for v in proto[kind][k])
        return [(seqs[k], f) for f in range(start, end)]

    train = [item for k in sorted(seqs) if k != split for item in frames("train_frames", k)]
    test_all = frames("test_frames", split)
    n_val = int(proto["validation_frames"])
    if not 0 <= n_val <= len(test_all):
        raise DatasetError(f"MVSEC protocol: validation_frames={n_val} exceeds the {len(test_all)} test frames")
    order = np.random.default_rng(seed).permutation(len(test_all))
    val_idx = set(order[:n_val].tolist())
    val = [test_all[i] for i in sorted(val_idx)]
    test = [item for i, item in enumerate(test_all) if i not in val_idx]
    return {"train": train, "val": val, "test": test}


# --------------------------------------------------------------------------------------------
# writer


def write_mvsec_recording(recording: StereoRecording, out_dir: str | os.PathLike, scene_name: str) -> Path:
    """Write ``recording`` in MVSEC layout into ``out_dir``; returns the ``_data.hdf5`` path.

    Files: ``<name>_data.hdf5`` (events N x 4 float64 [x, y, t_s, +/-1] per camera),
    ``<name>_gt.hdf5`` (left ``depth_image_rect`` = focal_baseline / disparity, NaN invalid, and
    ``depth_image_rect_ts`` in seconds; attribute ``focal_baseline``), and
    ``<scene_name>_{left,right}_{x,y}_map.txt`` from the recording's rectify maps. The data
    file carries a ``scene`` attribute so :class:`MVSECRecording` finds the maps.
    """
    out = ensure_dir(out_dir)
    size = (int(recording.height), int(recording.width))
    data_path = out / f"{recording.name}_data.hdf5"
    with atomic_path(data_path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["scene"] = scene_name
            for cam, ev in (("left", recording.left), ("right", recording.right)):
                check_events_for_writing(data_path, ev, size, error=DatasetError)
                rows = np.stack(
                    [
                        np.asarray(ev.x, np.float64),
                        np.asarray(ev.y, np.float64),
                        np.asarray(ev.t, np.int64) / 1e6,
                        np.where(np.asarray(ev.p) > 0, 1.0, -1.0),
                    ],
                    axis=1,
                )
                f.create_dataset(
                    f"davis/{cam}/events", data=rows.reshape(-1, 4), chunks=(min(max(rows.shape[0], 1), 1 << 15), 4)
                )
    gt = np.asarray(recording.gt_disparity, dtype=np.float32)
    ts = np.asarray(recording.gt_timestamps_us, dtype=np.int64).reshape(-1)
    if gt.ndim != 3 or gt.shape[0] != ts.size or gt.shape[1:] != size:
        raise DatasetError(f"{out}: gt_disparity must be (N, {size[0]}, {size[1]}) with N = {ts.size}, got {gt.shape}")
    with atomic_path(out / f"{recording.name}_gt.hdf5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("davis/left/depth_image_rect", data=disparity_to_depth(gt, recording.focal_baseline))
            f.create_dataset("davis/left/depth_image_rect_ts", data=ts / 1e6)
            f.attrs["focal_baseline"] = recording.focal_baseline
    for cam, rmap in (("left", recording.rectify_left), ("right", recording.rectify_right)):
        rmap = check_rectify_map(rmap, where=f"{recording.name} rectify_{cam}")
        for axis, channel in (("x", 0), ("y", 1)):
            with atomic_path(out / f"{scene_name}_{cam}_{axis}_map.txt") as tmp:
                np.savetxt(tmp, rmap[..., channel], fmt="%.9g")
    return data_path
