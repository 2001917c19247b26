"""Every picture function writes a readable image of the right size; animations decode."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stereo_snn import viz
from stereo_snn.errors import ConfigError, OutputError
from stereo_snn.events.recording import Events

H, W = 48, 72


@pytest.fixture()
def scene():
    rng = np.random.default_rng(3)
    xx = np.mgrid[0:H, 0:W][1]
    gt = (5 + 20 * xx / W).astype(np.float32)
    gt[:4] = 0  # no ground truth in the top rows
    pred = gt + rng.normal(0, 0.8, gt.shape).astype(np.float32)
    n = 3000
    ev = Events(
        rng.uniform(0, W, n).astype(np.float32),
        rng.uniform(0, H, n).astype(np.float32),
        np.sort(rng.integers(0, 50_000, n)).astype(np.int64),
        rng.integers(0, 2, n).astype(np.int8),
    )
    return pred, gt, ev


def test_colorize_range_and_invalid():
    a = np.array([[0.0, 5.0, 10.0, np.nan]])
    img = viz.colorize(a, 0, 10, cmap="turbo", invalid_mask=np.array([[False, True, False, False]]))
    assert img.shape == (1, 4, 3) and img.dtype == np.uint8
    assert tuple(img[0, 1]) == viz.INVALID_BGR and tuple(img[0, 3]) == viz.INVALID_BGR
    lo = cv2.applyColorMap(np.array([[0]], np.uint8), cv2.COLORMAP_TURBO)[0, 0]
    hi = cv2.applyColorMap(np.array([[255]], np.uint8), cv2.COLORMAP_TURBO)[0, 0]
    assert (img[0, 0] == lo).all() and (img[0, 2] == hi).all()
    assert (viz.colorize(a, 0, 10, cmap="turbo", reverse=True)[0, 0] == hi).all()
    with pytest.raises(ConfigError, match="colour map"):
        viz.colorize(a, cmap="rainbow-ish")


def test_events_image_colours(scene):
    ev = Events(np.array([1.0, 2.0, 3.0, 3.0]), np.array([1.0, 1.0, 1.0, 1.0]), np.arange(4), np.array([1, 0, 1, 0]))
    img = viz.events_image(ev, 4, 5)
    assert img.shape == (4, 5, 3)
    assert tuple(img[0, 0]) == (255, 255, 255)  # no event: white
    b, g, r = img[1, 1].astype(int)
    assert r > b and r > g  # ON: red
    b, g, r = img[1, 2].astype(int)
    assert b > r  # OFF: blue
    assert img[1, 3].max() < 128  # balanced ON/OFF: dark


def test_every_picture_writes_readable_files(scene, tmp_path):
    pred, gt, ev = scene
    ev_img = viz.events_image(ev, H, W)
    err, err_img = viz.error_map(pred, gt)
    assert err.dtype == np.float32 and np.isnan(err[:4]).all() and np.isfinite(err[4:]).all()
    depth = viz.depth_colormap(19.94 / np.maximum(pred, 1))
    for name, img in {"ev": ev_img, "err": err_img, "depth": depth, "disp": viz.colorize(pred, 0, 30)}.items():
        out = viz.save_image(tmp_path / f"{name}.png", img)
        back = cv2.imread(str(out))
        assert back is not None and back.shape == (H, W, 3)
        assert np.array_equal(back, img)
    png16 = viz.save_image(tmp_path / "d16.png", np.rint(pred.clip(0) * 256).astype(np.uint16))
    assert cv2.imread(str(png16), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    panel = viz.panel_image([ev_img, depth], ["Events", "Depth"])
    assert panel.shape[1] == 2 * W + 4 and panel.shape[0] > H
    big = viz.panel_image([ev_img, depth], ["Events", "Depth"], min_height=2 * H + 1)  # x3, sharp
    assert big.shape[1] == 6 * W + 4 and big.shape[0] > 3 * H
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_figures_have_panels_and_colour_bars(scene, tmp_path):
    pred, gt, ev = scene
    full = viz.disparity_figure(
        pred,
        gt,
        viz.events_image(ev, H, W),
        tmp_path / "panel.png",
        max_disp=32,
        depth=19.94 / np.maximum(pred, 1),
        title="test",
    )
    no_gt = viz.disparity_figure(pred, None, None, tmp_path / "pred.png", max_disp=32)
    a, b = cv2.imread(str(full)), cv2.imread(str(no_gt))
    assert a is not None and b is not None
    assert a.shape[1] > 3.5 * b.shape[1]  # five panels against one
    vox = viz.voxel_figure(np.random.default_rng(0).normal(size=(7, H, W)), tmp_path / "vox.png")
    assert cv2.imread(str(vox)).shape[1] > 4 * W
    with pytest.raises(ConfigError, match="max_disp"):
        viz.disparity_figure(pred, gt, None, tmp_path / "x.png", max_disp=0)
    with pytest.raises(ConfigError, match="does not match"):
        viz.disparity_figure(pred, gt[:10], None, tmp_path / "x.png", max_disp=8)
    with pytest.raises(ConfigError, match="bins"):
        viz.voxel_figure(np.zeros((2, 2, 2, 2)), tmp_path / "v.png")


@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_animation_decodes(scene, tmp_path, ext):
    pred, _, _ = scene
    frames = [viz.colorize(pred + k, 0, 40) for k in range(4)]
    out = viz.save_animation(frames, tmp_path / f"anim{ext}", fps=5)
    if ext == ".gif":
        from PIL import Image

        with Image.open(out) as im:
            assert im.n_frames == 4 and im.size == (W, H)
    else:
        cap = cv2.VideoCapture(str(out))
        decoded = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (H, W, 3)
            decoded += 1
        cap.release()
        assert decoded == 4


def test_bad_outputs(tmp_path, scene):
    pred, _, _ = scene
    img = viz.colorize(pred)
    with pytest.raises(ConfigError, match=".mp4 or .gif"):
        viz.save_animation([img], tmp_path / "a.avi")
    with pytest.raises(ConfigError, match="frame 1"):
        viz.save_animation([img, img[:10]], tmp_path / "a.gif")
    with pytest.raises(ConfigError, match="no frames"):
        viz.save_animation([], tmp_path / "a.mp4")
    with pytest.raises(OutputError):
        viz.save_image(tmp_path / "x.unknownext", img)
    with pytest.raises(OutputError, match="uint8"):
        viz.save_image(tmp_path / "x.png", pred)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError):
        viz.save_image(blocker / "x.png", img)


class _DotSource:
    """A minimal stereo source: random-dot events every window, a constant-disparity plane
    as ground truth (entry 0 has no window: it starts before the recording)."""

    name = "dots"
    height, width = H, W
    focal_baseline = 20.0

    def __init__(self):
        from stereo_snn.errors import DatasetError

        self._error = DatasetError
        self.gt = np.full((H, W), 6.0, np.float32)
        self.gt[:, :8] = 0

    def entries(self):
        from types import SimpleNamespace

        return [SimpleNamespace(index=2 * i, t_us=50_000 * i) for i in range(4)]

    def window(self, entry, window_us):
        if entry.t_us - window_us < 0:
            raise self._error(f"window before {entry.t_us} us starts before the recording")
        rng = np.random.default_rng(entry.index)
        n = 800
        ev = Events(
            rng.uniform(0, W, n).astype(np.float32),
            rng.uniform(0, H, n).astype(np.float32),
            np.sort(rng.integers(entry.t_us - window_us, entry.t_us, n)),
            rng.integers(0, 2, n).astype(np.int8),
        )
        return ev, ev

    def disparity(self, entry):
        return self.gt


def test_visualize_sequence_all_items(tmp_path):
    from stereo_snn.events.dsec import write_disparity_png

    src = _DotSource()
    preds = tmp_path / "pred" / "dots"
    for idx in (2, 4):  # no prediction for entry 6: drawn without one
        write_disparity_png(preds / f"{idx:06d}.png", src.gt + 0.5)
    report = viz.visualize_sequence(
        src,
        tmp_path / "out",
        what=viz.VISUALIZE_ITEMS,
        window_us=50_000,
        prediction_dir=tmp_path / "pred",
        animation=tmp_path / "out" / "a.gif",
        bins=3,
        progress=False,
    )
    assert [s["index"] for s in report.skipped] == [0]
    assert report.max_disp == 8.0  # 1.05 * 6.5 px (prediction) rounded up to a multiple of 8
    names = {p.relative_to(tmp_path / "out").as_posix() for p in report.written}
    for idx in ("000002", "000004", "000006"):
        for item in ("events", "voxel", "disparity_gt", "depth", "panel"):
            assert f"{item}/{idx}.png" in names
    assert "disparity/000004.png" in names and "error/000004.png" in names
    assert "disparity/000006.png" not in names and "error/000006.png" not in names
    for p in report.written:
        assert cv2.imread(str(p)) is not None
    assert cv2.imread(str(tmp_path / "out" / "events" / "000002.png")).shape == (H, W, 3)
    err = cv2.imread(str(tmp_path / "out" / "error" / "000002.png"))
    assert err.shape == (H, W, 3) and tuple(err[0, 0]) == viz.INVALID_BGR  # no gt there
    from PIL import Image

    with Image.open(report.animation) as im:
        assert im.n_frames == 3


def test_visualize_sequence_bad_options(tmp_path):
    src = _DotSource()
    with pytest.raises(ConfigError, match="unknown item"):
        viz.visualize_sequence(src, tmp_path, what=["events", "colours"], progress=False)
    with pytest.raises(ConfigError, match="--prediction"):
        viz.visualize_sequence(src, tmp_path, what=["error"], progress=False)
    from stereo_snn.errors import DatasetError

    with pytest.raises(DatasetError, match="prediction folder"):
        viz.visualize_sequence(src, tmp_path, prediction_dir=tmp_path / "missing", progress=False)
    src.focal_baseline = None
    with pytest.raises(ConfigError, match="calibrated"):
        viz.visualize_sequence(src, tmp_path, what=["depth"], progress=False)
    with pytest.raises(ConfigError, match="no windows"):
        viz.visualize_sequence(src, tmp_path, entries=[], progress=False)


def test_visualize_command_end_to_end(sim_root, tmp_path, capsys):
    from stereo_snn.cli import main
    from stereo_snn.events.dsec import DSECSequence, write_disparity_png

    seq_dir = sorted(p for p in sim_root.iterdir() if p.is_dir())[0]
    with DSECSequence(seq_dir) as seq:
        h, w = seq.height, seq.width
        stamps = seq.disparity_timestamps_us()
        # an `infer`-style prediction folder: OUT/<seq>/<index>.png, here the truth + 1 px
        for row in range(1, len(stamps)):
            gt = seq.disparity(row)
            write_disparity_png(
                tmp_path / "pred" / seq.name / f"{seq.disparity_file_index(row):06d}.png", np.where(gt > 0, gt + 1.0, 0)
            )
    out = tmp_path / "viz"
    code = main(
        [
            "visualize",
            str(seq_dir),
            "--out",
            str(out),
            "--what",
            "events,disparity,depth,error,panel",
            "--prediction",
            str(tmp_path / "pred"),
            "--animation",
            str(out / "seq.mp4"),
            "--no-progress",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    # the first ground-truth map has no events before it: counted, no line of its own
    assert "skipped 1 (window before the first event)" in text and "skipped #0" not in text
    drawn = len(stamps) - 1
    for item in ("events", "disparity", "disparity_gt", "depth", "error", "panel"):
        files = sorted((out / item).glob("*.png"))
        assert len(files) == drawn, item
        assert cv2.imread(str(files[0])) is not None
    assert cv2.imread(str(out / "events" / f"{2:06d}.png")).shape == (h, w, 3)
    cap = cv2.VideoCapture(str(out / "seq.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == drawn
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape[0] >= 240  # small recordings are enlarged

    # user timestamps, a generic pair of event files, and bad options
    code = main(
        [
            "visualize",
            str(seq_dir),
            "--out",
            str(tmp_path / "ts"),
            "--timestamps",
            f"{int(stamps[2])}",
            "--what",
            "events",
            "--no-progress",
        ]
    )
    assert code == 0 and len(list((tmp_path / "ts" / "events").glob("*.png"))) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--what", "events,rainbow"], "unknown item"),
        (["--what", "error"], "--prediction"),
        (["--animation", "x.avi"], ".gif or .mp4"),
        (["--window-ms", "0"], "--window-ms"),
        (["--source", "nope"], "no such file"),
    ],
)
def test_visualize_command_bad_options(sim_root, tmp_path, capsys, options, message):
    from stereo_snn.cli import main

    seq_dir = sorted(p for p in sim_root.iterdir() if p.is_dir())[0]
    source = str(tmp_path / "nope") if options[0] == "--source" else str(seq_dir)
    extra = [] if options[0] == "--source" else options
    assert main(["visualize", source, "--out", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_visualize_command_mvsec(tmp_path, capsys):
    from stereo_snn.cli import main
    from stereo_snn.events.mvsec import write_mvsec_recording
    from stereo_snn.events.simulator import SimConfig, simulate_stereo

    rec = simulate_stereo(
        SimConfig.from_dict({"name": "sim_flying1", "height": 32, "width": 48, "duration_ms": 160.0, "seed": 5})
    )
    data = write_mvsec_recording(rec, tmp_path, "sim_flying")
    out = tmp_path / "viz"
    assert main(["visualize", str(data), "--out", str(out), "--what", "events,disparity,depth", "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    depth = sorted((out / "depth").glob("*.png"))
    assert depth and len(depth) == len(sorted((out / "disparity_gt").glob("*.png")))
    assert cv2.imread(str(depth[0])).shape == (32, 48, 3)


def test_visualize_dsec_without_calibration(sim_root, tmp_path, capsys):
    """A missing calibration only matters for depth: other pictures are drawn, depth
    windows are reported as skipped with the reason."""
    import shutil

    from stereo_snn.cli import main

    seq = tmp_path / "seq"
    shutil.copytree(sorted(p for p in sim_root.iterdir() if p.is_dir())[0], seq)
    shutil.rmtree(seq / "calibration")
    assert (
        main(["visualize", str(seq), "--out", str(tmp_path / "a"), "--what", "events,disparity", "--no-progress"]) == 0
    )
    assert len(list((tmp_path / "a" / "events").glob("*.png"))) >= 2
    capsys.readouterr()
    assert main(["visualize", str(seq), "--out", str(tmp_path / "b"), "--what", "depth", "--no-progress"]) == 1
    assert "cam_to_cam.yaml" in capsys.readouterr().out
