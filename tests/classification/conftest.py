"""Fixtures for the classification tests: real-format CIFAR archives and ImageNet-style
class folders, generated small (a few dozen images) in a temporary folder."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest


def _pattern_images(labels: np.ndarray, num_classes: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """uint8 images [N, 3, size, size] whose brightness band encodes the class, plus noise."""
    n = len(labels)
    img = rng.integers(0, 60, size=(n, 3, size, size)).astype(np.int32)
    rows = (labels * size) // max(num_classes, 1)
    for i, r in enumerate(rows):
        img[i, :, r : r + max(size // num_classes, 1)] += 180
    return np.clip(img, 0, 255).astype(np.uint8)


def write_cifar(
    root: Path,
    variant: str = "cifar10",
    n_train: int = 40,
    n_test: int = 20,
    num_classes: int | None = None,
    tar: bool = False,
    seed: int = 0,
) -> Path:
    """Write a CIFAR python-pickle archive in the published layout (protocol 2, bytes keys).

    Returns the extracted folder, or the .tar.gz when ``tar``.
    """
    rng = np.random.default_rng(seed)
    files: dict[str, dict] = {}
    if variant == "cifar10":
        k = num_classes or 10
        folder, archive = "cifar-10-batches-py", "cifar-10-python.tar.gz"
        per = np.array_split(np.arange(n_train), 5)
        for b, idx in enumerate(per, start=1):
            lab = rng.integers(0, k, len(idx))
            files[f"data_batch_{b}"] = {
                b"batch_label": b"training batch",
                b"labels": lab.tolist(),
                b"data": _pattern_images(lab, k, rng).reshape(len(idx), -1),
                b"filenames": [b"x.png"] * len(idx),
            }
        lab = rng.integers(0, k, n_test)
        files["test_batch"] = {
            b"batch_label": b"testing batch",
            b"labels": lab.tolist(),
            b"data": _pattern_images(lab, k, rng).reshape(n_test, -1),
            b"filenames": [b"y.png"] * n_test,
        }
        files["batches.meta"] = {
            b"num_cases_per_batch": 10000,
            b"label_names": [f"c{i}".encode() for i in range(k)],
            b"num_vis": 3072,
        }
    else:
        k = num_classes or 100
        folder, archive = "cifar-100-python", "cifar-100-python.tar.gz"
        for name, n in (("train", n_train), ("test", n_test)):
            lab = rng.integers(0, k, n)
            files[name] = {
                b"filenames": [b"z.png"] * n,
                b"batch_label": name.encode(),
                b"fine_labels": lab.tolist(),
                b"coarse_labels": (lab % 20).tolist(),
                b"data": _pattern_images(lab, k, rng).reshape(n, -1),
            }
        files["meta"] = {
            b"fine_label_names": [f"f{i}".encode() for i in range(k)],
            b"coarse_label_names": [f"g{i}".encode() for i in range(20)],
        }
    root.mkdir(parents=True, exist_ok=True)
    if tar:
        path = root / archive
        with tarfile.open(path, "w:gz") as tf:
            for name, obj in files.items():
                data = pickle.dumps(obj, protocol=2)
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return path
    out = root / folder
    out.mkdir()
    for name, obj in files.items():
        (out / name).write_bytes(pickle.dumps(obj, protocol=2))
    return out


def write_image_folders(
    root: Path, classes: int = 3, per_class: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0
) -> Path:
    """Write root/{train,val}/<wnid>/*.JPEG with OpenCV; returns ``root``."""
    import cv2

    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)
                img[:, :, c % 3] = 250
                assert cv2.imwrite(str(d / f"img_{i}.JPEG"), img)
    return root


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny spiking nets run fastest on one thread (two threads spin on a busy 2-core machine);
    the runs under test also set ``threads: 1``. The previous setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cifar10_folder(tmp_path: Path) -> Path:
    return write_cifar(tmp_path / "data", "cifar10")


@pytest.fixture
def cifar100_tar(tmp_path: Path) -> Path:
    return write_cifar(tmp_path / "data", "cifar100", tar=True)


@pytest.fixture
def make_cifar():
    """The archive writer, for tests that need other sizes or variants."""
    return write_cifar


@pytest.fixture
def make_image_folders():
    """The ImageNet-style folder writer."""
    return write_image_folders
