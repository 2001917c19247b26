"""Stereo data: event sources (DSEC folders, MVSEC files, generic event files), a torch
Dataset of left/right representation tensors with ground truth, augmentation and collation.

A *source* yields, for each entry (a ground-truth or test timestamp, or a timestamp the
user gives), the rectified left and right events of the ``window_ms`` before it and, when
present, the ground-truth disparity in the rectified left frame (pixels, 0 = invalid).

Augmentation: random crops (the same window in both views and the ground truth, so the
disparities are unchanged) and *vertical* flips (rows are epipolar lines, so flipping both
views and the ground truth upside down gives another valid stereo pair). A horizontal
flip is not offered: mirroring a pair turns the left view into a right view, which would
need ground truth in the right camera's frame, which DSEC and MVSEC do not provide.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .. import distributed
from ..errors import ConfigError, DatasetError
from ..events.dsec import DSECSequence
from ..events.files import open_events
from ..events.mvsec import MVSECRecording, mvsec_split
from ..events.pair import run_pair
from ..events.recording import Events, empty_events
from ..events.represent import make_representation, to_time_steps
from ..windows import before_first_event
from .config import StereoConfig

__all__ = [
    "Entry",
    "StereoSource",
    "split_validation",
    "DSECSource",
    "MVSECSource",
    "EventFilesSource",
    "open_source",
    "open_sources",
    "mvsec_protocol_sources",
    "Representer",
    "StereoWindowDataset",
    "pad_collate",
    "split_loaders",
    "valid_mask",
]


@dataclass(frozen=True)
class Entry:
    """One window to process.

    index: the ground-truth / test entry index (names the output file ``<index:06d>.png``).
    t_us: absolute end time of the window (microseconds).
    gt_row: row of the ground truth for this entry, or None when there is none.
    """

    index: int
    t_us: int
    gt_row: int | None = None


def _common_span(left: tuple[int, int], right: tuple[int, int]) -> tuple[int, int]:
    """The part of two half-open time spans (microseconds) that both cameras cover."""
    return max(int(left[0]), int(right[0])), min(int(left[1]), int(right[1]))


class StereoSource(abc.ABC):
    """A stereo event recording the stereo loops can read window by window.

    ``layout`` names the recording's dataset layout ("dsec", "mvsec" or "generic"): with the
    sensor size it picks the bundled model (:func:`~.models.choose_checkpoint`).
    """

    name: str
    height: int
    width: int
    layout: str = "generic"

    @abc.abstractmethod
    def entries(self) -> list[Entry]:
        """The windows this source offers by default (ground-truth or test timestamps)."""

    @abc.abstractmethod
    def events(self, camera: str, t_start_us: int, t_end_us: int) -> Events:
        """Rectified events of ``camera`` ("left"/"right") with t_start <= t < t_end (microseconds)."""

    @abc.abstractmethod
    def time_range_us(self) -> tuple[int, int]:
        """Half-open span ``[start, end)`` (microseconds) covered by both cameras."""

    def disparity(self, entry: Entry) -> np.ndarray | None:
        """Ground-truth disparity (float32 pixels, 0 = invalid) of ``entry``, or None."""
        return None

    @property
    def focal_baseline(self) -> float | None:
        """fx * baseline (pixel metres): depth (m) = focal_baseline / disparity (px); None if unknown."""
        return None

    def window(self, entry: Entry, window_us: int) -> tuple[Events, Events]:
        """Left and right events of the ``window_us`` microseconds before ``entry.t_us``
        (the two cameras read and rectified at the same time, :func:`run_pair`)."""
        t0, t1 = int(entry.t_us) - int(window_us), int(entry.t_us)
        return run_pair(lambda: self.events("left", t0, t1), lambda: self.events("right", t0, t1))

    def windows_before(self, entry: Entry, window_us: int, count: int) -> list[Entry | None]:
        """The ``count`` windows of ``window_us`` before ``entry``'s window, oldest first, as
        entries ending where each window ends; None for a window that would start before the
        recording (an empty window: zeros, in training and inference alike)."""
        start, _ = self.time_range_us()
        ends = [int(entry.t_us) - k * int(window_us) for k in range(int(count), 0, -1)]
        return [Entry(-1, t, None) if t - int(window_us) >= start else None for t in ends]

    def entries_for(self, timestamps_us: Sequence[int] | None) -> list[Entry]:
        """Entries for user-given timestamps (indexed 0..n-1), or the default entries."""
        if timestamps_us is None:
            return self.entries()
        return [Entry(i, int(t), None) for i, t in enumerate(timestamps_us)]


class DSECSource(StereoSource):
    """A DSEC-layout sequence folder (train: disparity/ present; test: ``<seq>.csv`` entries)."""

    layout = "dsec"

    def __init__(self, path: str | os.PathLike, test_csv: str | os.PathLike | None = None):
        self.path = Path(path)
        self.seq = DSECSequence(self.path, test_csv=test_csv)
        self.name = self.seq.name
        self.height = int(self.seq.height)
        self.width = int(self.seq.width)
        self.seq.rectify_map("right")  # both maps are checked when the recording is opened

    def entries(self) -> list[Entry]:
        if self.seq.has_ground_truth:
            stamps = self.seq.disparity_timestamps_us()
            return [Entry(self.seq.disparity_file_index(row), int(t), row) for row, t in enumerate(stamps)]
        return [Entry(int(e.file_index), int(e.timestamp_us), None) for e in self.seq.test_entries()]

    def events(self, camera: str, t_start_us: int, t_end_us: int) -> Events:
        return self.seq.events(camera, t_start_us, t_end_us, rectify=True, keep_outside=False)

    def time_range_us(self) -> tuple[int, int]:
        return _common_span(self.seq.time_range_us("left"), self.seq.time_range_us("right"))

    def disparity(self, entry: Entry) -> np.ndarray | None:
        if entry.gt_row is None:
            return None
        return np.asarray(self.seq.disparity(entry.gt_row), dtype=np.float32)

    @property
    def focal_baseline(self) -> float | None:
        cal = self.seq.calibration
        return float(cal.fx * cal.baseline_m)

    def depth(self, disparity: np.ndarray) -> np.ndarray:
        """Depth in metres from the calibration's Q matrix (NaN where the disparity is not positive)."""
        return np.asarray(self.seq.calibration.disparity_to_depth(disparity), dtype=np.float32)


class MVSECSource(StereoSource):
    """An MVSEC ``<scene>_data.hdf5`` (+ ``_gt.hdf5`` and rectification maps beside it)."""

    layout = "mvsec"

    def __init__(self, data_path: str | os.PathLike, frames: Sequence[int] | None = None):
        self.path = Path(data_path)
        self.rec = MVSECRecording(self.path)
        self.name = str(self.rec.name)
        self.height, self.width = (int(v) for v in self.rec.sensor_size)
        for camera in ("left", "right"):  # the maps are checked when the recording is opened
            self.rec.rectify_map(camera)
        self._frames = None if frames is None else [int(f) for f in frames]

    def entries(self) -> list[Entry]:
        if not self.rec.has_ground_truth:
            return []
        stamps = self.rec.depth_timestamps_us()
        rows = range(len(stamps)) if self._frames is None else self._frames
        for r in rows:
            if not 0 <= r < len(stamps):
                raise DatasetError(f"{self.path}: frame {r} out of range (0..{len(stamps) - 1})")
        return [Entry(int(r), int(stamps[r]), int(r)) for r in rows]

    def events(self, camera: str, t_start_us: int, t_end_us: int) -> Events:
        return self.rec.events(camera, t_start_us, t_end_us, rectify=True)

    def time_range_us(self) -> tuple[int, int]:
        return _common_span(self.rec.time_range_us("left"), self.rec.time_range_us("right"))

    def disparity(self, entry: Entry) -> np.ndarray | None:
        if entry.gt_row is None:
            return None
        disp = np.asarray(self.rec.disparity(entry.gt_row), dtype=np.float32)
        return np.nan_to_num(disp, nan=0.0)

    @property
    def focal_baseline(self) -> float | None:
        return float(self.rec.focal_baseline)

    def depth(self, disparity: np.ndarray) -> np.ndarray:
        """Depth in metres (focal_baseline / disparity; NaN where the disparity is not positive)."""
        return np.asarray(self.rec.disparity_to_depth(disparity), dtype=np.float32)


class EventFilesSource(StereoSource):
    """A pair of generic event files (h5/npz with x, y, t, p), already rectified.

    Entries are the user's timestamps, or one window every ``window_us`` over the recording.
    """

    def __init__(
        self,
        left: str | os.PathLike,
        right: str | os.PathLike,
        height: int | None = None,
        width: int | None = None,
        window_us: int = 50_000,
    ):

        self.left_path, self.right_path = Path(left), Path(right)
        paths = {"left": self.left_path, "right": self.right_path}
        self.files = {cam: open_events(p) for cam, p in paths.items()}
        lh, lw = self.files["left"].sensor_size
        rh, rw = self.files["right"].sensor_size
        self.height = int(height or max(lh, rh))
        self.width = int(width or max(lw, rw))
        if height is not None or width is not None:
            # the given frame size is enforced on every window: events beyond it are refused, never cropped
            for f in self.files.values():
                f.close()
            self.files = {cam: open_events(p, (self.height, self.width)) for cam, p in paths.items()}
        if height is None and (lh, lw) != (rh, rw):
            raise DatasetError(
                f"{self.left_path} is {lh}x{lw} but {self.right_path} is {rh}x{rw}: left and right sizes differ "
                "(give --height/--width if both cameras share one rectified frame)"
            )
        self.name = self.left_path.stem
        self.window_us = int(window_us)

    def entries(self) -> list[Entry]:
        t0, t1 = self.time_range_us()
        stamps = range(t0 + self.window_us, t1, self.window_us)
        return [Entry(i, int(t), None) for i, t in enumerate(stamps)]

    def events(self, camera: str, t_start_us: int, t_end_us: int) -> Events:
        f = self.files[camera]
        lo, hi = f.time_range_us
        a, b = max(int(t_start_us), int(lo)), min(int(t_end_us), int(hi))
        if b <= a:
            return empty_events()
        return f.slice(a, b)

    def time_range_us(self) -> tuple[int, int]:
        return _common_span(self.files["left"].time_range_us, self.files["right"].time_range_us)


def open_source(
    path: str | os.PathLike, fmt: str = "auto", right: str | os.PathLike | None = None, **kwargs: Any
) -> StereoSource:
    """Open a DSEC sequence folder, an MVSEC ``*_data.hdf5`` or a generic pair of event files.

    ``fmt``: "dsec", "mvsec", "generic" or "auto" (folder with ``events/left`` -> dsec,
    ``*_data.hdf5`` -> mvsec, a file plus ``right`` -> generic).
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if fmt == "auto":
        if p.is_dir() and (p / "events" / "left").exists():
            fmt = "dsec"
        elif p.is_file() and p.name.endswith("_data.hdf5"):
            fmt = "mvsec"
        elif p.is_file() and right is not None:
            fmt = "generic"
        else:
            raise DatasetError(
                f"{p}: cannot tell the format (a DSEC sequence folder has events/left; an MVSEC file ends in "
                "_data.hdf5; a generic event file needs the right camera's file as well)"
            )
    if fmt == "dsec":
        return DSECSource(p, test_csv=kwargs.get("test_csv"))
    if fmt == "mvsec":
        return MVSECSource(p, **{k: v for k, v in kwargs.items() if k == "frames"})
    if fmt == "generic":
        if right is None:
            raise DatasetError(f"{p}: a generic event file needs the right camera's file (--right)")
        return EventFilesSource(p, right, **{k: v for k, v in kwargs.items() if k in ("height", "width", "window_us")})
    raise DatasetError(f"{p}: unknown format {fmt!r} (dsec, mvsec, generic)")


def open_sources(root: str | os.PathLike, fmt: str = "dsec") -> list[StereoSource]:
    """All sequences under a folder: DSEC sequence folders, or MVSEC ``*_data.hdf5`` files (sorted;
    directly in the folder, else one level down, one folder per recording).

    ``root`` may also be one sequence / file itself.
    """
    r = Path(root)
    if not r.exists():
        raise DatasetError(f"{r}: no such data folder")
    if fmt == "dsec":
        if not r.is_dir():
            raise DatasetError(f"{r}: is a file; DSEC data is a folder of sequence folders (or one sequence folder)")
        if (r / "events" / "left").exists():
            return [DSECSource(r)]
        seqs = sorted(d for d in r.iterdir() if (d / "events" / "left").exists())
        if not seqs:
            raise DatasetError(f"{r}: no DSEC sequence folders (with events/left) found")
        return [DSECSource(d) for d in seqs]
    if fmt == "mvsec":
        if r.is_file():
            return [MVSECSource(r)]
        # the files themselves, or one folder per recording (as `stereo-snn simulate` writes them)
        files = sorted(r.glob("*_data.hdf5")) or sorted(r.glob("*/*_data.hdf5"))
        if not files:
            raise DatasetError(f"{r}: no MVSEC *_data.hdf5 files found (in the folder or its sub-folders)")
        return [MVSECSource(f) for f in files]
    raise DatasetError(f"{r}: unknown format {fmt!r} for a data folder (dsec, mvsec)")


def split_validation(
    sources: Sequence[StereoSource],
    val_count: int = 0,
    val_data: str | os.PathLike | None = None,
    fmt: str = "auto",
    mvsec_root: str | os.PathLike | None = None,
    mvsec_split: int | None = None,
) -> tuple[list[StereoSource], list[StereoSource]]:
    """Training and validation sources, by the first rule that applies: the sequences under
    ``val_data`` (layout ``fmt``); the "val" frames of MVSEC split ``mvsec_split`` under
    ``mvsec_root``; the last ``val_count`` of ``sources`` (with at least two); no validation.

    Raises ConfigError when ``val_count`` would leave no training sequence.
    """
    sources = list(sources)
    if val_data:
        return sources, open_sources(val_data, fmt)
    if mvsec_split:
        return sources, mvsec_protocol_sources(mvsec_root, mvsec_split, "val")
    if len(sources) >= 2 and val_count > 0:
        if val_count >= len(sources):
            raise ConfigError(f"--val-count {val_count}: leaves no training sequence out of {len(sources)}")
        return sources[:-val_count], sources[-val_count:]
    return sources, []


def mvsec_protocol_sources(
    root: str | os.PathLike, split: int, part: str, seed: int | None = None, protocol: dict[str, Any] | None = None
) -> list[StereoSource]:
    """The MVSEC indoor_flying protocol (DDES): the frames of ``part`` ("train", "val" or
    "test") of split ``split``, as one MVSECSource per sequence file ``root/<seq>_data.hdf5``.

    ``protocol`` defaults to the packaged split file (``stereo_snn.events.mvsec.mvsec_split``).
    """
    frames = mvsec_split(int(split), seed=seed, protocol=protocol)
    if part not in frames:
        raise DatasetError(f"MVSEC split part {part!r}: expected one of {sorted(frames)}")
    by_seq: dict[str, list[int]] = {}
    for seq, frame in frames[part]:
        by_seq.setdefault(seq, []).append(int(frame))
    out: list[StereoSource] = []
    for seq, idx in sorted(by_seq.items()):
        path = Path(root) / f"{seq}_data.hdf5"
        if not path.is_file():
            raise DatasetError(f"{path}: MVSEC split {split} ({part}) needs this file")
        out.append(MVSECSource(path, frames=idx))
    return out


class Representer:
    """Turns a window of events into the network's input [T, C, H, W] (float32 numpy)."""

    def __init__(self, cfg: StereoConfig):
        self.rep = make_representation(dict(cfg.representation))
        self.steps = cfg.time_steps
        self.channels = cfg.input_channels

    def __call__(self, events: Events, height: int, width: int) -> np.ndarray:
        return to_time_steps(self.rep(events, height, width), self.steps)

    def pair(self, left: Events, right: Events, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Both views' inputs, computed at the same time (:func:`run_pair`)."""
        return run_pair(lambda: self(left, height, width), lambda: self(right, height, width))


def valid_mask(disparity: torch.Tensor | np.ndarray, max_disparity: float) -> Any:
    """Pixels whose ground truth is usable: 0 < d < max_disparity (pixels)."""
    return (disparity > 0) & (disparity < max_disparity)


class StereoWindowDataset(Dataset):
    """Windows of one or more stereo sources as tensors.

    Item: dict with ``left``/``right`` float32 [T, C, H, W], ``disparity`` float32 [H, W]
    (pixels; zeros when there is no ground truth), ``valid`` bool [H, W], ``name`` and
    ``index`` (entry index) and ``events`` (left and right event counts).

    crop: (height, width) random crop (training), the same for both views; None = full frame.
    vflip: flip both views and the ground truth upside down with probability 1/2.
    Randomness is a pure function of (seed, epoch, item), so a resumed run sees the same crops.
    cache_mb: memory budget in MiB for full-frame representations and ground truth kept
    between epochs (0: none). Windows are kept in the order they are first read until the budget
    is spent; the rest are read from the files each time (at DSEC size one window's two views
    take about 20 MB, and reading one costs milliseconds against seconds of training step).
    require_gt: only entries with ground truth whose window starts inside the recording.
    history: K > 0 adds ``history_left``/``history_right`` [K, T, C, H, W], the K windows before
    each window (oldest first, same crop and flip; zeros where a window would start before the
    recording), for streaming (``train.stream_windows``).
    """

    def __init__(
        self,
        sources: Sequence[StereoSource],
        cfg: StereoConfig,
        crop: Sequence[int] | None = None,
        vflip: bool = False,
        seed: int = 0,
        require_gt: bool = True,
        cache_mb: float = 0.0,
        entries: dict[str, list[Entry]] | None = None,
        history: int = 0,
    ):
        self.sources = list(sources)
        self.history = int(history)
        self.cfg = cfg
        self.window_us = int(round(cfg.window_ms * 1000))
        self.represent = Representer(cfg)
        self.crop = None if crop is None else (int(crop[0]), int(crop[1]))
        self.vflip = bool(vflip)
        self.seed = int(seed)
        self.epoch = 0
        if not cache_mb >= 0:
            raise ConfigError(f"cache_mb: must be >= 0 MiB, got {cache_mb}")
        self._cache: dict[tuple[Any, int], Any] | None = {} if cache_mb > 0 else None
        self._cache_left = int(cache_mb * 2**20)
        self.items: list[tuple[int, Entry]] = []
        for si, src in enumerate(self.sources):
            ents = entries[src.name] if entries and src.name in entries else src.entries()
            if require_gt:
                start, _ = src.time_range_us()
                ents = [
                    e
                    for e in ents
                    if e.gt_row is not None and not before_first_event(e.t_us, self.window_us, start, whole_window=True)
                ]
            self.items.extend((si, e) for e in ents)
        if require_gt and not self.items:
            names = ", ".join(s.name for s in self.sources)
            raise DatasetError(f"no ground-truth windows with events before them in: {names}")

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops/flips of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _pair(self, si: int, entry: Entry) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Representations of both views of source ``si``'s window ending at ``entry.t_us`` and
        the event counts (cached per window, so a window that is also another's history is read
        once)."""
        key = (si, int(entry.t_us))
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        src = self.sources[si]
        left_ev, right_ev = src.window(entry, self.window_us)
        left, right = self.represent.pair(left_ev, right_ev, src.height, src.width)
        out = (left, right, (len(left_ev), len(right_ev)))
        self._keep(key, out, left.nbytes + right.nbytes)
        return out

    def _keep(self, key: tuple[Any, int], value: Any, nbytes: int) -> None:
        """Cache ``value`` under ``key`` while the memory budget lasts."""
        if self._cache is not None and nbytes <= self._cache_left:
            self._cache[key] = value
            self._cache_left -= nbytes

    def _full(self, i: int) -> tuple[Any, ...]:
        si, entry = self.items[i]
        src = self.sources[si]
        left, right, counts = self._pair(si, entry)
        key = ("gt", i)
        if self._cache is not None and key in self._cache:
            gt = self._cache[key]
        else:
            gt = src.disparity(entry)
            if gt is None:
                gt = np.zeros((src.height, src.width), np.float32)
            elif gt.shape != (src.height, src.width):
                raise DatasetError(
                    f"{src.name}: ground truth {entry.index} is {gt.shape}, events are {src.height}x{src.width}"
                )
            gt = gt.astype(np.float32)
            self._keep(key, gt, gt.nbytes)
        hist = None
        if self.history:
            before = src.windows_before(entry, self.window_us, self.history)
            past = [self._pair(si, e) if e is not None else None for e in before]
            hist = (
                np.stack([p[0] if p is not None else np.zeros_like(left) for p in past]),
                np.stack([p[1] if p is not None else np.zeros_like(right) for p in past]),
            )
        return left, right, gt, counts, hist

    def __getitem__(self, i: int) -> dict[str, Any]:
        left, right, gt, counts, hist = self._full(i)
        views = [left, right] + (list(hist) if hist is not None else [])
        si, entry = self.items[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.crop is not None:
            ch, cw = self.crop
            h, w = gt.shape
            if ch > h or cw > w:
                raise DatasetError(f"{self.sources[si].name}: crop {ch}x{cw} is larger than the frame {h}x{w}")
            y0 = int(rng.integers(0, h - ch + 1))
            x0 = int(rng.integers(0, w - cw + 1))
            views = [v[..., y0 : y0 + ch, x0 : x0 + cw] for v in views]
            gt = gt[y0 : y0 + ch, x0 : x0 + cw]
        if self.vflip and rng.random() < 0.5:
            views, gt = [v[..., ::-1, :] for v in views], gt[::-1, :]
        disp = torch.from_numpy(np.ascontiguousarray(gt))
        tensors = [torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for v in views]
        item = {
            "left": tensors[0],
            "right": tensors[1],
            "disparity": disp,
            "valid": valid_mask(disp, self.cfg.max_disparity),
            "name": self.sources[si].name,
            "index": entry.index,
            "events": counts,
        }
        if hist is not None:
            item["history_left"], item["history_right"] = tensors[2], tensors[3]
        return item


def pad_collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into a batch, zero-padding frames of different sizes to the largest.

    Padded pixels are invalid (``valid`` False), so losses and metrics ignore them.
    Output: ``left``/``right`` [T, B, C, H, W] (multi-step layout), ``disparity``/``valid``
    [B, H, W], ``name``/``index`` lists, ``sizes`` the original (H, W) per item.
    """
    if not batch:
        raise DatasetError("empty batch")
    h = max(int(b["disparity"].shape[0]) for b in batch)
    w = max(int(b["disparity"].shape[1]) for b in batch)

    def pad(x: torch.Tensor) -> torch.Tensor:
        ph, pw = h - x.shape[-2], w - x.shape[-1]
        return torch.nn.functional.pad(x, (0, pw, 0, ph)) if (ph or pw) else x

    left = torch.stack([pad(b["left"]) for b in batch], dim=1)
    right = torch.stack([pad(b["right"]) for b in batch], dim=1)
    disp = torch.stack([pad(b["disparity"]) for b in batch])
    valid = torch.stack([pad(b["valid"]) for b in batch])
    out = {
        "left": left,
        "right": right,
        "disparity": disp,
        "valid": valid,
        "name": [b["name"] for b in batch],
        "index": [b["index"] for b in batch],
        "sizes": [tuple(b["disparity"].shape) for b in batch],
    }
    if "history_left" in batch[0]:  # [K, T, B, C, H, W]
        for key in ("history_left", "history_right"):
            out[key] = torch.stack([pad(b[key]) for b in batch], dim=2)
    return out


def split_loaders(
    dataset: StereoWindowDataset, batch_size: int, seed: int, what: str = "search", setting: str = "search.batch_size"
) -> tuple[DataLoader, DataLoader]:
    """Two loaders over two disjoint halves of ``dataset`` (a seeded shuffle of its windows):
    the search's weight and architecture halves, or a DGS round's training and held-out
    batches. ``what`` names the user in the error when there are fewer than 2 windows; under
    torchrun each loader yields this process's share of every global batch of ``batch_size``."""
    n = len(dataset)
    if n < 2:
        raise DatasetError(f"{what} needs at least 2 windows with ground truth (one per half), found {n}")
    order = np.random.default_rng(seed).permutation(n)
    halves = (sorted(order[: (n + 1) // 2].tolist()), sorted(order[(n + 1) // 2 :].tolist()))
    loaders = []
    for k, idx in enumerate(halves):
        subset = Subset(dataset, idx)
        sampler = distributed.make_sampler(subset, True, int(seed) * 7919 + k)  # torchrun: this process's share
        if sampler is not None:
            loaders.append(
                DataLoader(
                    subset,
                    batch_size=distributed.check_batch(batch_size, setting),
                    sampler=sampler,
                    collate_fn=pad_collate,
                    num_workers=0,
                )
            )
            continue
        gen = torch.Generator().manual_seed(int(seed) * 7919 + k)
        loaders.append(
            DataLoader(
                subset, batch_size=batch_size, shuffle=True, generator=gen, collate_fn=pad_collate, num_workers=0
            )
        )
    return loaders[0], loaders[1]
