"""Simulator: the event model against the rendered intensity, the scene's stereo geometry,
rectification, determinism and settings (tiny sizes, CPU, a few seconds)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from stereo_snn.errors import ConfigError
from stereo_snn.events import rectify_events
from stereo_snn.events.simulator import (
    TEXTURE_KINDS,
    EventGenerator,
    SimConfig,
    bundled_photos,
    make_rectify_map,
    make_texture,
    scene_for,
    simulate_stereo,
)

H, W = 48, 64


def _generator(seed: int = 0, **kw) -> EventGenerator:
    settings = dict(
        threshold_pos=0.2,
        threshold_neg=0.25,
        threshold_sigma=0.03,
        refractory_us=0,
        noise_rate_hz=0.0,
        log_eps=1e-3,
        rng=np.random.default_rng(seed),
    )
    settings.update(kw)
    return EventGenerator(8, 10, **settings)


def _run(gen: EventGenerator, frames: list[np.ndarray], dt_us: int = 1000):
    gen.reset(frames[0], 0)
    chunks = [gen.step(f, (k + 1) * dt_us) for k, f in enumerate(frames[1:])]
    return [np.concatenate([c[i] for c in chunks]) for i in range(4)]


def _random_walk(seed: int, n: int = 60) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    log = np.log(rng.uniform(0.1, 0.9, (8, 10)))
    frames = []
    for _ in range(n):
        frames.append(np.exp(log).astype(np.float32))
        log = np.clip(log + rng.normal(0, 0.15, log.shape), np.log(0.01), 0.0)
    return frames


# ---------------------------------------------------------------------------- event model
def test_event_counts_match_log_intensity_change():
    gen = _generator()
    frames = _random_walk(1)
    ref0 = None
    gen.reset(frames[0], 0)
    ref0 = gen.ref.copy()
    chunks = [gen.step(f, (k + 1) * 1000) for k, f in enumerate(frames[1:])]
    x = np.concatenate([c.x for c in chunks]).astype(int)
    y = np.concatenate([c.y for c in chunks]).astype(int)
    p = np.concatenate([c.p for c in chunks])
    idx = y * 10 + x
    on = np.bincount(idx[p == 1], minlength=80)
    off = np.bincount(idx[p == 0], minlength=80)
    assert on.sum() > 100 and off.sum() > 100
    # the reference moved by exactly the thresholds crossed ...
    np.testing.assert_allclose(on * gen.c_pos - off * gen.c_neg, gen.ref - ref0, atol=1e-9)
    # ... and tracks the log intensity within one threshold at both ends
    log_first = gen.log_intensity(frames[0]).astype(np.float64)
    log_last = gen.log_intensity(frames[-1]).astype(np.float64)
    err = (on * gen.c_pos - off * gen.c_neg) - (log_last - log_first)
    assert np.all(np.abs(err) < gen.c_pos + gen.c_neg)


def test_no_events_without_change_and_several_per_interval():
    gen = _generator()
    still = [np.full((8, 10), 0.4, np.float32)] * 5
    assert len(_run(gen, still)[2]) == 0
    # a jump of ~5 thresholds within one interval: several events, linearly spaced in time
    gen = _generator(threshold_sigma=0.0)
    frames = [np.full((8, 10), 0.1, np.float32), np.full((8, 10), 0.1 * np.exp(1.0), np.float32)]
    gen.reset(frames[0], 0)
    ref = gen.ref.copy()
    ev = gen.step(frames[1], 1000)
    counts = np.bincount(ev.y.astype(int) * 10 + ev.x.astype(int), minlength=80)
    log0, log1 = gen.log_intensity(frames[0])[0], gen.log_intensity(frames[1])[0]
    np.testing.assert_array_equal(counts, np.floor((log1 - ref) / 0.2).astype(int))
    assert counts.min() >= 3 and np.all(ev.p == 1)
    pix0 = (ev.x == 0) & (ev.y == 0)
    expected = np.rint((ref[0] + 0.2 * np.arange(1, pix0.sum() + 1) - log0) / (log1 - log0) * 1000)
    np.testing.assert_array_equal(ev.t[pix0], expected.astype(np.int64))
    assert np.all(np.diff(ev.t) >= 0)


def test_refractory_period_is_respected():
    frames = _random_walk(2)
    free = _run(_generator(noise_rate_hz=50.0), frames, dt_us=400)
    x, y, t, p = _run(_generator(refractory_us=300, noise_rate_hz=50.0), frames, dt_us=400)
    assert len(t) < len(free[2])
    idx = y.astype(int) * 10 + x.astype(int)
    order = np.lexsort((t, idx))
    same = idx[order][1:] == idx[order][:-1]
    gaps = np.diff(t[order])[same]
    assert gaps.size > 0 and gaps.min() >= 300


def test_noise_rate_and_polarities():
    gen = EventGenerator(
        32,
        32,
        threshold_pos=0.2,
        threshold_neg=0.2,
        threshold_sigma=0.0,
        refractory_us=0,
        noise_rate_hz=50.0,
        log_eps=1e-3,
        rng=np.random.default_rng(3),
    )
    still = np.full((32, 32), 0.5, np.float32)
    gen.reset(still, 0)
    chunks = [gen.step(still, k * 2000) for k in range(1, 251)]  # 0.5 s
    t = np.concatenate([c.t for c in chunks])
    p = np.concatenate([c.p for c in chunks])
    expected = 50.0 * 0.5 * 32 * 32
    assert abs(len(t) - expected) < 0.05 * expected
    assert 0.45 < p.mean() < 0.55
    assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < 500_000


def test_generator_deterministic_with_seed():
    frames = _random_walk(4)
    a = _run(_generator(7, noise_rate_hz=20.0), frames)
    b = _run(_generator(7, noise_rate_hz=20.0), frames)
    c = _run(_generator(8, noise_rate_hz=20.0), frames)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert len(a[2]) != len(c[2]) or not np.array_equal(a[2], c[2])


# ---------------------------------------------------------------------------- full simulation
@pytest.fixture(scope="module")
def tiny_config() -> SimConfig:
    return SimConfig(name="tiny", height=H, width=W, duration_ms=200, seed=5, start_time_us=2_000_000, speed_px_s=120.0)


@pytest.fixture(scope="module")
def tiny(tiny_config):
    return simulate_stereo(tiny_config)


def test_recording_contract(tiny, tiny_config):
    cfg = tiny_config.resolved()
    assert (tiny.height, tiny.width, tiny.name) == (H, W, "tiny")
    for ev in (tiny.left, tiny.right):
        assert ev.x.dtype == np.uint16 and ev.y.dtype == np.uint16 and ev.t.dtype == np.int64 and ev.p.dtype == np.int8
        assert len(ev) > 500
        assert np.all(np.diff(ev.t) >= 0)
        assert ev.t.min() > 2_000_000 and ev.t.max() <= 2_200_000
        assert ev.x.max() < W and ev.y.max() < H and set(np.unique(ev.p)) == {0, 1}
    assert tiny.t_offset_us == 2_000_000
    np.testing.assert_array_equal(tiny.gt_timestamps_us, [2_000_000, 2_100_000, 2_200_000])
    assert tiny.gt_disparity.shape == (3, H, W) and tiny.gt_disparity.dtype == np.float32
    valid = tiny.gt_disparity[tiny.gt_disparity > 0]
    assert valid.size > 0.8 * tiny.gt_disparity.size
    assert valid.max() <= cfg.max_disparity + 1e-4 and valid.min() >= 0.5 * cfg.min_disparity
    for rmap in (tiny.rectify_left, tiny.rectify_right):
        assert rmap.shape == (H, W, 2) and rmap.dtype == np.float32
    assert tiny.fx == pytest.approx(cfg.fx) and tiny.baseline_m == cfg.baseline_m


def test_deterministic_with_seed(tiny, tiny_config):
    again = simulate_stereo(tiny_config)
    for a, b in zip(tiny.left + tiny.right, again.left + again.right):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tiny.gt_disparity, again.gt_disparity)
    other = simulate_stereo(dataclasses.replace(tiny_config, seed=6, duration_ms=100))
    assert not np.array_equal(other.gt_disparity[0], tiny.gt_disparity[0])


def test_events_follow_rendered_intensity(tiny_config):
    """Whole simulation: per raw pixel, (ON - OFF) * C tracks the rendered log change."""
    cfg = dataclasses.replace(tiny_config, threshold_sigma=0.0, refractory_us=0, noise_rate_hz=0.0, duration_ms=100)
    rec = simulate_stereo(cfg)
    scene = scene_for(cfg)
    rmap = rec.rectify_left
    first, _ = scene.render("left", rmap[..., 0], rmap[..., 1], 0.0)
    last, _ = scene.render("left", rmap[..., 0], rmap[..., 1], 0.1)
    d_log = np.log(last + cfg.log_eps) - np.log(first + cfg.log_eps)
    net = np.zeros((H, W))
    np.add.at(net, (rec.left.y.astype(int), rec.left.x.astype(int)), np.where(rec.left.p == 1, 1.0, -1.0))
    assert np.all(np.abs(net * cfg.threshold_pos - d_log) < 2 * cfg.threshold_pos + 1e-4)
    assert np.abs(d_log).max() > 3 * cfg.threshold_pos  # the test is not vacuous


def test_static_scene_gives_no_events(tiny_config):
    cfg = dataclasses.replace(
        tiny_config, speed_px_s=0.0, ego_motion=0.0, object_motion=0.0, noise_rate_hz=0.0, duration_ms=50
    )
    rec = simulate_stereo(cfg)
    assert len(rec.left) == 0 and len(rec.right) == 0
    noisy = simulate_stereo(dataclasses.replace(cfg, noise_rate_hz=100.0))
    assert abs(len(noisy.left) - 100.0 * 0.05 * H * W) < 0.15 * 100.0 * 0.05 * H * W


def test_views_are_photo_consistent_with_ground_truth(tiny_config):
    """A rectified left pixel at disparity d shows what the right view shows at x - d."""
    scene = scene_for(tiny_config)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    t = 0.1
    left, disp = scene.render("left", xs, ys, t)
    gt = scene.ground_truth(t)
    right_at_d, _ = scene.render("right", xs - gt, ys, t)
    right_at_0, _ = scene.render("right", xs, ys, t)
    valid = gt > 0
    np.testing.assert_array_equal(gt[valid], disp[valid])
    err_d = np.abs(left - right_at_d)[valid]
    err_0 = np.abs(left - right_at_0)[valid]
    assert np.median(err_d) < 1e-3
    assert np.mean(err_d < 0.02) > 0.8  # the rest: occlusions (about 5-14 %) and soft edges
    assert np.mean(err_d < 0.02) > np.mean(err_0 < 0.02) + 0.3
    assert np.median(err_0) > 10 * max(np.median(err_d), 1e-4)


def _event_image(ev, t0: int, t1: int) -> np.ndarray:
    """Blurred event-count image with bilinear splatting of (sub-pixel) coordinates."""
    m = (ev.t >= t0) & (ev.t < t1)
    x, y = ev.x[m].astype(np.float64), ev.y[m].astype(np.float64)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    inside = (x0 >= 0) & (y0 >= 0) & (x0 < W) & (y0 < H)
    img = np.zeros((H + 1, W + 1))
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(img, (y0[inside] + dy, x0[inside] + dx), w[inside])
    return cv2.GaussianBlur(img[:H, :W].astype(np.float32), (0, 0), 1.0)


def test_rectified_events_line_up_with_ground_truth(tiny_config):
    """After rectification with the (clearly non-identity) maps, right events shifted by the
    GT disparity match the left events far better than unshifted, and far better than the
    unrectified raw events do."""
    rec = simulate_stereo(dataclasses.replace(tiny_config, seed=3, warp=3.0, duration_ms=150))
    ident = np.stack(np.meshgrid(np.arange(W), np.arange(H)), -1)
    assert np.abs(rec.rectify_left - ident).max() > 2.0 and np.abs(rec.rectify_right - ident).max() > 2.0
    t_gt = int(rec.gt_timestamps_us[1])
    gt = rec.gt_disparity[1]
    valid = gt > 0
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)

    def score(left, right, shift: np.ndarray) -> float:
        img_l = _event_image(left, t_gt - 15_000, t_gt + 15_000)
        img_r = _event_image(right, t_gt - 15_000, t_gt + 15_000)
        warped = cv2.remap(img_r, xs - shift, ys, cv2.INTER_LINEAR)
        return float(np.corrcoef(img_l[valid], warped[valid])[0, 1])

    left = rectify_events(rec.left, rec.rectify_left, keep_outside=True)
    right = rectify_events(rec.right, rec.rectify_right, keep_outside=True)
    good = score(left, right, gt)
    assert good > 0.6
    assert good > score(left, right, np.zeros_like(gt)) + 0.2
    assert good > score(rec.left, rec.right, gt) + 0.2


def test_rectify_map_is_identity_without_warp_and_smooth_with_it():
    rng = np.random.default_rng(0)
    ident = make_rectify_map(H, W, rng, 0.0)
    np.testing.assert_allclose(ident, np.stack(np.meshgrid(np.arange(W), np.arange(H)), -1), atol=1e-4)
    warped = make_rectify_map(H, W, rng, 1.0)
    shift = warped - ident
    assert 0.1 < np.abs(shift).max() < 6.0
    assert np.abs(np.diff(shift, axis=1)).max() < 0.1 and np.abs(np.diff(shift, axis=0)).max() < 0.1


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_textures(kind):
    tex = make_texture(kind, 64, np.random.default_rng(1))
    assert tex.shape == (64, 64) and tex.dtype == np.float32
    assert tex.min() >= 0.0 and tex.max() <= 1.0 and tex.std() > 0.05
    np.testing.assert_array_equal(tex, make_texture(kind, 64, np.random.default_rng(1)))


def test_photographs_come_from_scikit_image_package():
    photos = bundled_photos()
    assert len(photos) >= 5
    assert all(p.is_file() and "skimage" in str(p) for p in photos)


# ---------------------------------------------------------------------------- settings
def test_config_from_dict_and_errors():
    cfg = SimConfig.from_dict({"height": "32", "width": 40, "textures": "noise,stripes", "max_disparity": 8})
    assert (cfg.height, cfg.width, cfg.textures, cfg.max_disparity) == (32, 40, ("noise", "stripes"), 8.0)
    assert SimConfig.from_dict(cfg.to_dict()) == cfg
    assert SimConfig(textures=["noise"]).textures == ("noise",)
    with pytest.raises(ConfigError, match="textures"):
        SimConfig(textures="noise")
    assert cfg.resolved().min_disparity == 2.0 and cfg.resolved().fx == pytest.approx(36.0)
    with pytest.raises(ConfigError, match="render_rate_hz"):
        simulate_stereo(SimConfig(height=H, width=W, duration_ms=100, render_rate_hz=20))


@pytest.mark.parametrize(
    ("values", "word"),
    [
        ({"colour": 1}, "colour"),
        ({"height": 2.5}, "height"),
        ({"height": "abc"}, "height"),
        ({"duration_ms": -1}, "duration_ms"),
        ({"textures": ["noise", "marble"]}, "marble"),
        ({"min_disparity": 10, "max_disparity": 5}, "min_disparity"),
        ({"max_disparity": 50, "width": 64}, "max_disparity"),
        ({"noise_rate_hz": -1}, "noise_rate_hz"),
        ({"name": "a/b"}, "name"),
        ({"seed": True}, "seed"),
    ],
)
def test_bad_config_values_are_refused_by_name(values, word):
    with pytest.raises(ConfigError, match=word):
        SimConfig.from_dict(values)
