"""Generic event files: read windows of events from ``.h5/.hdf5`` and ``.npz``, write DSEC-style h5.

Supported layouts (all timestamps integer microseconds):

* HDF5 (``.h5``/``.hdf5``): datasets ``events/x``, ``events/y``, ``events/t``, ``events/p``
  (1-D, same length, t sorted), optionally ``ms_to_idx`` (DSEC: ``t[ms_to_idx[ms]] >= 1000 ms``
  and ``t[ms_to_idx[ms] - 1] < 1000 ms``) and ``t_offset`` (added to ``t`` for absolute time).
  Compressed files (Blosc/ZSTD as in DSEC) need ``hdf5plugin``, imported here.
* NumPy ``.npz``: arrays ``x, y, t, p`` (optionally ``t_offset``, ``ms_to_idx``,
  ``height``/``width``). Loaded into memory (npz is meant for small files).

Decisions (documented in docs/events.md):

* ``x, y, t`` must have integer dtypes. Float timestamps are rejected (seconds or
  microseconds would be a guess); convert first, e.g. ``np.round(t_s * 1e6).astype(np.int64)``.
* ``p`` may be integer or bool with values in {0, 1} or {-1, +1}; it is returned as int8 {0, 1}.
* A window is half-open ``[t_start_us, t_end_us)`` in absolute microseconds. ``t_end <= t_start``
  and windows that do not overlap the recording raise :class:`EventFileError`; a window that
  overlaps the recording only partly returns the events inside it; a window inside the
  recording that holds no events returns an empty :class:`Events` (not an error).
* The recording spans ``[t_offset, t_offset + t_last + 1)`` when the file has ``t_offset``
  (DSEC: relative time 0 is the recording start), else ``[t_first, t_last + 1)``.
* Coordinates outside the sensor raise (``outside="error"``, default) or are dropped
  (``outside="drop"``).
* Timestamps are checked for order on every slice read and on a sample of the file at open.
* With ``ms_to_idx``, both boundary events of every window are checked against the requested
  times (``t[i - 1] < t_start <= t[i]``, one read of two timestamps per boundary): an index that
  disagrees with ``t`` raises instead of returning events from another time.

No torch import here.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import numba
import numpy as np

from ..atomic import atomic_path, check_readable
from ..errors import CorruptFileError, EventFileError
from .recording import Events

try:  # registers the Blosc/ZSTD filters with HDF5
    import hdf5plugin
except ImportError:  # pragma: no cover - hdf5plugin is a declared dependency
    hdf5plugin = None

__all__ = [
    "EventFile",
    "open_events",
    "write_event_h5",
    "write_event_npz",
    "bisect_time",
    "ms_to_idx_table",
    "check_h5_filters",
    "h5_errors",
    "check_window",
    "check_events_for_writing",
]

H5_SUFFIXES = (".h5", ".hdf5")
NPZ_SUFFIXES = (".npz",)
FIELDS = ("x", "y", "t", "p")
#: number of evenly spaced timestamps read at open to detect an unsorted file cheaply
OPEN_ORDER_SAMPLES = 64
#: bisection stops and reads the remaining span in one go below this many events
BISECT_BLOCK = 4096
#: Blosc and its filter id, for a helpful message when the plugin is missing
_PLUGIN_FILTERS = {32001: "Blosc", 32015: "Zstd", 32004: "LZ4", 32008: "bitshuffle"}


# --------------------------------------------------------------------------------------------
# shared helpers (also used by the DSEC and MVSEC readers)


@contextlib.contextmanager
def h5_errors(path: Path, what: str, error: type[Exception] = EventFileError) -> Iterator[None]:
    """Turn low-level h5py/OS errors raised inside the block into one project error.

    ``what`` says what was being done ("opening", "reading events/t", ...). A missing
    compression filter is reported with the hint to install/import ``hdf5plugin``.
    """
    try:
        yield
    except (OSError, RuntimeError, ValueError) as exc:
        msg = str(exc)
        if isinstance(exc, PermissionError) or "errno = 13" in msg or "permission denied" in msg.lower():
            raise error(f"{path}: permission denied while {what} (check the file's permissions)") from exc
        if "filter" in msg.lower() or "plugin" in msg.lower():
            raise error(
                f"{path}: cannot decompress while {what}: an HDF5 compression filter is missing "
                f"(install and import hdf5plugin: pip install hdf5plugin) [{msg}]"
            ) from exc
        raise error(f"{path}: {what} failed; the file is unreadable or truncated ({msg})") from exc


def check_h5_filters(path: Path, dataset: h5py.Dataset, error: type[Exception] = EventFileError) -> None:
    """Raise ``error`` naming hdf5plugin if ``dataset`` uses a compression filter HDF5 lacks."""
    plist = dataset.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if not h5py.h5z.filter_avail(code):
            name = _PLUGIN_FILTERS.get(code, f"id {code}")
            raise error(
                f"{path}: dataset {dataset.name} is compressed with the {name} filter, which is not "
                f"available; install and import hdf5plugin (pip install hdf5plugin)"
            )


def bisect_time(read_t: Callable[[int, int], np.ndarray], n: int, value: int, lo: int = 0) -> int:
    """First index ``i`` in ``[lo, n]`` with ``t[i] >= value`` for sorted ``t`` (O(log n) small reads).

    ``read_t(i0, i1)`` returns ``t[i0:i1]`` as int64 microseconds; it is called with one-element
    spans while the interval is wide, then once on the remaining span (< ``BISECT_BLOCK``).
    """
    hi = n
    while hi - lo > BISECT_BLOCK:
        mid = (lo + hi) // 2
        if int(read_t(mid, mid + 1)[0]) < value:
            lo = mid + 1
        else:
            hi = mid
    block = read_t(lo, hi)
    return lo + int(np.searchsorted(block, value, side="left"))


def ms_to_idx_table(t_rel_us: np.ndarray) -> np.ndarray:
    """DSEC ``ms_to_idx`` for sorted relative timestamps: entry ``ms`` = first index with t >= 1000 ms.

    Length ``floor(t_last / 1000) + 1`` (as in DSEC); uint64.
    """
    t_rel = np.asarray(t_rel_us, dtype=np.int64)
    if t_rel.size == 0:
        return np.zeros(1, np.uint64)
    n_ms = int(t_rel[-1]) // 1000 + 1
    return np.searchsorted(t_rel, np.arange(n_ms, dtype=np.int64) * 1000, side="left").astype(np.uint64)


def check_window(path: Path, t_start_us: int, t_end_us: int, time_range: tuple[int, int]) -> None:
    """Raise :class:`EventFileError` for a reversed window or one outside the half-open ``time_range``."""
    start, end = time_range
    if t_end_us <= t_start_us:
        raise EventFileError(
            f"{path}: empty or reversed window [{t_start_us}, {t_end_us}) us; t_end must be greater than t_start"
        )
    if start == end:
        raise EventFileError(f"{path}: window [{t_start_us}, {t_end_us}) us requested but the file holds no events")
    if t_end_us <= start or t_start_us >= end:
        raise EventFileError(
            f"{path}: window [{t_start_us}, {t_end_us}) us is outside the recording [{start}, {end}) us"
        )


def _as_int(path: Path, value: Any, name: str) -> int:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise EventFileError(
            f"{path}: {name} must be one integer (microseconds), got dtype {arr.dtype} shape {arr.shape}"
        )
    return int(arr.reshape(-1)[0])


# --------------------------------------------------------------------------------------------
# reading


class ReopenOnPickle:
    """Context-manager and pickling behaviour shared by the file readers.

    A subclass stores its constructor arguments in ``self._init_args`` and implements
    ``close()``. Pickling (e.g. for data-loader worker processes) sends those arguments and
    re-opens the files on the other side; ``with reader:`` closes them on exit.
    """

    _init_args: tuple

    def close(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> tuple:
        return self._init_args

    def __setstate__(self, state: tuple) -> None:
        self.__init__(*state)


class EventFile(ReopenOnPickle):
    """An open event file: time range, size, and exact half-open time windows.

    Use :func:`open_events` to make one; close it (or use ``with``) when done. Readers never
    write to the file (h5 files are opened read-only).

    Attributes:
        path: the file.
        num_events: number of events stored.
        t_offset_us: offset added to stored timestamps (0 if the file has none).
        has_ms_to_idx: whether slicing uses the file's millisecond index.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sensor_size: tuple[int, int] | None = None,
        outside: str = "error",
    ) -> None:
        self.path = Path(path)
        self._init_args = (str(path), sensor_size, outside)
        if outside not in ("error", "drop"):
            raise EventFileError(f"{self.path}: outside must be 'error' or 'drop', got {outside!r}")
        self.outside = outside
        self._h5: h5py.File | None = None
        self._cols: dict[str, Any] = {}
        self._ms_to_idx: np.ndarray | None = None
        self.t_offset_us = 0
        self._has_offset = False
        self._sensor_size: tuple[int, int] | None = None
        if not self.path.exists():
            raise EventFileError(f"{self.path}: event file not found")
        if not self.path.is_file():
            raise EventFileError(f"{self.path}: not a file")
        check_readable(self.path, EventFileError, "event file")
        suffix = self.path.suffix.lower()
        if suffix in H5_SUFFIXES:
            self._open_h5()
        elif suffix in NPZ_SUFFIXES:
            self._open_npz()
        else:
            raise EventFileError(f"{self.path}: unsupported event file type {suffix!r} (expected .h5, .hdf5 or .npz)")
        #: (height, width) the file itself states (attributes / arrays), None when it states none
        self.declared_size = self._sensor_size
        try:
            self._validate()
            if sensor_size is not None:
                self._sensor_size = _check_size(self.path, sensor_size)
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _open_h5(self) -> None:
        if not h5py.is_hdf5(self.path):
            raise EventFileError(f"{self.path}: not an HDF5 file (or truncated before its header)")
        with h5_errors(self.path, "opening"):
            self._h5 = h5py.File(self.path, "r")
        f = self._h5
        try:
            with h5_errors(self.path, "reading the layout"):
                for name in FIELDS:
                    key = f"events/{name}"
                    if key not in f or not isinstance(f[key], h5py.Dataset):
                        raise EventFileError(
                            f"{self.path}: missing dataset {key} (expected events/x, events/y, events/t, events/p)"
                        )
                    check_h5_filters(self.path, f[key])
                    self._cols[name] = f[key]
                if "ms_to_idx" in f:
                    check_h5_filters(self.path, f["ms_to_idx"])
                    self._ms_to_idx = np.asarray(f["ms_to_idx"][()])
                if "t_offset" in f:
                    self.t_offset_us = _as_int(self.path, f["t_offset"][()], "t_offset")
                    self._has_offset = True
                self._sensor_size = _size_from_attrs(self.path, f)
        except BaseException:
            self.close()
            raise

    def _open_npz(self) -> None:
        if not zipfile.is_zipfile(self.path):
            raise EventFileError(f"{self.path}: not a .npz archive (or truncated)")
        try:
            with np.load(self.path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise EventFileError(f"{self.path}: cannot read .npz archive ({exc})") from exc
        for name in FIELDS:
            if name not in arrays:
                raise EventFileError(f"{self.path}: missing array {name!r} (expected x, y, t, p)")
            self._cols[name] = arrays[name]
        if "ms_to_idx" in arrays:
            self._ms_to_idx = arrays["ms_to_idx"]
        if "t_offset" in arrays:
            self.t_offset_us = _as_int(self.path, arrays["t_offset"], "t_offset")
            self._has_offset = True
        if "height" in arrays and "width" in arrays:
            self._sensor_size = _check_size(
                self.path,
                (_as_int(self.path, arrays["height"], "height"), _as_int(self.path, arrays["width"], "width")),
            )

    def _validate(self) -> None:
        cols = self._cols
        lengths = {}
        for name in FIELDS:
            col = cols[name]
            if len(col.shape) != 1:
                raise EventFileError(f"{self.path}: {name} must be 1-D, has shape {tuple(col.shape)}")
            lengths[name] = int(col.shape[0])
            kind = col.dtype.kind
            allowed = "iub" if name == "p" else "iu"
            if kind not in allowed:
                hint = " (convert seconds with np.round(t * 1e6).astype(np.int64))" if name == "t" else ""
                raise EventFileError(f"{self.path}: {name} has dtype {col.dtype}; expected integers{hint}")
        if len(set(lengths.values())) != 1:
            raise EventFileError(f"{self.path}: x, y, t, p lengths differ: {lengths}")
        self.num_events = lengths["t"]
        if self._ms_to_idx is not None:
            m = np.asarray(self._ms_to_idx)
            if m.ndim != 1 or m.dtype.kind not in "iu" or m.size == 0:
                raise EventFileError(
                    f"{self.path}: ms_to_idx must be a non-empty 1-D integer array, has dtype {m.dtype} shape {m.shape}"
                )
            m = m.astype(np.int64)
            if np.any(np.diff(m) < 0) or m[0] < 0 or m[-1] > self.num_events:
                raise EventFileError(
                    f"{self.path}: ms_to_idx is not a non-decreasing index into the {self.num_events} events"
                )
            self._ms_to_idx = m
        if self.num_events:
            n = self.num_events
            idx = np.unique(np.linspace(0, n - 1, min(n, OPEN_ORDER_SAMPLES)).astype(np.int64))
            with h5_errors(self.path, "reading events/t"):
                sample = np.asarray(cols["t"][idx], dtype=np.int64)
            if np.any(np.diff(sample) < 0):
                raise EventFileError(f"{self.path}: timestamps are not sorted (non-monotonic t found in a sample)")
            self._t_first = int(sample[0])
            self._t_last = int(sample[-1])

    # -- properties ------------------------------------------------------------------------
    @property
    def time_range_us(self) -> tuple[int, int]:
        """Half-open absolute span ``(start, end)`` in microseconds (see module docs)."""
        if self.num_events == 0:
            return (self.t_offset_us, self.t_offset_us)
        start = self.t_offset_us if self._has_offset else self._t_first + self.t_offset_us
        return (min(start, self._t_first + self.t_offset_us), self._t_last + self.t_offset_us + 1)

    @property
    def has_ms_to_idx(self) -> bool:
        return self._ms_to_idx is not None

    @property
    def sensor_size(self) -> tuple[int, int]:
        """(height, width) in pixels: from the file's attributes/arrays, the caller, else max + 1.

        The max + 1 fallback reads all coordinates once (in blocks) and is cached.
        """
        if self._sensor_size is None:
            hmax = wmax = -1
            step = 1 << 20
            with h5_errors(self.path, "reading events/x and events/y"):
                for i in range(0, self.num_events, step):
                    wmax = max(wmax, int(np.max(self._cols["x"][i : i + step])))
                    hmax = max(hmax, int(np.max(self._cols["y"][i : i + step])))
            if hmax < 0 or wmax < 0:
                raise EventFileError(
                    f"{self.path}: cannot infer the sensor size (no events, no height/width attributes)"
                )
            self._sensor_size = (hmax + 1, wmax + 1)
        return self._sensor_size

    # -- reading ---------------------------------------------------------------------------
    def _read_t_rel(self, i0: int, i1: int) -> np.ndarray:
        with h5_errors(self.path, "reading events/t"):
            return np.asarray(self._cols["t"][i0:i1]).astype(np.int64, copy=False)

    def index_range(self, t_start_us: int, t_end_us: int) -> tuple[int, int]:
        """Event indices ``[i0, i1)`` with ``t_start_us <= t_abs < t_end_us`` (no window checks)."""
        rel0 = int(t_start_us) - self.t_offset_us
        rel1 = int(t_end_us) - self.t_offset_us
        n = self.num_events
        if self._ms_to_idx is not None:
            i0, i1 = self._ms_lower_bound(rel0), self._ms_lower_bound(rel1)
            self._check_bound(i0, rel0)
            self._check_bound(i1, rel1)
            return i0, i1
        i0 = bisect_time(self._read_t_rel, n, rel0)
        i1 = bisect_time(self._read_t_rel, n, rel1, lo=i0)
        return i0, i1

    def _ms_lower_bound(self, rel_us: int) -> int:
        """First index with stored ``t >= rel_us``, reading only the millisecond of events
        around it: ``ms_to_idx[k]`` is the first index with ``t >= 1000 k``, so for ``k =
        floor(rel_us / 1000)`` the answer lies in ``[ms_to_idx[k], ms_to_idx[k + 1]]``."""
        m = self._ms_to_idx
        n = self.num_events
        k = rel_us // 1000  # floor, exact for any integer
        if k < 0:
            return 0
        if k >= m.size:
            return n
        lo = int(m[k])
        hi = int(m[k + 1]) if k + 1 < m.size else n
        return lo + int(np.searchsorted(self._read_t_rel(lo, hi), rel_us, "left"))

    def _check_bound(self, i: int, rel_us: int) -> None:
        """Check that ``i`` is the first event at or after ``rel_us``: ``t[i - 1] < rel_us <= t[i]``
        (one read of two timestamps). An ``ms_to_idx`` that disagrees with ``t`` would
        otherwise return events from another time without any sign."""
        lo, hi = max(i - 1, 0), min(i + 1, self.num_events)
        t = self._read_t_rel(lo, hi)
        before_ok = i == 0 or int(t[0]) < rel_us
        after_ok = i == self.num_events or int(t[-1]) >= rel_us
        if not (before_ok and after_ok):
            raise CorruptFileError(
                f"{self.path}: ms_to_idx is inconsistent with events/t: it places t = {rel_us} us at event {i}, "
                f"but events {lo}..{hi - 1} have t = {t.tolist()} us (relative); the file is corrupt"
            )

    def slice(self, t_start_us: int, t_end_us: int) -> Events:
        """Events with ``t_start_us <= t < t_end_us`` (absolute microseconds).

        Returns raw integer coordinates (uint16), t int64 absolute, p int8 {0, 1}.
        Raises :class:`EventFileError` for reversed windows, windows outside the recording,
        unsorted timestamps or (``outside="error"``) coordinates outside the sensor.
        """
        t_start_us, t_end_us = int(t_start_us), int(t_end_us)
        check_window(self.path, t_start_us, t_end_us, self.time_range_us)
        i0, i1 = self.index_range(t_start_us, t_end_us)
        return self.read(i0, i1)

    def read(self, i0: int, i1: int) -> Events:
        """Events ``i0:i1`` by index, checked and converted to the canonical dtypes.

        The stored columns are read as they are; one pass (:func:`_check_window_columns`)
        then builds absolute int64 t and int8 {0, 1} p and finds the first unsorted,
        bad-polarity and outside-the-sensor event, so that the checks cost no extra passes.
        """
        with h5_errors(self.path, "reading events/t"):
            t_rel = np.asarray(self._cols["t"][i0:i1])
        with h5_errors(self.path, "reading events/x, events/y, events/p"):
            x = np.asarray(self._cols["x"][i0:i1])
            y = np.asarray(self._cols["y"][i0:i1])
            p = np.asarray(self._cols["p"][i0:i1])
        # an inferred size (max + 1) cannot be exceeded, so only a known size is checked
        h, w = self._sensor_size if self._sensor_size is not None else (65536, 65536)
        t = np.empty(t_rel.shape[0], np.int64)
        p_out = np.empty(p.shape[0], np.int8)
        first = np.full(3, -1, np.int64)
        _check_window_columns(t_rel, x, y, p, self.t_offset_us, h, w, p.dtype.kind == "b", t, p_out, first)
        descent, bad_polarity, outside = (int(v) for v in first)
        if descent >= 0:
            raise EventFileError(f"{self.path}: timestamps are not sorted (t decreases after event {descent - 1 + i0})")
        if bad_polarity >= 0:
            raise EventFileError(
                f"{self.path}: polarity values must be in {{0, 1}} or {{-1, +1}}, found {int(p.min())}..{int(p.max())}"
            )
        if outside >= 0:
            if self.outside == "error":
                raise EventFileError(
                    f"{self.path}: event {i0 + outside} at (x={int(x[outside])}, y={int(y[outside])}) is outside the "
                    f"{w}x{h} sensor; the file holds events beyond the frame size it was opened with "
                    "(open it with outside='drop' to discard them)"
                )
            keep = (x < w) & (y < h)
            if x.dtype.kind == "i" or y.dtype.kind == "i":
                keep &= (x >= 0) & (y >= 0)
            x, y, t, p_out = x[keep], y[keep], t[keep], p_out[keep]
        return Events(x.astype(np.uint16, copy=False), y.astype(np.uint16, copy=False), t, p_out)

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying file (idempotent)."""
        if self._h5 is not None:
            with contextlib.suppress(Exception):
                self._h5.close()
            self._h5 = None
        self._cols = {}

    def __repr__(self) -> str:
        return f"EventFile({str(self.path)!r}, num_events={self.num_events})"


@numba.njit(cache=True, nogil=True)
def _check_window_columns(
    t_rel, x, y, p, t_offset, height, width, p_is_bool, t_out, p_out, first
):  # pragma: no cover - numba
    """One pass over a window's stored columns: ``t_out = t_rel + t_offset`` (int64
    microseconds), ``p_out = p > 0`` (int8), and in ``first`` the index of the first event
    whose t is below its predecessor's, whose polarity is outside {-1, 0, 1} (not checked
    for bool ``p``) and whose (x, y) is outside the ``width`` x ``height`` sensor (-1: none).
    Comparisons are accumulated without branches in blocks (the loop vectorises); only a
    block that holds a problem is searched for the first index."""
    n = t_rel.shape[0]
    block = 4096
    for start in range(0, n, block):
        stop = min(n, start + block)
        tb, xb, yb, pb = t_rel[start:stop], x[start:stop], y[start:stop], p[start:stop]
        to, po = t_out[start:stop], p_out[start:stop]
        problems = 0
        for i in range(stop - start):
            ti = np.int64(tb[i])
            to[i] = ti + t_offset
            pi = pb[i]
            po[i] = np.int8(pi > 0)
            xi = np.int64(xb[i])
            yi = np.int64(yb[i])
            out = (xi < 0) | (xi >= width) | (yi < 0) | (yi >= height)
            pol = (not p_is_bool) & ((np.int64(pi) < -1) | (np.int64(pi) > 1))
            problems += np.int64(out | pol)
        if start > 0:
            problems += np.int64(t_rel[start] < t_rel[start - 1])
        for i in range(1, stop - start):
            problems += np.int64(tb[i] < tb[i - 1])
        if problems == 0:
            continue
        for i in range(start, stop):
            if first[0] < 0 and i > 0 and t_rel[i] < t_rel[i - 1]:
                first[0] = i
            if first[1] < 0 and not p_is_bool and (np.int64(p[i]) < -1 or np.int64(p[i]) > 1):
                first[1] = i
            xi = np.int64(x[i])
            yi = np.int64(y[i])
            if first[2] < 0 and (xi < 0 or xi >= width or yi < 0 or yi >= height):
                first[2] = i
        if first[0] >= 0 and first[1] >= 0 and first[2] >= 0:
            return


def _check_size(path: Path, size: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise EventFileError(f"{path}: sensor size must be (height, width), got {size!r}") from exc
    if h <= 0 or w <= 0 or h > 65535 or w > 65535:
        raise EventFileError(f"{path}: sensor size (height={h}, width={w}) out of range 1..65535")
    return (h, w)


def _size_from_attrs(path: Path, f: h5py.File) -> tuple[int, int] | None:
    for holder in (f.attrs, f["events"].attrs):
        if "height" in holder and "width" in holder:
            return _check_size(path, (holder["height"], holder["width"]))
    if "height" in f and "width" in f:
        return _check_size(path, (f["height"][()], f["width"][()]))
    return None


def open_events(
    path: str | os.PathLike, sensor_size: tuple[int, int] | None = None, outside: str = "error"
) -> EventFile:
    """Open an event file (``.h5``/``.hdf5``/``.npz``) for windowed reading.

    Args:
        path: the file.
        sensor_size: (height, width) in pixels; overrides the file's attributes.
        outside: "error" (default) or "drop" for events outside the sensor.

    Raises:
        EventFileError: missing/unreadable/truncated file, missing dataset, wrong dtypes or
            lengths, unsorted timestamps, a compression filter missing (names hdf5plugin).

    Example (three events written to a temporary DSEC-style file, then a window read back):

    >>> import tempfile
    >>> import numpy as np
    >>> from stereo_snn.events import Events, open_events, write_event_h5
    >>> tmp = tempfile.TemporaryDirectory()
    >>> events = Events(x=np.array([1, 5, 9], np.uint16), y=np.array([2, 2, 3], np.uint16),
    ...                 t=np.array([1000, 1500, 2500]), p=np.array([1, 0, 1], np.uint8))
    >>> path = write_event_h5(f"{tmp.name}/events.h5", events, sensor_size=(8, 16))
    >>> with open_events(path) as f:
    ...     print(f.sensor_size, f.slice(1000, 2000).t)  # microseconds, half-open window
    (8, 16) [1000 1500]
    >>> tmp.cleanup()
    """
    return EventFile(path, sensor_size=sensor_size, outside=outside)


# --------------------------------------------------------------------------------------------
# writing


def check_events_for_writing(
    path: Path, events: Events, sensor_size: tuple[int, int] | None = None, error: type[Exception] = EventFileError
) -> np.ndarray:
    """Check events before storing them; returns t as int64.

    Raises ``error`` naming ``path`` when lengths differ, t is not sorted or not integer, or a
    coordinate is negative, not an integer pixel, or does not fit uint16 (it would wrap
    silently). Coordinates are not checked against ``sensor_size`` here: the readers enforce
    the stored size on every window (and tests write such files on purpose).
    """
    x, y, t = (np.asarray(a) for a in events[:3])
    if len({len(np.asarray(a)) for a in events}) != 1:
        raise error(f"{path}: cannot write events whose x, y, t, p lengths differ")
    if t.dtype.kind not in "iu":
        raise error(f"{path}: cannot write events with t of dtype {t.dtype}; expected integer microseconds")
    t = t.astype(np.int64, copy=False)
    if t.size and np.any(t[1:] < t[:-1]):
        raise error(f"{path}: cannot write unsorted events (t must be non-decreasing)")
    if sensor_size is not None:
        _check_size(path, sensor_size)
    limit = np.iinfo(np.uint16).max
    for name, c in (("x", x), ("y", y)):
        if c.size == 0:
            continue
        if c.dtype.kind == "f" and not np.array_equal(c, np.floor(c)):
            raise error(f"{path}: cannot write non-integer (rectified?) {name} coordinates; store raw pixels")
        if c.min() < 0 or c.max() > limit:
            raise error(f"{path}: {name} coordinates {c.min()}..{c.max()} outside 0..{limit}")
    return t


def write_event_h5(
    path: str | os.PathLike,
    events: Events,
    t_offset_us: int = 0,
    sensor_size: tuple[int, int] | None = None,
    compression: str | None = "blosc-zstd",
    ms_to_idx: bool = True,
) -> Path:
    """Write a DSEC-style ``events.h5`` atomically.

    Layout: ``events/x`` uint16, ``events/y`` uint16, ``events/t`` uint32 (microseconds relative
    to ``t_offset_us``), ``events/p`` uint8, ``ms_to_idx`` uint64 (unless ``ms_to_idx=False``),
    ``t_offset`` int64; root attributes ``height``/``width`` when ``sensor_size`` is given.

    Args:
        events: absolute timestamps (int64 microseconds), sorted.
        t_offset_us: subtracted before storing; ``t - t_offset_us`` must fit uint32.
        sensor_size: (height, width) in pixels, stored as attributes.
        compression: "blosc-zstd" (DSEC, needs hdf5plugin), "gzip" or None.
    """
    path = Path(path)
    rel = check_events_for_writing(path, events, sensor_size) - int(t_offset_us)
    if rel.size and (rel[0] < 0 or rel[-1] > np.iinfo(np.uint32).max):
        raise EventFileError(
            f"{path}: t - t_offset must lie in [0, 2**32) us for uint32 storage, got {int(rel[0])}..{int(rel[-1])}"
        )
    if compression == "blosc-zstd":
        if hdf5plugin is None:
            raise EventFileError(f"{path}: Blosc/ZSTD compression needs hdf5plugin (pip install hdf5plugin)")
        comp: dict[str, Any] = dict(hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE))
    elif compression == "gzip":
        comp = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    elif compression is None:
        comp = {}
    else:
        raise EventFileError(f"{path}: unknown compression {compression!r} (use 'blosc-zstd', 'gzip' or None)")
    n = rel.size
    if n == 0:
        comp = {}
    chunk = {"chunks": (min(n, 1 << 16),)} if n else {}
    p = np.asarray(events.p)
    columns = {
        "x": np.asarray(events.x).astype(np.uint16),
        "y": np.asarray(events.y).astype(np.uint16),
        "t": rel.astype(np.uint32),
        "p": (p > 0).astype(np.uint8),
    }
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, arr in columns.items():
                f.create_dataset(f"events/{name}", data=arr, **chunk, **comp)
            if ms_to_idx:
                f.create_dataset("ms_to_idx", data=ms_to_idx_table(rel), **comp if n else {})
            f.create_dataset("t_offset", data=np.int64(t_offset_us))
            if sensor_size is not None:
                h, w = _check_size(path, sensor_size)
                f.attrs["height"], f.attrs["width"] = h, w
    return path


def write_event_npz(
    path: str | os.PathLike, events: Events, t_offset_us: int = 0, sensor_size: tuple[int, int] | None = None
) -> Path:
    """Write events to an ``.npz`` (x, y uint16; t int64 relative to ``t_offset_us``; p uint8), atomically."""
    path = Path(path)
    t = check_events_for_writing(path, events, sensor_size)
    arrays: dict[str, np.ndarray] = {
        "x": np.asarray(events.x).astype(np.uint16),
        "y": np.asarray(events.y).astype(np.uint16),
        "t": t - int(t_offset_us),
        "p": (np.asarray(events.p) > 0).astype(np.uint8),
        "t_offset": np.int64(t_offset_us),
    }
    if sensor_size is not None:
        arrays["height"], arrays["width"] = (np.int64(v) for v in _check_size(path, sensor_size))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path
