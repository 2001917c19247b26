"""Simulator scene parts: slanted planes, per-pixel depth order, ground plane, thin structures,
disparity coverage, rig motions, hot pixels and the texture photographs (tiny sizes, CPU)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from stereo_snn.events.simulator import (
    EventGenerator,
    Scene,
    SimConfig,
    build_scene,
    bundled_photos,
    make_texture,
    scene_for,
    simulate_stereo,
)
from stereo_snn.events.simulator.api import MAX_MOTION_PX_PER_FRAME, auto_render_rate
from stereo_snn.events.simulator.layouts import make_rig_motion
from stereo_snn.events.simulator.scene import RigMotion, mip_levels

H, W = 40, 56
FX, BASE = 50.0, 0.5


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _scene(surfaces: list[dict], rig: RigMotion | None = None, max_d: float = 25.0) -> Scene:
    """A hand-made scene: each surface a dict with origin, e1, e2, shape (id) and size."""
    n = len(surfaces)
    rng = np.random.default_rng(0)
    textures = np.stack([mip_levels(make_texture("noise", 32, rng)) for _ in range(n)])
    get = lambda key, default: np.array([s.get(key, default) for s in surfaces], np.float64)  # noqa: E731
    return Scene(
        height=H,
        width=W,
        fx=FX,
        cx=(W - 1) / 2,
        cy=(H - 1) / 2,
        baseline_m=BASE,
        max_disparity=max_d,
        origin=get("origin", None),
        vel=get("vel", (0.0, 0.0, 0.0)),
        e1=get("e1", None),
        e2=get("e2", None),
        spin=get("spin", 0.0),
        size=get("size", (0.0, 0.0, 0.0, 0.0)),
        shape_ids=np.array([s.get("shape", 0) for s in surfaces], np.int64),
        texel_m=get("texel_m", 0.05),
        gain=np.full(n, 0.7),
        bias=np.full(n, 0.1),
        tex_ids=np.arange(n, dtype=np.int64),
        textures=textures,
        rig=rig or RigMotion.still(),
    )


def _turning_rig() -> RigMotion:
    z = np.zeros(3)
    return RigMotion(
        "test",
        vel=np.array([0.1, -0.05, 0.2]),
        osc_amp=z,
        osc_freq=np.ones(3),
        osc_phase=z,
        rate=np.array([0.08, -0.05, 0.12]),
        rot_amp=z,
        rot_freq=np.ones(3),
        rot_phase=z,
    )


def test_slanted_plane_ground_truth_is_focal_baseline_over_depth():
    normal = _unit([0.4, -0.5, -1.0])
    e1 = _unit(np.cross(normal, [0.0, 1.0, 0.0]))
    e2 = np.cross(normal, e1)
    point = np.array([0.3, -0.2, 6.0])
    scene = _scene([{"origin": point, "e1": e1, "e2": e2}], rig=_turning_rig())
    t = 0.7
    gt = scene.ground_truth(t)
    centre, rot = scene.camera_pose("left", t)
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, H, 40), rng.integers(0, W, 40)
    ray = rot @ np.stack([(xs - scene.cx) / FX, (ys - scene.cy) / FX, np.ones(40)])
    depth = (normal @ (point - centre)) / (normal @ ray)  # along the optical axis (ray z = 1)
    expected = FX * BASE / depth
    got = gt[ys, xs]
    inside = xs - expected >= -0.5  # visible in the right image
    assert inside.sum() > 20 and np.ptp(expected) > 1.0  # slanted: disparity varies
    np.testing.assert_allclose(got[inside], expected[inside], rtol=1e-4)
    assert np.all(got[~inside] == 0)


def test_nearer_surface_wins_per_pixel_whatever_the_order():
    """A slanted plane cutting through a fronto-parallel one: each pixel shows the nearer."""
    slanted = {"origin": (0.0, 0.0, 6.0), "e1": _unit([1.0, 0.0, 0.6]), "e2": (0.0, 1.0, 0.0)}
    flat = {"origin": (0.0, 0.0, 6.0), "e1": (1.0, 0.0, 0.0), "e2": (0.0, 1.0, 0.0)}
    for pair in ([slanted, flat], [flat, slanted]):
        gt = _scene(pair).ground_truth(0.0)
        flat_d = FX * BASE / 6.0
        left, right = gt[:, 5 : W // 2 - 2], gt[:, W // 2 + 2 :]
        # the slanted plane comes nearer on the left of the image (its x rises with depth)
        assert np.all(left > flat_d + 0.05) and np.allclose(right, flat_d, atol=1e-4)


def test_ground_plane_disparity_grows_toward_the_bottom():
    cfg = SimConfig(
        height=H,
        width=W,
        layouts=("street",),
        motions=("sway",),
        num_objects=0,
        seed=2,
        duration_ms=100,
        min_disparity=0.3,
    ).resolved()
    scene = build_scene(cfg, np.random.default_rng(0))
    assert "ground" in scene.kinds
    gt = scene.ground_truth(0.05)
    column = gt[:, W // 2]
    low = column[H // 2 + 3 :]
    assert np.all(np.diff(low) > 0)  # every row nearer than the one above
    assert low[-1] > 0.5 * cfg.max_disparity and low[-1] <= cfg.max_disparity
    assert column[: H // 2 - 3].max() < low.min()  # above the horizon: the far background


def test_thin_structures_appear_in_ground_truth():
    pole = {
        "origin": (0.2, 0.0, 5.0),
        "e1": (1.0, 0.0, 0.0),
        "e2": (0.0, 1.0, 0.0),
        "shape": 3,
        "size": (1.5 * 5.0 / FX, 1.0, 0.0, 0.0),
    }  # 3 px wide, 20 px tall at 5 m
    wall = {"origin": (0.0, 0.0, 20.0), "e1": (1.0, 0.0, 0.0), "e2": (0.0, 1.0, 0.0)}
    gt = _scene([pole, wall]).ground_truth(0.0)
    row = gt[H // 2]
    on_pole = np.isclose(row, FX * BASE / 5.0, atol=1e-3)
    assert on_pole.sum() == 3 and np.all(np.diff(np.flatnonzero(on_pole)) == 1)
    assert np.isclose(gt[H // 2 - 12 : H // 2 + 12], FX * BASE / 5.0, atol=1e-3).sum(axis=0).max() == 20
    # drawn scenes: with thin_fraction 1 every object is thin and shows up in the GT
    cfg = SimConfig(height=60, width=80, layouts=("open",), num_objects=6, thin_fraction=1.0, seed=4).resolved()
    scene = build_scene(cfg, np.random.default_rng(3))
    thin = [k for k, kind in enumerate(scene.kinds) if kind in ("pole", "wire", "bar", "fence")]
    assert len(thin) >= 3 and all(
        kind in ("pole", "wire", "bar", "fence", "ground", "background") for kind in scene.kinds
    )
    t = cfg.duration_ms * 5e-4  # mid-sequence, where the sizes are planned in pixels
    gt = scene.ground_truth(t)
    table = scene.layer_table("left", t)
    ys, xs = np.mgrid[0:60, 0:80].astype(np.float64)
    seen = 0
    for k in thin:
        u, v = (table[k, 16] + table[k, 17]) / 2, (table[k, 18] + table[k, 19]) / 2  # box centre
        half_m = scene.size[k, 3] if scene.shape_ids[k] == 5 else scene.size[k, 0]  # bar / pole half width
        half_px = half_m * cfg.fx * (table[k, 6:9] @ (u, v, 1.0))  # metres * pixels per metre
        assert (0.99 <= half_px <= 3.01) if scene.shape_ids[k] == 3 else (0.5 <= half_px <= 3.5)
        plane_d = cfg.fx * cfg.baseline_m * (table[k, 6] * xs + table[k, 7] * ys + table[k, 8])
        box = (xs >= table[k, 16]) & (xs <= table[k, 17]) & (ys >= table[k, 18]) & (ys <= table[k, 19])
        seen += bool(np.any(box & (gt > 0) & np.isclose(gt, plane_d, rtol=1e-4)))
    assert seen >= len(thin) - 1  # (one may be hidden behind another)


def test_object_disparities_cover_the_range_across_sequences():
    top, bottom = [], []
    for seed in range(6):
        cfg = SimConfig(height=48, width=96, max_disparity=30.0, min_disparity=1.0, seed=seed, duration_ms=200)
        scene = scene_for(cfg)
        gt = np.concatenate([scene.ground_truth(t).ravel() for t in (0.0, 0.2)])
        gt = gt[gt > 0]
        assert gt.max() <= 30.0 + 1e-4
        top.append(gt.max())
        bottom.append(gt.min())
        hist = np.histogram(gt, bins=6, range=(1.0, 30.0))[0]
        assert np.count_nonzero(hist) >= 3
    assert max(top) > 0.85 * 30.0 and min(bottom) < 1.2


@pytest.mark.parametrize("kind", ["drive", "sideways", "sway"])
def test_rig_motions(kind):
    rng = np.random.default_rng(5)
    rig = make_rig_motion(kind, speed_px_s=100.0, ego=1.0, near_m=2.0, fx=FX, radius_px=35.0, rng=rng)
    ts = np.linspace(0, 2.0, 201)
    pos, ang = rig.position(ts), rig.angles(ts)
    assert np.ptp(ang, axis=0).max() > 1e-3  # it rotates
    if kind == "drive":
        assert pos[-1, 2] - pos[0, 2] > 1.0 and abs(pos[-1, 0] - pos[0, 0]) < 0.5 * (pos[-1, 2] - pos[0, 2])
    elif kind == "sideways":
        assert np.hypot(*(pos[-1, :2] - pos[0, :2])) > 2 * abs(pos[-1, 2] - pos[0, 2])
    else:  # sway: oscillates around a slow drift, several direction changes per axis
        assert np.ptp(pos, axis=0).max() < 1.0
        assert np.count_nonzero(np.diff(np.sign(np.diff(pos[:, 0])))) >= 2
    still = make_rig_motion(kind, speed_px_s=0.0, ego=1.0, near_m=2.0, fx=FX, radius_px=35.0, rng=rng)
    assert np.allclose(still.position(ts), 0) and np.allclose(still.angles(ts), 0)


def test_auto_render_rate_keeps_motion_within_the_limit():
    assert auto_render_rate(1000.0, 10.0) == 500.0
    assert auto_render_rate(1001.0, 10.0) == 550.0
    assert auto_render_rate(1.0, 80.0) == 80.0
    cfg = SimConfig(height=H, width=W, duration_ms=60, render_rate_hz=None, seed=1)
    rec = simulate_stereo(cfg)
    assert len(rec.left) > 0
    rate = auto_render_rate(scene_for(cfg).max_image_speed(0.06), 10.0)
    assert scene_for(cfg).max_image_speed(0.06) / rate <= MAX_MOTION_PX_PER_FRAME
    assert SimConfig.from_dict({"render_rate_hz": "auto"}).render_rate_hz is None


def test_hot_pixels_fire_at_fixed_pixels():
    def gen(seed):
        return EventGenerator(
            20,
            30,
            threshold_pos=0.2,
            threshold_neg=0.2,
            threshold_sigma=0.0,
            refractory_us=0,
            noise_rate_hz=0.0,
            log_eps=1e-3,
            rng=np.random.default_rng(seed),
            hot_pixel_fraction=0.01,
            hot_pixel_rate_hz=500.0,
        )

    still = np.full((20, 30), 0.5, np.float32)
    a = gen(0)
    assert len(a.hot_pixels) == 6
    a.reset(still, 0)
    chunks = [a.step(still, k * 10_000) for k in range(1, 21)]  # 0.2 s
    pix = [np.unique(c.y.astype(int) * 30 + c.x.astype(int)) for c in (chunks[0], chunks[-1])]
    for p in pix:
        assert set(p) <= set(a.hot_pixels)
    idx = np.concatenate([c.y.astype(int) * 30 + c.x.astype(int) for c in chunks])
    np.testing.assert_array_equal(np.unique(idx), a.hot_pixels)
    assert abs(len(idx) - 6 * 500 * 0.2) < 0.2 * 6 * 500 * 0.2  # the configured rate
    assert not np.array_equal(gen(1).hot_pixels, a.hot_pixels)  # another camera: other pixels
    # through the simulator: a static scene gives events only at each camera's own hot pixels
    cfg = SimConfig(
        height=H,
        width=W,
        duration_ms=50,
        speed_px_s=0.0,
        ego_motion=0.0,
        object_motion=0.0,
        noise_rate_hz=0.0,
        hot_pixel_fraction=0.004,
        hot_pixel_rate_hz=400.0,
        seed=2,
    )
    rec = simulate_stereo(cfg)
    left = set(np.unique(rec.left.y.astype(int) * W + rec.left.x.astype(int)))
    right = set(np.unique(rec.right.y.astype(int) * W + rec.right.x.astype(int)))
    assert len(left) == len(right) == round(0.004 * H * W) and left != right
    again = simulate_stereo(dataclasses.replace(cfg, duration_ms=30))
    assert set(np.unique(again.left.y.astype(int) * W + again.left.x.astype(int))) == left


def test_no_stereo_benchmark_photographs_among_textures():
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    names = {p.name for p in bundled_photos()}
    assert names and not any("motorcycle" in n or "disp" in n or "stereo" in n for n in names)
    if (folder / "motorcycle_left.png").is_file():  # the Middlebury pair ships, yet is not used
        assert folder / "motorcycle_left.png" not in bundled_photos()


def test_windows_only_renders_the_spans_before_each_ground_truth_map():
    from stereo_snn.events.simulator.api import merge_spans, span_frames

    assert merge_spans([(50, 100), (0, 20), (90, 130), (140, 150)]) == [(0, 20), (50, 130), (140, 150)]
    assert span_frames(35, 100, 0, 20) == [35, 40, 60, 80, 100]
    cfg = SimConfig(height=H, width=W, duration_ms=300, seed=4, speed_px_s=120.0, start_time_us=1_000_000)
    full = simulate_stereo(cfg)
    part = simulate_stereo(dataclasses.replace(cfg, gt_window_ms=30.0, warmup_ms=10.0))
    np.testing.assert_array_equal(part.gt_timestamps_us, full.gt_timestamps_us)
    np.testing.assert_array_equal(part.gt_disparity, full.gt_disparity)
    for ev, ref in ((part.left, full.left), (part.right, full.right)):
        since = ev.t[:, None] - full.gt_timestamps_us[None, :] + 40_000
        assert np.all(((since >= 0) & (since <= 40_000)).any(axis=1))  # only inside the spans
        assert np.all(np.diff(ev.t) >= 0)
        for g in full.gt_timestamps_us[1:]:  # each 30 ms window: about as many events as the full run
            n_part = np.count_nonzero((ev.t >= g - 30_000) & (ev.t < g))
            n_full = np.count_nonzero((ref.t >= g - 30_000) & (ref.t < g))
            assert n_full > 100 and abs(n_part - n_full) < 0.25 * n_full


def test_nothing_reaches_the_near_clip_whatever_the_rig_turns():
    """Walls, floors, facades and objects are placed so that the rig's rotations never bring
    them nearer than max_disparity: the near clip (which would cut holes) removes nothing."""
    from stereo_snn.events.simulator import load_preset

    _, preset = load_preset("dsec")
    for seed in range(12):
        small = {
            **preset,
            "height": 120,
            "width": 160,
            "fx": preset["fx"] / 4,
            "max_disparity": preset["max_disparity"] / 4,
            "min_disparity": 0.25,
            "seed": seed,
        }
        scene = scene_for(SimConfig.from_dict(small))
        unclipped = dataclasses.replace(scene, max_disparity=1e6)
        for t in (0.0, 1.0, 2.0):
            np.testing.assert_array_equal(scene.ground_truth(t), unclipped.ground_truth(t), err_msg=f"seed {seed}")
