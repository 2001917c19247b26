"""Loaders on real-format archives the tests write, augmentations, and the safety of unpickling."""

from __future__ import annotations

import dataclasses
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from classification import config as C
from classification import data as D
from stereo_snn.errors import ConfigError, DatasetError


def _data(**settings):
    """The default data settings with ``settings`` changed."""
    return dataclasses.replace(C.resolve_config().data, **settings)


def test_cifar10_folder_reads_all_batches(cifar10_folder):
    train = D.load_cifar(cifar10_folder, "cifar10", "train")
    test = D.load_cifar(cifar10_folder.parent, "cifar10", "test")  # the parent folder works too
    assert train.images.shape == (40, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (20, 32, 32, 3)
    assert train.class_names == [f"c{i}" for i in range(10)]
    # the channel-planar row of the archive becomes HWC: red plane first
    raw = pickle.loads((cifar10_folder / "data_batch_1").read_bytes(), encoding="bytes")
    np.testing.assert_array_equal(train.images[0, :, :, 0], raw[b"data"][0, :1024].reshape(32, 32))
    np.testing.assert_array_equal(train.images[0, :, :, 2], raw[b"data"][0, 2048:].reshape(32, 32))
    assert train.labels[: len(raw[b"labels"])].tolist() == raw[b"labels"]


def test_cifar100_tar_fine_and_coarse(cifar100_tar):
    fine = D.load_cifar(cifar100_tar, "cifar100", "train", "fine")
    coarse = D.load_cifar(cifar100_tar.parent, "cifar100", "train", "coarse")
    assert len(fine.class_names) == 100 and len(coarse.class_names) == 20
    np.testing.assert_array_equal(coarse.labels, fine.labels % 20)
    np.testing.assert_array_equal(fine.images, coarse.images)


def test_missing_and_malformed_cifar(tmp_path, make_cifar):
    with pytest.raises(DatasetError, match="not found"):
        D.load_cifar(tmp_path / "nothing", "cifar10")
    folder = make_cifar(tmp_path / "a", "cifar10")
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3: missing CIFAR file"):
        D.load_cifar(folder, "cifar10", "train")
    folder = make_cifar(tmp_path / "b", "cifar10")
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetError, match="test_batch: not a readable python pickle"):
        D.load_cifar(folder, "cifar10", "test")
    folder = make_cifar(tmp_path / "c", "cifar10")
    bad = {b"labels": [0, 1], b"data": np.zeros((2, 100), np.uint8)}
    (folder / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DatasetError, match=r"'data' must be a uint8 array \[N, 3072\]"):
        D.load_cifar(folder, "cifar10", "test")
    bad = {b"labels": [0, 11], b"data": np.zeros((2, 3072), np.uint8)}
    (folder / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DatasetError, match=r"labels outside 0..9"):
        D.load_cifar(folder, "cifar10", "test")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar at all")
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        D.load_cifar(broken, "cifar10")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(DatasetError, match="archive has no member 'batches.meta'"):
        D.load_cifar(empty, "cifar10")


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_calling_arbitrary_callable_is_refused(tmp_path, make_cifar):
    folder = make_cifar(tmp_path, "cifar10")
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [_Boom()]}, protocol=2))
    with pytest.raises(DatasetError, match=r"refused to unpickle global (posix|os|nt)\.system"):
        D.load_cifar(folder, "cifar10")
    with pytest.raises(DatasetError, match="builtins.eval"):
        D.safe_unpickle(pickle.dumps(_Eval()), "x.pkl")


class _Eval:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_archives_written_by_numpy_1_load():
    # the published archives name numpy.core.multiarray (numpy 1.x), not numpy._core
    raw = pickle.dumps({b"data": np.arange(6, dtype=np.uint8).reshape(2, 3)}, protocol=2)
    old = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old
    np.testing.assert_array_equal(D.safe_unpickle(old, "x")[b"data"], np.arange(6).reshape(2, 3))


def test_digits_split_is_stratified_and_seeded():
    train, test = D.load_digits_split(seed=3, test_fraction=0.25)
    again, _ = D.load_digits_split(seed=3, test_fraction=0.25)
    assert train.images.shape[1:] == (8, 8, 1) and len(train.labels) + len(test.labels) == 1797
    np.testing.assert_array_equal(train.labels, again.labels)
    counts = np.bincount(test.labels, minlength=10) / len(test.labels)
    assert np.all(np.abs(counts - 0.1) < 0.02)
    assert train.images.max() == 255 and train.images.min() == 0
    with pytest.raises(ConfigError, match="test_fraction"):
        D.load_digits_split(test_fraction=1.5)


def test_image_folders_train_and_val_transforms(tmp_path, make_image_folders):
    root = make_image_folders(tmp_path / "imnet", classes=3, per_class=4)
    ds = D.ImageFolderDataset(root / "train", train=True, size=24, resize=28, seed=1)
    assert ds.class_names == ["n00000000", "n00000001", "n00000002"] and len(ds) == 12
    x, y = ds[5]
    assert x.shape == (3, 24, 24) and x.dtype == torch.uint8 and y == 1
    torch.testing.assert_close(ds[5][0], x)  # same epoch, same crop
    ds.set_epoch(1)
    assert not torch.equal(ds[5][0], x)
    val = D.ImageFolderDataset(root / "val", train=False, size=24, resize=28)
    v, _ = val[0]
    assert v.shape == (3, 24, 24)
    # class 0 was written with a saturated BGR channel 0 (blue): it must come back as RGB channel 2
    assert v[2].float().mean() > 200 and v[0].float().mean() < 200


def test_image_folder_source_with_workers_is_deterministic(tmp_path, make_image_folders):
    root = make_image_folders(tmp_path / "imnet", classes=2, per_class=3)
    bundle = D.build_data(
        _data(name="imagenet", root=str(root), image_size=16, resize=20, workers=2, flip=True), batch_size=4, seed=0
    )
    assert bundle.num_classes == 2 and bundle.in_channels == 3 and bundle.image_size == 16
    first = [x for x, _ in bundle.train.batches(epoch=2)]
    serial = D.FolderSource(
        bundle.train.dataset, 4, bundle.train.mean, bundle.train.std, shuffle=True, workers=0, seed=0
    )
    second = [x for x, _ in serial.batches(epoch=2)]
    assert len(first) == 2
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)


def test_image_folder_limit_is_a_random_subset_split_in_halves(tmp_path, make_image_folders):
    root = make_image_folders(tmp_path / "imnet", classes=4, per_class=3)
    bundle = D.build_data(
        _data(name="imagenet", root=str(root), image_size=8, resize=10, limit_train=6), batch_size=2, seed=0
    )
    chosen = set(bundle.train.subset.indices)
    labels = {bundle.train.dataset.samples[i][1] for i in chosen}
    assert len(chosen) == 6 and len(labels) > 2  # not just the first two class folders
    halves = set(bundle.search_train.subset.indices) | set(bundle.search_val.subset.indices)
    assert halves == chosen and bundle.search_train.num_samples == 3


def test_image_folder_errors(tmp_path, make_image_folders):
    with pytest.raises(DatasetError, match="image folder not found"):
        D.scan_image_folder(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        D.scan_image_folder(tmp_path / "empty")
    root = make_image_folders(tmp_path / "imnet", classes=2, per_class=1)
    (root / "train" / "n00000000" / "img_0.JPEG").write_bytes(b"not a jpeg")
    ds = D.ImageFolderDataset(root / "train", train=True, size=8)
    with pytest.raises(DatasetError, match="img_0.JPEG: not a readable image"):
        ds[0]
    (root / "val" / "extra").mkdir()
    (root / "val" / "extra" / "a.jpg").write_bytes((root / "val" / "n00000001" / "img_0.JPEG").read_bytes())
    with pytest.raises(DatasetError, match="different class folders"):
        D.build_data(_data(name="imagenet", root=str(root)), batch_size=2, seed=0)


def test_augmentations():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    cut = D.cutout(x, 2, gen)
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert torch.all((zeros >= 1) & (zeros <= 4))  # a 2x2 square, clipped at the border
    crop = D.random_crop(x, 2, gen)
    assert crop.shape == x.shape
    # every crop is a shifted window of the zero-padded image
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert any(
            torch.equal(crop[i, 0], padded[i, 0, oy : oy + 6, ox : ox + 6]) for oy in range(5) for ox in range(5)
        )
    flips = D.random_flip(x.repeat(16, 1, 1, 1), gen)
    flipped = [torch.equal(f, x[i % 2].flip(-1)) for i, f in enumerate(flips)]
    assert 0 < sum(flipped) < 32
    norm = D.normalize(torch.full((1, 2, 1, 1), 255, dtype=torch.uint8), (0.5, 0.0), (0.5, 2.0))
    torch.testing.assert_close(norm.flatten(), torch.tensor([1.0, 0.5]))


def test_array_source_order_depends_only_on_seed_and_epoch(cifar10_folder):
    bundle = D.build_data(
        _data(name="cifar10", root=str(cifar10_folder), crop_padding=4, flip=True, cutout=8), batch_size=16, seed=5
    )
    a = list(bundle.train.batches(3))
    b = list(bundle.train.batches(3))
    c = list(bundle.train.batches(4))
    assert len(a) == 3 and sum(len(y) for _, y in a) == 40
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])
    # the search halves partition the training split
    assert bundle.search_train.num_samples + bundle.search_val.num_samples == 40
    assert set(bundle.search_train.indices.tolist()).isdisjoint(bundle.search_val.indices.tolist())
    assert bundle.num_classes == 10 and bundle.in_channels == 3 and bundle.image_size == 32


def test_build_data_errors():
    with pytest.raises(ConfigError, match="data.root: required for cifar10"):
        D.build_data(_data(name="cifar10"), 8, 0)
    with pytest.raises(ConfigError, match="unknown dataset"):
        _data(name="mnist")
