"""DSEC stereo layout: sequence and split readers, a sequence writer, benchmark submissions.

Sequence folder (DSEC)::

    <seq>/events/{left,right}/events.h5        raw events (Blosc/ZSTD, ms_to_idx, t_offset)
    <seq>/events/{left,right}/rectify_map.h5   float (480, 640, 2), rectified (x, y) = map[y, x]
    <seq>/disparity/event/NNNNNN.png           uint16 disparity * 256, 0 = invalid (train only)
    <seq>/disparity/timestamps.txt             absolute microseconds, one row per PNG
    <seq>/calibration/cam_to_cam.yaml          intrinsics.camRect0.camera_matrix, disparity_to_depth.cams_03

Disparity PNG numbering: DSEC names ground-truth files by *image* index (images at 20 Hz,
disparity at 10 Hz, so 000000.png, 000002.png, ...). Row ``i`` of timestamps.txt belongs to the
``i``-th PNG in sorted order; :meth:`DSECSequence.disparity` takes that row index and
:meth:`DSECSequence.disparity_file_index` gives the file's number. The writer follows the same
numbering (file index = 2 * row).

Test sequences have no disparity folder; their ``<seq>.csv`` (``# timestamp, file_index``) is
looked up at the path given to :class:`DSECSequence` (a csv file, or a folder holding
``<seq>.csv``), else in the sequence folder itself (``<seq>/<seq>.csv``).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple, Sequence

import cv2
import numpy as np
import yaml

from ..atomic import atomic_path, check_readable, ensure_dir, write_text
from ..errors import DatasetError, EventFileError
from ..settings import yaml_problem
from .files import EventFile, write_event_h5
from .geometry import depth_to_disparity, disparity_to_depth
from .recording import Events, StereoRecording
from .rectify import load_rectify_map, rectify_events, write_rectify_map

__all__ = [
    "CAMERAS",
    "DSECCalibration",
    "DSECSequence",
    "DSECSplit",
    "TestEntry",
    "load_calibration",
    "write_calibration",
    "read_disparity_png",
    "write_disparity_png",
    "read_test_csv",
    "write_test_csv",
    "write_dsec_sequence",
    "write_submission_png",
    "zip_submission",
    "validate_submission",
    "SUBMISSION_SHAPE",
]

CAMERAS = ("left", "right")
#: (height, width) the DSEC benchmark expects
SUBMISSION_SHAPE = (480, 640)
#: disparity PNG scale: stored value = round(disparity * DISPARITY_SCALE)
DISPARITY_SCALE = 256.0
#: ground-truth file index step (DSEC: images at 20 Hz, disparity at 10 Hz)
GT_FILE_INDEX_STEP = 2


class TestEntry(NamedTuple):
    """One row of a DSEC test csv: prediction time (absolute us) and the output file index."""

    timestamp_us: int
    file_index: int


# --------------------------------------------------------------------------------------------
# calibration


@dataclass(frozen=True)
class DSECCalibration:
    """Rectified event-pair calibration from ``cam_to_cam.yaml``.

    Attributes:
        Q: 4x4 disparity-to-depth matrix (``disparity_to_depth.cams_03``).
        fx, fy, cx, cy: rectified left event camera intrinsics (pixels, ``camRect0``).
        baseline_m: baseline in metres (``1 / |Q[3, 2]|``).
    """

    Q: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    baseline_m: float

    @property
    def focal_baseline(self) -> float:
        """Q[2,3] / Q[3,2] in pixel-metres (fx * baseline)."""
        return float(abs(self.Q[2, 3] / self.Q[3, 2]))

    @property
    def disparity_offset(self) -> float:
        """Q[3,3] / Q[3,2] in pixels (0 when both rectified cameras share cx)."""
        return float(self.Q[3, 3] / self.Q[3, 2])

    def disparity_to_depth(self, disparity: np.ndarray) -> np.ndarray:
        """Depth in metres from disparity in pixels via Q; NaN where disparity <= 0 (invalid)."""
        return disparity_to_depth(disparity, self.focal_baseline, self.disparity_offset)

    def depth_to_disparity(self, depth: np.ndarray) -> np.ndarray:
        """Disparity in pixels from depth in metres; 0 where depth is invalid."""
        return depth_to_disparity(depth, self.focal_baseline, self.disparity_offset)


def _yaml_get(path: Path, data: object, keys: Sequence[str]) -> object:
    node = data
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise DatasetError(f"{path}: missing key {'.'.join(keys[: i + 1])}")
        node = node[key]
    return node


def load_calibration(path: str | os.PathLike) -> DSECCalibration:
    """Read ``cam_to_cam.yaml``: ``intrinsics.camRect0.camera_matrix`` and ``disparity_to_depth.cams_03``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: calibration file not found")
    check_readable(path, DatasetError, "calibration file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML ({yaml_problem(exc)})") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a text file ({exc.reason})") from exc
    k = np.asarray(_yaml_get(path, data, ("intrinsics", "camRect0", "camera_matrix")), dtype=object)
    q = np.asarray(_yaml_get(path, data, ("disparity_to_depth", "cams_03")), dtype=object)
    try:
        k = k.astype(np.float64)
        q = q.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: calibration values must be numbers ({exc})") from exc
    if k.shape != (4,):
        raise DatasetError(f"{path}: intrinsics.camRect0.camera_matrix must be [fx, fy, cx, cy], got shape {k.shape}")
    if q.shape != (4, 4):
        raise DatasetError(f"{path}: disparity_to_depth.cams_03 must be 4x4, got shape {q.shape}")
    if q[3, 2] == 0 or q[2, 3] == 0:
        raise DatasetError(f"{path}: disparity_to_depth.cams_03 has Q[3,2] or Q[2,3] = 0 (no depth from disparity)")
    fx, fy, cx, cy = (float(v) for v in k)
    return DSECCalibration(Q=q, fx=fx, fy=fy, cx=cx, cy=cy, baseline_m=float(1.0 / abs(q[3, 2])))


def write_calibration(
    path: str | os.PathLike, fx: float, fy: float, cx: float, cy: float, baseline_m: float, width: int, height: int
) -> Path:
    """Write a DSEC-style ``cam_to_cam.yaml`` for a rectified event pair (cam 0 left, cam 3 right).

    Writes ``intrinsics.camRect0`` and ``camRect3`` (``camera_matrix`` [fx, fy, cx, cy],
    ``resolution`` [width, height]) and ``disparity_to_depth.cams_03`` (OpenCV Q with
    ``Q[3,2] = 1 / baseline_m``).
    """
    q = [
        [1.0, 0.0, 0.0, -float(cx)],
        [0.0, 1.0, 0.0, -float(cy)],
        [0.0, 0.0, 0.0, float(fx)],
        [0.0, 0.0, 1.0 / float(baseline_m), 0.0],
    ]
    cam = {"camera_matrix": [float(fx), float(fy), float(cx), float(cy)], "resolution": [int(width), int(height)]}
    data = {"intrinsics": {"camRect0": dict(cam), "camRect3": dict(cam)}, "disparity_to_depth": {"cams_03": q}}
    return write_text(path, yaml.safe_dump(data, sort_keys=False))


# --------------------------------------------------------------------------------------------
# disparity PNGs and test csv files


def read_disparity_png(path: str | os.PathLike) -> np.ndarray:
    """Read a uint16 disparity PNG as float32 pixels (value / 256); 0 = invalid."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: disparity PNG not found")
    check_readable(path, DatasetError, "disparity PNG")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"{path}: cannot decode PNG (corrupt or not an image)")
    if img.dtype != np.uint16 or img.ndim != 2:
        raise DatasetError(
            f"{path}: disparity PNG must be single-channel uint16, got {img.dtype} with shape {img.shape}"
        )
    return img.astype(np.float32) / DISPARITY_SCALE


def _encode_disparity(where: Path, disparity: np.ndarray) -> np.ndarray:
    d = np.asarray(disparity, dtype=np.float64)
    if d.ndim != 2:
        raise DatasetError(f"{where}: disparity must be 2-D (height, width), got shape {d.shape}")
    d = np.where(np.isfinite(d), d, 0.0)
    return np.rint(np.clip(d * DISPARITY_SCALE, 0, np.iinfo(np.uint16).max)).astype(np.uint16)


def write_disparity_png(path: str | os.PathLike, disparity: np.ndarray) -> Path:
    """Write disparity (pixels) as uint16 PNG = round(d * 256), clipped to [0, 65535]; NaN -> 0. Atomic."""
    path = Path(path)
    img = _encode_disparity(path, disparity)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise DatasetError(f"{path}: OpenCV could not write the PNG")
    return path


def read_test_csv(path: str | os.PathLike) -> list[TestEntry]:
    """Read a DSEC test csv (``# timestamp, file_index`` header, one row per prediction)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: test csv not found")
    try:
        data = np.loadtxt(path, dtype=np.int64, delimiter=",", comments="#", ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"{path}: malformed test csv, expected rows 'timestamp, file_index' ({exc})") from exc
    if data.size and data.shape[1] != 2:
        raise DatasetError(f"{path}: test csv must have 2 columns (timestamp, file_index), has {data.shape[1]}")
    return [TestEntry(int(t), int(i)) for t, i in data.reshape(-1, 2)]


def write_test_csv(path: str | os.PathLike, entries: Sequence[tuple[int, int]]) -> Path:
    """Write a DSEC test csv with the ``# timestamp, file_index`` header, atomically."""
    lines = ["# timestamp, file_index"] + [f"{int(t)}, {int(i)}" for t, i in entries]
    return write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# sequence and split readers


class DSECSequence:
    """One DSEC sequence folder (train or test).

    Files are opened lazily and kept open; call :meth:`close` or use ``with``.

    Example (a tiny simulated sequence, 24x32 pixels, 100 ms):

    >>> import tempfile
    >>> from stereo_snn.events import DSECSequence
    >>> from stereo_snn.events.simulator import make_demo_sequences
    >>> tmp = tempfile.TemporaryDirectory()
    >>> [folder] = make_demo_sequences(tmp.name, 1, size=(24, 32), duration_ms=100.0)
    >>> with DSECSequence(folder) as seq:
    ...     t0, t1 = seq.time_range_us("left")
    ...     left = seq.events("left", t1 - 50_000, t1)  # rectified, float32 pixels
    ...     print(seq.height, seq.width, seq.disparity_timestamps_us(), seq.disparity(1).shape, len(left) > 0)
    24 32 [     0 100000] (24, 32) True
    >>> tmp.cleanup()
    """

    def __init__(self, path: str | os.PathLike, test_csv: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        if self.path.is_file():
            raise DatasetError(f"{self.path}: is a file; a DSEC sequence is a folder (with events/, disparity/, ...)")
        if not self.path.is_dir():
            raise DatasetError(f"{self.path}: DSEC sequence folder not found")
        check_readable(self.path, DatasetError, "sequence folder")
        check_readable(self.path / "events", DatasetError, "folder")
        if not (self.path / "events").is_dir():
            raise DatasetError(f"{self.path}: not a DSEC sequence (missing events/ folder)")
        self.name = self.path.name
        self._test_csv = Path(test_csv) if test_csv is not None else None
        self._files: dict[str, EventFile] = {}
        self._maps: dict[str, np.ndarray] = {}
        self._gt_files: list[Path] | None = None
        self._gt_ts: np.ndarray | None = None
        self._calibration: DSECCalibration | None = None

    # -- events ----------------------------------------------------------------------------
    def _camera(self, camera: str) -> str:
        if camera not in CAMERAS:
            raise DatasetError(f"{self.path}: camera must be 'left' or 'right', got {camera!r}")
        return camera

    def rectify_map(self, camera: str) -> np.ndarray:
        """float32 (H, W, 2) rectify map of ``camera`` (cached)."""
        camera = self._camera(camera)
        if camera not in self._maps:
            path = self.path / "events" / camera / "rectify_map.h5"
            rmap = load_rectify_map(path)
            other = next(iter(self._maps.values()), None)
            if other is not None and other.shape != rmap.shape:
                raise DatasetError(
                    f"{path}: rectify map is {rmap.shape[0]}x{rmap.shape[1]} (HxW) but the other "
                    f"camera's is {other.shape[0]}x{other.shape[1]}"
                )
            self._maps[camera] = rmap
        return self._maps[camera]

    @property
    def height(self) -> int:
        """Sensor height in pixels (from the left rectify map)."""
        return int(self.rectify_map("left").shape[0])

    @property
    def width(self) -> int:
        """Sensor width in pixels (from the left rectify map)."""
        return int(self.rectify_map("left").shape[1])

    def event_file(self, camera: str) -> EventFile:
        """The open :class:`EventFile` of ``camera`` (sensor size from its rectify map)."""
        camera = self._camera(camera)
        if camera not in self._files:
            rmap = self.rectify_map(camera)
            f = EventFile(self.path / "events" / camera / "events.h5", sensor_size=rmap.shape[:2])
            if f.declared_size is not None and tuple(f.declared_size) != tuple(rmap.shape[:2]):
                f.close()
                raise DatasetError(
                    f"{f.path}: the file states a {f.declared_size[0]}x{f.declared_size[1]} (HxW) "
                    f"sensor but its rectify_map.h5 is {rmap.shape[0]}x{rmap.shape[1]}"
                )
            self._files[camera] = f
        return self._files[camera]

    def time_range_us(self, camera: str) -> tuple[int, int]:
        """Half-open absolute time span (microseconds) of ``camera``'s events."""
        return self.event_file(camera).time_range_us

    def events(
        self, camera: str, t_start_us: int, t_end_us: int, rectify: bool = True, keep_outside: bool = False
    ) -> Events:
        """Events of ``camera`` with ``t_start_us <= t < t_end_us`` (absolute microseconds).

        With ``rectify`` (default) coordinates are float32 rectified pixels and events that
        rectify outside the frame are dropped unless ``keep_outside``; otherwise raw uint16.
        """
        ev = self.event_file(camera).slice(t_start_us, t_end_us)
        if not rectify:
            return ev
        try:
            return rectify_events(ev, self.rectify_map(camera), keep_outside=keep_outside)
        except EventFileError as exc:
            raise EventFileError(f"{self.path / 'events' / camera}: {exc}") from exc

    # -- ground truth ----------------------------------------------------------------------
    @property
    def has_ground_truth(self) -> bool:
        """True when the sequence has ``disparity/timestamps.txt`` and ``disparity/event/``."""
        return (self.path / "disparity" / "timestamps.txt").is_file() and (self.path / "disparity" / "event").is_dir()

    def _load_gt_index(self) -> None:
        if self._gt_files is not None:
            return
        ts_path = self.path / "disparity" / "timestamps.txt"
        png_dir = self.path / "disparity" / "event"
        if not ts_path.is_file() or not png_dir.is_dir():
            raise DatasetError(
                f"{self.path}: no disparity ground truth (missing disparity/timestamps.txt or disparity/event/)"
            )
        check_readable(ts_path, DatasetError, "timestamps file")
        check_readable(png_dir, DatasetError, "folder")
        try:
            ts = np.loadtxt(ts_path, dtype=np.int64, comments="#", ndmin=1)
        except ValueError as exc:
            raise DatasetError(f"{ts_path}: malformed timestamps, expected one integer (us) per line ({exc})") from exc
        files = sorted(p for p in png_dir.iterdir() if p.suffix == ".png")
        if len(files) != ts.size:
            raise DatasetError(f"{self.path}: {len(files)} disparity PNGs but {ts.size} rows in {ts_path.name}")
        if ts.size > 1 and np.any(np.diff(ts) <= 0):
            raise DatasetError(f"{ts_path}: timestamps are not strictly increasing")
        for p in files:
            if not p.stem.isdigit():
                raise DatasetError(f"{p}: disparity file names must be numbers (NNNNNN.png)")
        self._gt_ts, self._gt_files = ts, files

    def disparity_timestamps_us(self) -> np.ndarray:
        """int64 (N,) absolute microseconds of the ground-truth maps (rows of timestamps.txt)."""
        self._load_gt_index()
        assert self._gt_ts is not None
        return self._gt_ts.copy()

    def _gt_path(self, index: int) -> Path:
        self._load_gt_index()
        assert self._gt_files is not None
        if not -len(self._gt_files) <= index < len(self._gt_files):
            raise DatasetError(f"{self.path}: disparity index {index} out of range 0..{len(self._gt_files) - 1}")
        return self._gt_files[index]

    def disparity_file_index(self, index: int) -> int:
        """The number in the file name of ground-truth row ``index``."""
        return int(self._gt_path(index).stem)

    def disparity(self, index: int) -> np.ndarray:
        """Ground-truth disparity of row ``index``: float32 (H, W) pixels, 0 = invalid."""
        path = self._gt_path(index)
        disp = read_disparity_png(path)
        if disp.shape != (self.height, self.width):
            raise DatasetError(f"{path}: disparity is {disp.shape}, expected {(self.height, self.width)}")
        return disp

    def test_entries(self) -> list[TestEntry]:
        """Rows of the test csv (see module docs for where ``<seq>.csv`` is looked up)."""
        given = self._test_csv
        if given is not None:
            path = given / f"{self.name}.csv" if given.is_dir() else given
        else:
            path = self.path / f"{self.name}.csv"
        if not path.is_file():
            raise DatasetError(f"{path}: test csv for sequence {self.name} not found")
        return read_test_csv(path)

    @property
    def calibration(self) -> DSECCalibration:
        """Calibration from ``calibration/cam_to_cam.yaml`` (cached)."""
        if self._calibration is None:
            self._calibration = load_calibration(self.path / "calibration" / "cam_to_cam.yaml")
        return self._calibration

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the event files (idempotent)."""
        for f in self._files.values():
            f.close()
        self._files = {}

    def __enter__(self) -> "DSECSequence":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        # open event files are not pickled; they re-open lazily in the receiving process
        state = self.__dict__.copy()
        state["_files"] = {}
        return state

    def __repr__(self) -> str:
        return f"DSECSequence({str(self.path)!r})"


class DSECSplit:
    """The sequences of a DSEC split folder (e.g. ``train/``), sorted by name.

    Index by position (``split[0]``) or by name (``split["zurich_city_00_a"]``).
    """

    def __init__(self, root: str | os.PathLike, test_csv: str | os.PathLike | None = None) -> None:
        self.root = Path(root)
        if self.root.is_file():
            raise DatasetError(f"{self.root}: is a file; a DSEC split is a folder of sequence folders")
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: DSEC split folder not found")
        check_readable(self.root, DatasetError, "folder")
        self.names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / "events").is_dir())
        if not self.names:
            raise DatasetError(f"{self.root}: no DSEC sequences (folders with events/) found")
        self._test_csv = test_csv

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[DSECSequence]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key: int | str) -> DSECSequence:
        if isinstance(key, str):
            if key not in self.names:
                raise DatasetError(f"{self.root}: no sequence named {key!r}")
            name = key
        else:
            try:
                name = self.names[key]
            except IndexError:
                raise DatasetError(f"{self.root}: sequence index {key} out of range 0..{len(self.names) - 1}") from None
        return DSECSequence(self.root / name, test_csv=self._test_csv)


# --------------------------------------------------------------------------------------------
# writer


def write_dsec_sequence(
    recording: StereoRecording, out_dir: str | os.PathLike, write_test_csv_file: bool = False
) -> Path:
    """Write ``recording`` as a complete DSEC sequence folder ``out_dir/<recording.name>``.

    Events: Blosc/ZSTD ``events.h5`` with ms_to_idx and ``t_offset = recording.t_offset_us``;
    ``rectify_map.h5`` per camera; ground truth ``disparity/event/{2*i:06d}.png`` (uint16 =
    round(d * 256)) with ``disparity/timestamps.txt``; ``calibration/cam_to_cam.yaml``. With
    ``write_test_csv_file``, also ``<seq>/<seq>.csv`` listing every ground-truth row.

    Returns:
        The sequence folder.
    """
    seq = ensure_dir(Path(out_dir) / recording.name)
    size = (int(recording.height), int(recording.width))
    gt = np.asarray(recording.gt_disparity)
    ts = np.asarray(recording.gt_timestamps_us, dtype=np.int64).reshape(-1)
    if gt.ndim != 3 or gt.shape[0] != ts.size or gt.shape[1:] != size:
        raise DatasetError(
            f"{seq}: gt_disparity must be (N, {size[0]}, {size[1]}) with N = {ts.size} timestamps, got {gt.shape}"
        )
    for cam, events, rmap in (
        ("left", recording.left, recording.rectify_left),
        ("right", recording.right, recording.rectify_right),
    ):
        cam_dir = seq / "events" / cam
        write_event_h5(cam_dir / "events.h5", events, t_offset_us=recording.t_offset_us, sensor_size=size)
        if tuple(np.shape(rmap)[:2]) != size:
            raise DatasetError(f"{cam_dir}: rectify map shape {np.shape(rmap)} does not match the {size} sensor")
        write_rectify_map(cam_dir / "rectify_map.h5", rmap)
    png_dir = ensure_dir(seq / "disparity" / "event")
    for i in range(ts.size):
        write_disparity_png(png_dir / f"{GT_FILE_INDEX_STEP * i:06d}.png", gt[i])
    write_text(seq / "disparity" / "timestamps.txt", "".join(f"{int(t)}\n" for t in ts))
    write_calibration(
        seq / "calibration" / "cam_to_cam.yaml",
        recording.fx,
        recording.fy,
        recording.cx,
        recording.cy,
        recording.baseline_m,
        size[1],
        size[0],
    )
    if write_test_csv_file:
        write_test_csv(seq / f"{recording.name}.csv", [(int(t), GT_FILE_INDEX_STEP * i) for i, t in enumerate(ts)])
    return seq


# --------------------------------------------------------------------------------------------
# benchmark submissions


def write_submission_png(out_root: str | os.PathLike, seq_name: str, file_index: int, disparity: np.ndarray) -> Path:
    """Write ``out_root/<seq_name>/<6-digit file_index>.png`` as uint16 = round(disparity * 256).

    Values are clipped to [0, 65535 / 256] pixels; NaN becomes 0. Atomic.
    """
    if int(file_index) < 0:
        raise DatasetError(f"{out_root}: file index must be non-negative, got {file_index}")
    return write_disparity_png(Path(out_root) / seq_name / f"{int(file_index):06d}.png", disparity)


def zip_submission(submission_dir: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Zip ``<seq>/<index>.png`` files of ``submission_dir`` into ``zip_path`` (atomic)."""
    root = Path(submission_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: submission folder not found")
    files = sorted(p for p in root.glob("*/*.png") if p.is_file())
    if not files:
        raise DatasetError(f"{root}: no <sequence>/<index>.png files to zip")
    zip_path = Path(zip_path)
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for p in files:
                zf.write(p, arcname=f"{p.parent.name}/{p.name}")
    return zip_path


def _expected_from(test_csv: str | os.PathLike | Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    if isinstance(test_csv, Mapping):
        return {str(k): [int(i) for i in v] for k, v in test_csv.items()}
    root = Path(test_csv)
    if root.is_file():
        return {root.stem: [e.file_index for e in read_test_csv(root)]}
    if not root.is_dir():
        raise DatasetError(f"{root}: test csv folder not found")
    csvs = sorted(root.glob("*.csv"))
    if not csvs:
        raise DatasetError(f"{root}: no <sequence>.csv files")
    return {p.stem: [e.file_index for e in read_test_csv(p)] for p in csvs}


def _submission_files(path: Path) -> Iterator[tuple[str, str, bytes | Path | None]]:
    """(sequence, file name, content or path) for every entry; content None for non-file junk."""
    if path.is_dir():
        for entry in sorted(path.iterdir()):
            if entry.is_dir():
                for f in sorted(entry.iterdir()):
                    yield entry.name, f.name, f if f.is_file() else None
            else:
                yield "", entry.name, None
        return
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                parts = info.filename.strip("/").split("/")
                if len(parts) != 2:
                    yield "", info.filename, None
                    continue
                yield parts[0], parts[1], zf.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path}: not a readable zip file ({exc})") from exc


def validate_submission(
    submission: str | os.PathLike,
    test_csv: str | os.PathLike | Mapping[str, Sequence[int]],
    shape: tuple[int, int] = SUBMISSION_SHAPE,
    raise_errors: bool = False,
) -> list[str]:
    """Check a submission folder or zip against the test csv files (the official checker's rules).

    Rules: every sequence folder belongs to a test sequence and none is missing; exactly one
    ``<6-digit file_index>.png`` per csv row (no missing, no extra files); each PNG decodes as
    single-channel uint16 of ``shape`` (480 x 640); PNG has no signed 16-bit type, so the
    official non-negativity rule holds for every uint16 image.

    Args:
        submission: folder or ``.zip`` holding ``<seq>/<index>.png``.
        test_csv: folder of ``<seq>.csv``, one csv file, or a mapping sequence -> file indices.
        raise_errors: raise :class:`DatasetError` listing every problem instead of returning them.

    Returns:
        The list of problems (empty when the submission is valid).
    """
    path = Path(submission)
    if not path.exists():
        raise DatasetError(f"{path}: submission not found")
    expected = _expected_from(test_csv)
    problems: list[str] = []
    seen: dict[str, set[str]] = {}
    for seq, name, content in _submission_files(path):
        where = f"{seq}/{name}" if seq else name
        if not seq or content is None:
            problems.append(f"{where}: unexpected entry (expected <sequence>/<index>.png files only)")
            continue
        if seq not in expected:
            problems.append(f"{where}: sequence {seq!r} is not a test sequence")
            continue
        seen.setdefault(seq, set()).add(name)
        wanted = {f"{i:06d}.png" for i in expected[seq]}
        if name not in wanted:
            problems.append(f"{where}: extra file (not listed in {seq}.csv)")
            continue
        if isinstance(content, Path):
            img = cv2.imread(str(content), cv2.IMREAD_UNCHANGED)
        else:
            img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None:
            problems.append(f"{where}: not a readable PNG")
            continue
        if img.ndim != 2 or img.dtype != np.uint16:
            problems.append(f"{where}: must be single-channel uint16, got {img.dtype} with shape {img.shape}")
            continue
        if img.shape != tuple(shape):
            problems.append(f"{where}: shape {img.shape}, expected {tuple(shape)}")
    for seq, indices in expected.items():
        missing = sorted({f"{i:06d}.png" for i in indices} - seen.get(seq, set()))
        if len(missing) == len(set(indices)) and missing:
            problems.append(f"{seq}: sequence missing ({len(missing)} files expected)")
        elif missing:
            problems.append(f"{seq}: {len(missing)} files missing, e.g. {', '.join(missing[:3])}")
    if raise_errors and problems:
        raise DatasetError(f"{path}: invalid submission ({len(problems)} problems):\n  " + "\n  ".join(problems))
    return problems
