"""Inference: DSEC layout PNGs named by entry index, extras, skipped windows, generic files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stereo_snn.errors import OutputError
from stereo_snn.events import validate_submission, write_event_npz, zip_submission
from stereo_snn.stereo.data import DSECSource, Entry, open_source
from stereo_snn.stereo.infer import (
    BEFORE_FIRST_EVENT,
    NO_GROUND_TRUTH,
    EmptyWindowError,
    Predictor,
    before_first_event,
    infer_source,
    skip_summary,
)
from stereo_snn.stereo.network import load_model


@pytest.fixture(scope="module")
def predictor(trained_run):
    loaded = load_model(trained_run / "checkpoints" / "best.pt")
    return Predictor(loaded.model, loaded.config, "cpu")


def test_infer_dsec_layout_named_by_gt_index(predictor, sim_root, tmp_path):
    src = DSECSource(sorted(sim_root.iterdir())[0])
    entries = [e for e in src.entries() if e.gt_row and e.gt_row >= 1]
    report = infer_source(
        predictor,
        src,
        tmp_path,
        entries=entries,
        npy=True,
        depth=True,
        preview=True,
        progress=False,
        log=lambda s: None,
    )
    names = sorted(p.name for p in (tmp_path / src.name).glob("*.png"))
    assert names == [f"{e.index:06d}.png" for e in entries] and not report.skipped
    png = cv2.imread(str(tmp_path / src.name / names[0]), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (48, 64)
    disp = np.load(tmp_path / src.name / "extra" / f"{entries[0].index:06d}.npy")
    assert np.allclose(png / 256.0, disp, atol=1 / 256)
    depth = np.load(tmp_path / src.name / "extra" / f"{entries[0].index:06d}_depth.npy")
    fb = src.focal_baseline
    ok = disp > 0.5
    assert np.allclose(depth[ok], fb / disp[ok], rtol=1e-3)
    assert (tmp_path / src.name / "extra" / f"{entries[0].index:06d}_color.png").is_file()
    # the PNGs form a valid submission for these entries (the zip holds only the PNGs)
    zip_path = zip_submission(tmp_path, tmp_path / "sub.zip")
    assert validate_submission(zip_path, {src.name: [e.index for e in entries]}, shape=(48, 64)) == []


def test_failing_window_is_reported_and_the_rest_continue(predictor, sim_root, tmp_path):
    src = DSECSource(sorted(sim_root.iterdir())[0])
    start, end = src.time_range_us()
    entries = [Entry(7, start + 150_000), Entry(8, end + 500_000), Entry(9, start + 250_000)]
    messages: list[str] = []
    report = infer_source(predictor, src, tmp_path, entries=entries, progress=False, log=messages.append)
    assert [p.name for p in report.written] == ["000007.png", "000009.png"]
    assert [s["index"] for s in report.skipped] == [8]
    assert "outside the recording" in report.skipped[0]["reason"] and messages


def test_window_before_the_first_event_is_a_quiet_skip(predictor, sim_root, tmp_path):
    src = DSECSource(sorted(sim_root.iterdir())[0])
    start, _ = src.time_range_us()
    first, second = src.entries()[:2]
    assert first.t_us <= start  # the first ground-truth map has no events before it
    messages: list[str] = []
    report = infer_source(predictor, src, tmp_path, entries=[first, second], progress=False, log=messages.append)
    assert [p.name for p in report.written] == [f"{second.index:06d}.png"]
    assert report.skipped == [
        {"sequence": src.name, "index": first.index, "t_us": first.t_us, "reason": BEFORE_FIRST_EVENT}
    ]
    assert messages == []  # recorded and counted, no per-entry line
    assert skip_summary(report.skipped) == "skipped 1 (window before the first event)"


def test_before_first_event_and_skip_summary():
    # window [t - 50 ms, t) against a recording starting at 1 s
    assert before_first_event(1_000_000, 50_000, 1_000_000)
    assert not before_first_event(1_000_001, 50_000, 1_000_000)
    assert before_first_event(1_040_000, 50_000, 1_000_000, whole_window=True)  # partly before
    assert not before_first_event(1_050_000, 50_000, 1_000_000, whole_window=True)
    before = {"reason": BEFORE_FIRST_EVENT}
    assert skip_summary([]) == "skipped 0"
    assert skip_summary([before, before]) == "skipped 2 (window before the first event)"
    assert skip_summary([before, {"reason": NO_GROUND_TRUTH}, {"reason": "x.h5: corrupt"}]) == (
        "skipped 3 (1 window before the first event, 1 no valid ground-truth pixel, 1 failed, listed above)"
    )
    assert skip_summary([{"reason": "x.h5: corrupt"}]) == "skipped 1 (1 failed, listed above)"


def test_unwritable_output_is_an_error(predictor, sim_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    src = DSECSource(sorted(sim_root.iterdir())[0])
    with pytest.raises(OutputError):
        infer_source(predictor, src, blocker / "out", progress=False)


def test_infer_generic_event_files_with_an_empty_window(predictor, sim_root, tmp_path):
    seq = DSECSource(sorted(sim_root.iterdir())[1])
    t0, t1 = seq.time_range_us()
    paths = []
    for cam in ("left", "right"):
        # generic files hold already rectified events: store the rectified pixels
        ev = seq.events(cam, t0, t1)
        keep = np.ones(len(ev), bool)
        if cam == "right":  # a gap: no right-camera events in [t0 + 140 ms, t0 + 260 ms)
            keep = (ev.t < t0 + 140_000) | (ev.t >= t0 + 260_000)
        ev = type(ev)(
            np.clip(np.rint(ev.x[keep]), 0, 63).astype(np.uint16),
            np.clip(np.rint(ev.y[keep]), 0, 47).astype(np.uint16),
            ev.t[keep],
            ev.p[keep],
        )
        paths.append(tmp_path / f"{cam}.npz")
        write_event_npz(paths[-1], ev, sensor_size=(48, 64))
    src = open_source(paths[0], right=paths[1], window_us=predictor.window_us)
    entries = src.entries_for([t0 + 100_000, t0 + 200_000, t0 + 300_000 - 1])
    with pytest.raises(EmptyWindowError, match="right camera"):
        predictor.window(src, entries[1])
    report = infer_source(predictor, src, tmp_path / "out", entries=entries, progress=False, log=lambda s: None)
    assert sorted(p.name for p in report.written) == ["000000.png", "000002.png"]
    assert [s["index"] for s in report.skipped] == [1] and "no events" in report.skipped[0]["reason"]
