"""Generic event files: exact slicing against a numpy filter, writers, and every bad input."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

import stereo_snn.events.files as files_mod
from stereo_snn.errors import EventFileError
from stereo_snn.events import Events, open_events, write_event_h5, write_event_npz
from stereo_snn.events.files import bisect_time, ms_to_idx_table

T0 = 1_000_000_000


def assert_same(a: Events, b: Events) -> None:
    assert a.t.dtype == np.int64 and a.p.dtype == np.int8
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def write(kind: str, path, events, **kw):
    if kind == "npz":
        return write_event_npz(path, events, **kw)
    return write_event_h5(path, events, ms_to_idx=(kind == "h5-ms"), **kw)


KINDS = ["h5-ms", "h5-bisect", "npz"]
WINDOWS = [  # relative to T0: across ms boundaries, sub-ms, file start/end, partial overlap
    (0, 1),
    (999, 1001),
    (1500, 52_750),
    (123_456, 123_457),
    (100_000, 200_000),
    (-5_000, 10_000),
    (240_000, 260_000),
    (0, 250_000),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("offset", [0, T0 - 123_456])
def test_slices_match_brute_force(tmp_path, small_events, brute_force, kind, offset):
    path = tmp_path / ("ev.npz" if kind == "npz" else "ev.h5")
    write(kind, path, small_events, t_offset_us=offset, sensor_size=(24, 32))
    with open_events(path) as f:
        assert f.num_events == len(small_events)
        assert f.sensor_size == (24, 32)
        assert f.has_ms_to_idx == (kind == "h5-ms")
        start, end = f.time_range_us
        assert end == int(small_events.t[-1]) + 1
        assert start == min(offset, int(small_events.t[0]))
        for a, b in WINDOWS:
            got = f.slice(T0 + a, T0 + b)
            assert_same(got, brute_force(small_events, T0 + a, T0 + b))
        # every event exactly once when tiling the recording with 7 ms windows
        edges = np.arange(int(small_events.t[0]), end + 7000, 7000)
        total = sum(len(f.slice(int(a), int(b))) for a, b in zip(edges[:-1], edges[1:]))
        assert total == len(small_events)


def test_uint32_time_near_wrap_with_large_offset(tmp_path, brute_force):
    offset = 1_700_000_000_000_000  # a unix-epoch microsecond offset
    rel = np.array([0, 5, 1000, 2**31, 2**32 - 1001, 2**32 - 1000, 2**32 - 2, 2**32 - 1], dtype=np.int64)
    ev = Events(np.arange(8, dtype=np.uint16), np.zeros(8, np.uint16), rel + offset, np.ones(8, np.int8))
    path = tmp_path / "wrap.h5"
    write_event_h5(path, ev, t_offset_us=offset)
    with h5py.File(path, "r") as f:
        assert f["events/t"].dtype == np.uint32 and f["ms_to_idx"].dtype == np.uint64
        assert f["t_offset"].dtype == np.int64
    with open_events(path) as f:
        assert f.time_range_us == (offset, offset + 2**32)
        for a, b in [(2**32 - 1000, 2**32), (2**32 - 1001, 2**32 - 1), (0, 2**32), (2**31, 2**31 + 1)]:
            got = f.slice(offset + a, offset + b)
            assert_same(got, brute_force(ev, offset + a, offset + b))
            assert got.t.min() >= offset


def test_writer_rejects_times_that_do_not_fit_uint32(tmp_path, small_events):
    with pytest.raises(EventFileError, match="2\\*\\*32"):
        write_event_h5(tmp_path / "x.h5", small_events, t_offset_us=int(small_events.t[0]) + 1)
    assert not (tmp_path / "x.h5").exists()


def test_ms_to_idx_matches_dsec_definition():
    t = np.array([0, 500, 2100, 5000, 5000, 7100, 7200, 7200, 8100, 9000])
    np.testing.assert_array_equal(ms_to_idx_table(t), [0, 2, 2, 3, 3, 3, 5, 5, 8, 9])


def test_bisect_time_reads_few_elements(monkeypatch):
    t = np.sort(np.random.default_rng(0).integers(0, 10**9, 200_000))
    reads = []

    def read(i0, i1):
        reads.append(i1 - i0)
        return t[i0:i1]

    for value in (-1, 0, int(t[77_777]), int(t[-1]), int(t[-1]) + 1):
        reads.clear()
        assert bisect_time(read, t.size, value) == np.searchsorted(t, value)
        assert sum(reads) < 2 * files_mod.BISECT_BLOCK


def test_empty_window_inside_recording_is_empty(tmp_path):
    ev = Events(np.zeros(2, np.uint16), np.zeros(2, np.uint16), np.array([T0, T0 + 10_000]), np.zeros(2, np.int8))
    write_event_h5(tmp_path / "e.h5", ev, t_offset_us=T0)
    with open_events(tmp_path / "e.h5") as f:
        got = f.slice(T0 + 100, T0 + 5000)
    assert len(got) == 0 and got.t.dtype == np.int64


def test_sensor_size_inferred_and_polarity_pm1(tmp_path):
    rel = np.arange(10, dtype=np.int64)
    np.savez(tmp_path / "raw.npz", x=np.arange(10), y=np.arange(10) // 2, t=rel * 10, p=np.where(rel % 2, 1, -1))
    with open_events(tmp_path / "raw.npz") as f:
        assert f.sensor_size == (5, 10)
        got = f.slice(0, 100)
    np.testing.assert_array_equal(got.p, (rel % 2).astype(np.int8))
    assert got.x.dtype == np.uint16


def test_plain_h5_without_offset_or_index(tmp_path, brute_force, small_events):
    path = tmp_path / "plain.hdf5"
    with h5py.File(path, "w") as f:
        for k in "xytp":
            f[f"events/{k}"] = getattr(small_events, k).astype(np.int64)
    with open_events(path, sensor_size=(24, 32)) as f:
        assert not f.has_ms_to_idx
        assert f.time_range_us == (int(small_events.t[0]), int(small_events.t[-1]) + 1)
        assert_same(f.slice(T0 + 777, T0 + 99_999), brute_force(small_events, T0 + 777, T0 + 99_999))


@pytest.mark.parametrize("comp", [None, "gzip"])
def test_uncompressed_and_gzip_writers(tmp_path, small_events, brute_force, comp):
    path = tmp_path / f"{comp}.h5"
    write_event_h5(path, small_events, t_offset_us=T0, compression=comp)
    with open_events(path) as f:
        assert_same(f.slice(T0, T0 + 50_000), brute_force(small_events, T0, T0 + 50_000))


def test_unknown_compression_is_refused(tmp_path, small_events):
    with pytest.raises(EventFileError, match="unknown compression"):
        write_event_h5(tmp_path / "z.h5", small_events, t_offset_us=T0, compression="lzma")


def test_blosc_layout_is_dsec_like(tmp_path, small_events):
    path = tmp_path / "ev.h5"
    write_event_h5(path, small_events, t_offset_us=T0)
    with h5py.File(path, "r") as f:
        assert {k: f[f"events/{k}"].dtype for k in "xytp"} == {
            "x": np.uint16,
            "y": np.uint16,
            "t": np.uint32,
            "p": np.uint8,
        }
        assert 32001 in [
            f["events/t"].id.get_create_plist().get_filter(i)[0]
            for i in range(f["events/t"].id.get_create_plist().get_nfilters())
        ]


# ------------------------------------------------------------------------------------ bad input


def test_missing_file(tmp_path):
    with pytest.raises(EventFileError, match="not found") as info:
        open_events(tmp_path / "nope.h5")
    assert str(tmp_path / "nope.h5") in str(info.value)


@pytest.mark.parametrize("name", ["junk.h5", "junk.npz"])
def test_not_hdf5_or_npz(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not an event file\n" * 10)
    with pytest.raises(EventFileError, match=name):
        open_events(tmp_path / name)


def test_unsupported_suffix(tmp_path):
    (tmp_path / "ev.txt").write_text("1 2 3 4\n")
    with pytest.raises(EventFileError, match="unsupported"):
        open_events(tmp_path / "ev.txt")


@pytest.mark.parametrize("keep_fraction", [0.5, 0.9])
def test_truncated_h5(tmp_path, make_events, keep_fraction):
    ev = make_events(200_000, T0, 2_000_000, 480, 640, seed=5)
    path = tmp_path / "ev.h5"
    write_event_h5(path, ev, t_offset_us=T0)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(EventFileError, match=str(path)):
        with open_events(path) as f:
            f.slice(T0, T0 + 2_000_000)


def test_truncated_npz(tmp_path, small_events):
    path = tmp_path / "ev.npz"
    write_event_npz(path, small_events)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(EventFileError, match="ev.npz"):
        open_events(path)


@pytest.mark.parametrize("missing", ["x", "t", "p"])
def test_missing_dataset(tmp_path, small_events, missing):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        for k in "xytp":
            if k != missing:
                f[f"events/{k}"] = getattr(small_events, k)
    with pytest.raises(EventFileError, match=f"missing dataset events/{missing}"):
        open_events(path)
    np.savez(tmp_path / "m.npz", **{k: getattr(small_events, k) for k in "xytp" if k != missing})
    with pytest.raises(EventFileError, match=f"missing array '{missing}'"):
        open_events(tmp_path / "m.npz")


def test_float_timestamps_rejected(tmp_path, small_events):
    np.savez(tmp_path / "f.npz", x=small_events.x, y=small_events.y, t=small_events.t / 1e6, p=small_events.p)
    with pytest.raises(EventFileError, match="t has dtype float64; expected integers"):
        open_events(tmp_path / "f.npz")


def test_lengths_differ(tmp_path, small_events):
    np.savez(tmp_path / "l.npz", x=small_events.x[:-1], y=small_events.y, t=small_events.t, p=small_events.p)
    with pytest.raises(EventFileError, match="lengths differ"):
        open_events(tmp_path / "l.npz")


def test_wrong_shape(tmp_path, small_events):
    np.savez(tmp_path / "s.npz", x=small_events.x.reshape(-1, 1), y=small_events.y, t=small_events.t, p=small_events.p)
    with pytest.raises(EventFileError, match="x must be 1-D"):
        open_events(tmp_path / "s.npz")


def test_unsorted_timestamps_detected_on_open_and_on_slice(tmp_path, small_events):
    t = small_events.t.copy()
    t[::-1].sort()  # reversed: caught by the sample at open
    np.savez(tmp_path / "rev.npz", x=small_events.x, y=small_events.y, t=t, p=small_events.p)
    with pytest.raises(EventFileError, match="not sorted"):
        open_events(tmp_path / "rev.npz")
    t = small_events.t.copy()
    t[1001], t[1002] = t[1002] + 1, t[1001]  # a local swap the sample misses
    np.savez(tmp_path / "swap.npz", x=small_events.x, y=small_events.y, t=t, p=small_events.p)
    with open_events(tmp_path / "swap.npz") as f:
        with pytest.raises(EventFileError, match="not sorted"):
            f.slice(int(t[0]), int(t[-1]) + 1)


def test_coordinates_outside_sensor_error_or_drop(tmp_path, small_events, brute_force):
    path = tmp_path / "o.h5"
    write_event_h5(path, small_events, t_offset_us=T0, sensor_size=(20, 32))  # y reaches 23
    with open_events(path) as f:
        with pytest.raises(EventFileError, match="outside the 32x20 sensor"):
            f.slice(T0, T0 + 250_000)
    with open_events(path, outside="drop") as f:
        got = f.slice(T0, T0 + 250_000)
    ref = brute_force(small_events, T0, T0 + 250_000)
    keep = ref.y < 20
    assert_same(got, Events(*(a[keep] for a in ref)))
    with pytest.raises(EventFileError, match="outside must be"):
        open_events(path, outside="clip")


@pytest.mark.parametrize("window", [(0, 0), (10, 5), (-10_000, -1), (250_000, 300_000), (10**9, 10**9 + 1)])
def test_bad_windows(tmp_path, small_events, window):
    path = tmp_path / "w.h5"
    write_event_h5(path, small_events, t_offset_us=T0)
    with open_events(path) as f:
        end = f.time_range_us[1]
        a, b = window
        if a == 250_000:
            a, b = end - T0, end - T0 + 100  # starts exactly at the (exclusive) end
        with pytest.raises(EventFileError, match=r"w\.h5: .*window"):
            f.slice(T0 + a, T0 + b)


def test_empty_file_has_no_windows(tmp_path):
    empty = Events(np.zeros(0, np.uint16), np.zeros(0, np.uint16), np.zeros(0, np.int64), np.zeros(0, np.int8))
    write_event_h5(tmp_path / "empty.h5", empty, t_offset_us=T0)
    with open_events(tmp_path / "empty.h5") as f:
        assert f.num_events == 0
        with pytest.raises(EventFileError, match="holds no events"):
            f.slice(T0, T0 + 1)


def test_missing_blosc_filter_names_hdf5plugin(tmp_path, small_events, monkeypatch):
    path = tmp_path / "b.h5"
    write_event_h5(path, small_events, t_offset_us=T0)
    real = h5py.h5z.filter_avail
    monkeypatch.setattr(h5py.h5z, "filter_avail", lambda code: False if code == 32001 else real(code))
    with pytest.raises(EventFileError, match="hdf5plugin") as info:
        open_events(path)
    assert "Blosc" in str(info.value) and str(path) in str(info.value)


def test_blosc_decode_failure_message_names_hdf5plugin():
    with pytest.raises(EventFileError, match="hdf5plugin"):
        with files_mod.h5_errors(files_mod.Path("f.h5"), "reading events/t"):
            raise OSError("Can't synchronously read data (required filter 'blosc' is not registered)")


def test_readers_never_modify_files(tmp_path, small_events, file_digest):
    paths = [tmp_path / "a.h5", tmp_path / "b.npz"]
    write_event_h5(paths[0], small_events, t_offset_us=T0)
    write_event_npz(paths[1], small_events, t_offset_us=T0)
    before = [file_digest(p) for p in paths]
    for p in paths:
        with open_events(p) as f:
            f.slice(T0, T0 + 100_000)
            _ = f.sensor_size
    assert [file_digest(p) for p in paths] == before


def test_importing_events_does_not_import_torch():
    code = "import sys, stereo_snn.events; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _with(events: Events, **fields) -> Events:
    # Events._replace cannot be used: Events.__len__ counts events, which NamedTuple._make checks
    return Events(**{**dict(zip(Events._fields, events)), **fields})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: _with(e, x=e.x.astype(np.int32) - 1), "x coordinates -1..30 outside 0..65535"),
        (lambda e: _with(e, y=e.y.astype(np.int64) + 65535), "y coordinates 65535..65558 outside 0..65535"),
        (lambda e: _with(e, x=e.x + np.float32(0.5)), "non-integer"),
        (lambda e: _with(e, t=e.t / 1.0), "t of dtype float64"),
        (lambda e: _with(e, t=e.t[::-1].copy()), "unsorted"),
        (lambda e: _with(e, p=e.p[:-1]), "lengths differ"),
    ],
)
@pytest.mark.parametrize("writer", [write_event_h5, write_event_npz])
def test_writers_reject_bad_events(tmp_path, small_events, writer, change, message):
    path = tmp_path / ("bad.h5" if writer is write_event_h5 else "bad.npz")
    with pytest.raises(EventFileError, match=message):
        writer(path, change(small_events), t_offset_us=T0, sensor_size=(24, 32))
    assert not path.exists()


def test_event_file_pickles_by_reopening(tmp_path, small_events):
    import pickle

    write_event_h5(tmp_path / "p.h5", small_events, t_offset_us=T0)
    with open_events(tmp_path / "p.h5", sensor_size=(30, 40), outside="drop") as f:
        clone = pickle.loads(pickle.dumps(f))
        assert (clone.sensor_size, clone.outside) == ((30, 40), "drop")
        np.testing.assert_array_equal(clone.slice(T0, T0 + 9_000).t, f.slice(T0, T0 + 9_000).t)
        clone.close()
