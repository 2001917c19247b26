"""The stereo dataset: windows, ground truth, crops, vertical flips, collation, sources."""

from __future__ import annotations

import pytest
import torch

from stereo_snn.errors import ConfigError, DatasetError
from stereo_snn.stereo.data import (
    DSECSource,
    Entry,
    EventFilesSource,
    StereoWindowDataset,
    open_source,
    open_sources,
    pad_collate,
    split_validation,
)


def test_dataset_items_match_the_source(sim_root, tiny_cfg):
    sources = open_sources(sim_root)
    assert [s.name for s in sources] == sorted(s.name for s in sources) and len(sources) == 3
    ds = StereoWindowDataset(sources[:1], tiny_cfg)
    src = sources[0]
    # the first ground-truth map has no events before it: skipped
    start, _ = src.time_range_us()
    assert all(entry.t_us - 50_000 >= start for _, entry in ds.items)
    assert len(ds) == len(src.entries()) - 1
    item = ds[0]
    t, c = tiny_cfg.time_steps, 4 // tiny_cfg.time_steps
    assert item["left"].shape == (t, c, 48, 64) and item["right"].shape == (t, c, 48, 64)
    assert item["left"].dtype == torch.float32 and torch.count_nonzero(item["left"]) > 0
    gt = src.disparity(ds.items[0][1])
    assert torch.equal(item["disparity"], torch.from_numpy(gt))
    assert torch.equal(item["valid"], (item["disparity"] > 0) & (item["disparity"] < tiny_cfg.max_disparity))
    assert item["events"][0] > 0 and item["events"][1] > 0


def test_the_window_cache_stays_within_its_memory_budget(sim_root, tiny_cfg):
    sources = open_sources(sim_root)[:1]
    plain = StereoWindowDataset(sources, tiny_cfg)
    window = plain[0]
    one_window_bytes = 2 * window["left"].numel() * 4 + window["disparity"].numel() * 4
    # a budget of one and a half windows keeps the first pair of views read and no other pair
    budget = int(1.5 * one_window_bytes)
    ds = StereoWindowDataset(sources, tiny_cfg, cache_mb=budget / 2**20)
    items = [ds[i] for i in range(len(ds))]
    assert [k for k in ds._cache if k[0] != "gt"] == [(0, ds.items[0][1].t_us)]
    kept = sum(sum(a.nbytes for a in v[:2]) if isinstance(v, tuple) else v.nbytes for v in ds._cache.values())
    assert 0 <= ds._cache_left == budget - kept
    for i, item in enumerate(items):  # cached or read again, the same tensors
        again = plain[i]
        assert all(torch.equal(item[k], again[k]) for k in ("left", "right", "disparity"))
    assert torch.equal(ds[0]["left"], items[0]["left"])
    assert StereoWindowDataset(sources, tiny_cfg)._cache is None  # 0 MiB (the default): no cache
    with pytest.raises(ConfigError, match="cache_mb"):
        StereoWindowDataset(sources, tiny_cfg, cache_mb=-1)


def test_crops_are_reproducible_and_flips_mirror_views_and_gt(sim_root, tiny_cfg):
    sources = open_sources(sim_root)[:1]
    full = StereoWindowDataset(sources, tiny_cfg)
    crop = StereoWindowDataset(sources, tiny_cfg, crop=(24, 36), seed=5)
    a, b = crop[1], crop[1]
    assert torch.equal(a["left"], b["left"]) and a["left"].shape[-2:] == (24, 36)
    crops = set()
    for epoch in range(6):
        crop.set_epoch(epoch)
        item = crop[1]
        # the crop is a window of the full item, the same in both views and the ground truth
        ref = full[1]
        hits = [
            (y, x)
            for y in range(48 - 24 + 1)
            for x in range(64 - 36 + 1)
            if torch.equal(ref["disparity"][y : y + 24, x : x + 36], item["disparity"])
            and torch.equal(ref["right"][..., y : y + 24, x : x + 36], item["right"])
            and torch.equal(ref["left"][..., y : y + 24, x : x + 36], item["left"])
        ]
        assert hits
        crops.add(hits[0])
    assert len(crops) > 1
    flip = StereoWindowDataset(sources, tiny_cfg, vflip=True, seed=1)
    flipped = 0
    for epoch in range(8):
        flip.set_epoch(epoch)
        item, ref = flip[0], full[0]
        if torch.equal(item["disparity"], ref["disparity"]):
            assert torch.equal(item["left"], ref["left"])
            continue
        flipped += 1
        assert torch.equal(item["disparity"], ref["disparity"].flip(0))
        assert torch.equal(item["left"], ref["left"].flip(-2)) and torch.equal(item["right"], ref["right"].flip(-2))
    assert 0 < flipped < 8


def test_crop_larger_than_frame_is_an_error(sim_root, tiny_cfg):
    ds = StereoWindowDataset(open_sources(sim_root)[:1], tiny_cfg, crop=(60, 64))
    with pytest.raises(DatasetError, match="crop 60x64"):
        ds[0]


def test_pad_collate_pads_with_invalid_pixels():
    def item(h, w, name):
        d = torch.full((h, w), 3.0)
        return {
            "left": torch.ones(2, 1, h, w),
            "right": torch.ones(2, 1, h, w),
            "disparity": d,
            "valid": d > 0,
            "name": name,
            "index": 0,
        }

    batch = pad_collate([item(6, 9, "a"), item(9, 6, "b")])
    assert batch["left"].shape == (2, 2, 1, 9, 9)
    assert batch["valid"].shape == (2, 9, 9)
    assert int(batch["valid"][0].sum()) == 54 and int(batch["valid"][1].sum()) == 54
    assert batch["sizes"] == [(6, 9), (9, 6)] and batch["name"] == ["a", "b"]
    assert float(batch["left"][:, 0, :, 6:, :].abs().sum()) == 0


def test_generic_event_files_source(sim_root, tmp_path):
    from stereo_snn.events import write_event_npz

    seq = DSECSource(sorted(sim_root.iterdir())[0])
    t0, t1 = seq.time_range_us()
    paths = {}
    for cam in ("left", "right"):
        ev = seq.seq.events(cam, t0, t1, rectify=False)
        paths[cam] = tmp_path / f"{cam}.npz"
        write_event_npz(paths[cam], ev, sensor_size=(48, 64))
    src = open_source(paths["left"], right=paths["right"])
    assert isinstance(src, EventFilesSource) and (src.height, src.width) == (48, 64)
    assert [e.index for e in src.entries()] == list(range(len(src.entries())))
    left, right = src.window(Entry(0, t0 + 100_000), 50_000)
    assert len(left) > 0 and len(right) > 0
    small = tmp_path / "small.npz"
    write_event_npz(small, seq.seq.events("right", t0, t1, rectify=False), sensor_size=(40, 64))
    with pytest.raises(DatasetError, match="sizes differ"):
        open_source(paths["left"], right=small)


def test_source_errors(tmp_path, sim_root):
    with pytest.raises(DatasetError, match="no such"):
        open_source(tmp_path / "nope")
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(DatasetError, match="right camera"):
        open_source(tmp_path / "x.h5", fmt="generic")
    with pytest.raises(DatasetError, match="no DSEC sequence"):
        open_sources(tmp_path)


def test_mvsec_recordings_are_found_in_one_folder_per_recording(tmp_path):
    from stereo_snn.events.simulator import write_sequences
    from stereo_snn.events.simulator.config import SimConfig

    write_sequences(SimConfig(height=40, width=56, duration_ms=150.0, seed=3), tmp_path, count=2, fmt="mvsec")
    sources = open_sources(tmp_path, "mvsec")
    assert [s.layout for s in sources] == ["mvsec", "mvsec"] and len({s.name for s in sources}) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="sub-folders"):
        open_sources(tmp_path / "empty", "mvsec")


@pytest.mark.parametrize(("val_count", "n_train", "n_val"), [(0, 3, 0), (1, 2, 1), (2, 1, 2)])
def test_split_validation_keeps_the_last_sequences_for_validation(sim_root, val_count, n_train, n_val):
    sources = open_sources(sim_root)
    train, val = split_validation(sources, val_count)
    assert (len(train), len(val)) == (n_train, n_val) and train + val == sources


def test_split_validation_takes_a_separate_folder_and_refuses_to_leave_no_training(sim_root):
    sources = open_sources(sim_root)
    train, val = split_validation(sources[:1], 1, val_data=sim_root, fmt="dsec")
    assert train == sources[:1] and [v.name for v in val] == [s.name for s in sources]
    assert split_validation(sources[:1], 1) == (sources[:1], [])  # one sequence: nothing to hold out
    with pytest.raises(ConfigError, match="--val-count 3: leaves no training sequence out of 3"):
        split_validation(sources, 3)
