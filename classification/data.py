"""Image classification data without torchvision and without downloads.

Datasets
    * CIFAR-10 / CIFAR-100 from the standard python-pickle archives: the extracted
      ``cifar-10-batches-py`` / ``cifar-100-python`` folder, the ``.tar.gz`` as
      distributed, or a folder holding either. The pickles are read with a restricted
      unpickler (:class:`SafeUnpickler`) that only rebuilds plain containers, bytes and
      numpy arrays; any other global (an arbitrary callable) is refused with a
      :class:`~stereo_snn.errors.DatasetError`, so nothing in a data file is executed.
    * ImageNet-style class folders (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``),
      decoded with OpenCV, with the standard train (random resized crop, flip) and
      evaluation (resize, centre crop) transforms, loaded by a multi-worker DataLoader.
    * scikit-learn's bundled handwritten digits (real data, 8x8 pixels, 10 classes, 1797
      images) with a seeded stratified train/test split: the dataset that needs nothing.

Every source yields batches ``(images [B, C, H, W] float32 normalised, labels [B] int64)``
and is deterministic given ``(seed, epoch)`` (any number of workers), which is what exact
resume of a training run needs. Augmentations are small functions on torch batches.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from stereo_snn.atomic import check_readable
from stereo_snn.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from .config import DataConfig

__all__ = [
    "LabeledImages",
    "SafeUnpickler",
    "safe_unpickle",
    "load_cifar",
    "load_digits_split",
    "ImageFolderDataset",
    "scan_image_folder",
    "Augment",
    "random_crop",
    "random_flip",
    "cutout",
    "normalize",
    "ArraySource",
    "FolderSource",
    "DataBundle",
    "split_indices",
    "build_data",
]

# ---------------------------------------------------------------------------- pickles

# The only globals a CIFAR python-pickle archive needs: numpy array reconstruction
# (numpy 1.x and 2.x module names) and the bytes constructor protocol-2 pickles written
# by Python 3 use. Nothing else is ever looked up.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds only builtin containers, bytes/str and numpy arrays.

    ``find_class`` refuses every global outside a fixed allow-list, so a pickle that
    tries to call an arbitrary callable (``os.system``, ``eval``...) raises
    :class:`DatasetError` instead of running it.
    """

    def __init__(self, file: io.BufferedIOBase, source: str):
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DatasetError(
                f"{self._source}: refused to unpickle global {module}.{name} "
                "(only numpy arrays and plain containers are allowed in dataset archives)"
            )
        return super().find_class(module, name)


def safe_unpickle(data: bytes, source: str) -> Any:
    """Unpickle ``data`` (bytes of a dataset pickle) with :class:`SafeUnpickler`.

    ``source`` names the file for error messages. Truncated or foreign bytes raise
    :class:`DatasetError`.
    """
    try:
        return SafeUnpickler(io.BytesIO(data), source).load()
    except DatasetError:
        raise
    except Exception as exc:  # pickle raises many types for garbage
        raise DatasetError(f"{source}: not a readable python pickle ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------------------- CIFAR


class LabeledImages(NamedTuple):
    """Images in memory: ``images`` uint8 [N, H, W, C], ``labels`` int64 [N], class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]


_CIFAR_LAYOUT = {
    # variant: (folder name, archive name, train members, test members, meta member, names key)
    "cifar10": (
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "batches.meta",
        {"fine": b"label_names"},
    ),
    "cifar100": (
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        ["train"],
        ["test"],
        "meta",
        {"fine": b"fine_label_names", "coarse": b"coarse_label_names"},
    ),
}
_CIFAR_LABEL_KEYS = {"fine": (b"labels", b"fine_labels"), "coarse": (b"coarse_labels",)}


class _MemberReader:
    """Reads named members from a CIFAR folder or from a .tar.gz archive."""

    def __init__(self, root: Path, variant: str):
        folder, archive, *_ = _CIFAR_LAYOUT[variant]
        self.tar: tarfile.TarFile | None = None
        self.folder: Path | None = None
        if root.is_file():
            self._open_tar(root)
        elif (root / folder).is_dir():
            self.folder = root / folder
        elif (root / archive).is_file():
            self._open_tar(root / archive)
        elif root.is_dir():
            self.folder = root
        else:
            raise DatasetError(f"{root}: CIFAR dataset not found (expected the '{folder}' folder or '{archive}')")

    def _open_tar(self, path: Path) -> None:
        check_readable(path, DatasetError, "archive")
        try:
            self.tar = tarfile.open(path, "r:*")
            self.members = {Path(m.name).name: m for m in self.tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DatasetError(f"{path}: not a readable tar archive ({exc})") from exc
        self.where = path

    def read(self, name: str) -> tuple[bytes, str]:
        """Bytes of member ``name`` and a printable source for errors."""
        if self.tar is not None:
            source = f"{self.where}:{name}"
            member = self.members.get(name)
            if member is None:
                raise DatasetError(f"{self.where}: archive has no member '{name}'")
            try:
                fh = self.tar.extractfile(member)
                assert fh is not None
                return fh.read(), source
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DatasetError(f"{source}: cannot read archive member ({exc})") from exc
        assert self.folder is not None
        path = self.folder / name
        if not path.is_file():
            raise DatasetError(f"{path}: missing CIFAR file")
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _as_dict(obj: Any, source: str) -> Mapping[bytes, Any]:
    if not isinstance(obj, dict):
        raise DatasetError(f"{source}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.encode() if isinstance(k, str) else k): v for k, v in obj.items()}


def load_cifar(
    root: str | os.PathLike, variant: str = "cifar10", split: str = "train", label: str = "fine"
) -> LabeledImages:
    """Read a CIFAR split from the python-pickle archive (folder or .tar.gz).

    ``variant`` is ``"cifar10"`` or ``"cifar100"``; ``split`` ``"train"`` or ``"test"``;
    ``label`` ``"fine"`` (CIFAR-10's only labels; CIFAR-100's 100 classes) or
    ``"coarse"`` (CIFAR-100's 20 super-classes). Returns uint8 images [N, 32, 32, 3].
    """
    if variant not in _CIFAR_LAYOUT:
        raise ConfigError(f"data.name {variant!r}: not a CIFAR variant (cifar10, cifar100)")
    if split not in ("train", "test"):
        raise ConfigError(f"split {split!r}: expected 'train' or 'test'")
    _, _, train_members, test_members, meta_member, names_keys = _CIFAR_LAYOUT[variant]
    if label not in names_keys:
        raise ConfigError(f"data.label {label!r}: {variant} has labels {', '.join(names_keys)}")
    reader = _MemberReader(Path(root), variant)
    try:
        raw, source = reader.read(meta_member)
        meta = _as_dict(safe_unpickle(raw, source), source)
        names = meta.get(names_keys[label])
        if not isinstance(names, list) or not names:
            raise DatasetError(f"{source}: missing or empty {names_keys[label].decode()!r} list")
        class_names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]
        images, labels = [], []
        for member in train_members if split == "train" else test_members:
            raw, source = reader.read(member)
            batch = _as_dict(safe_unpickle(raw, source), source)
            data = batch.get(b"data")
            if (
                not isinstance(data, np.ndarray)
                or data.dtype != np.uint8
                or data.ndim != 2
                or data.shape[1] != 3 * 32 * 32
            ):
                got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
                raise DatasetError(f"{source}: 'data' must be a uint8 array [N, 3072], got {got}")
            key = next((k for k in _CIFAR_LABEL_KEYS[label] if k in batch), None)
            if key is None:
                raise DatasetError(
                    f"{source}: no {' or '.join(repr(k.decode()) for k in _CIFAR_LABEL_KEYS[label])} labels"
                )
            lab = np.asarray(batch[key], dtype=np.int64)
            if lab.shape != (data.shape[0],):
                raise DatasetError(f"{source}: {lab.shape[0] if lab.ndim else 0} labels for {data.shape[0]} images")
            if lab.size and (lab.min() < 0 or lab.max() >= len(class_names)):
                raise DatasetError(f"{source}: labels outside 0..{len(class_names) - 1}")
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(lab)
    finally:
        reader.close()
    return LabeledImages(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), class_names)


# ---------------------------------------------------------------------------- digits


def load_digits_split(seed: int = 0, test_fraction: float = 0.25) -> tuple[LabeledImages, LabeledImages]:
    """scikit-learn's handwritten digits (8x8, grey levels 0..16) as uint8 [N, 8, 8, 1].

    A stratified train/test split seeded by ``seed``; ``test_fraction`` in (0, 1).
    Grey levels are mapped to 0..255 (``round(v * 255 / 16)``).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"data.test_fraction {test_fraction!r}: must be between 0 and 1")
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    names = [str(n) for n in digits.target_names]
    return (
        LabeledImages(images[idx_train], labels[idx_train], names),
        LabeledImages(images[idx_test], labels[idx_test], names),
    )


# ---------------------------------------------------------------------------- ImageNet folders

_IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp")


def scan_image_folder(root: str | os.PathLike) -> tuple[list[tuple[str, int]], list[str]]:
    """List ``root/<class>/<image>`` files: ``([(path, class index)], class names sorted)``."""
    root = Path(root)
    if root.is_file():
        raise DatasetError(f"{root}: is a file; expected a folder of class folders (<class>/<image>.JPEG)")
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found")
    check_readable(root, DatasetError, "image folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root}: no class folders (expected {root}/<class>/<image>.JPEG)")
    samples = []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        samples.extend((str(p), index) for p in files)
    if not samples:
        raise DatasetError(f"{root}: class folders hold no images ({', '.join(_IMAGE_SUFFIXES)})")
    return samples, classes


def _decode(path: str) -> np.ndarray:
    import cv2

    check_readable(path, DatasetError, "image")
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def random_resized_crop(
    img: np.ndarray,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (0.75, 4 / 3),
) -> np.ndarray:
    """Crop a random area fraction ``scale`` and aspect ``ratio`` of ``img`` [H, W, C], resize to ``size`` pixels square."""
    h, w = img.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            y = int(rng.integers(0, h - ch + 1))
            x = int(rng.integers(0, w - cw + 1))
            return _resize(img[y : y + ch, x : x + cw], size, size)
    # fall back to the largest centred crop within the ratio bounds
    aspect = min(max(w / h, ratio[0]), ratio[1])
    cw, ch = (w, int(round(w / aspect))) if w / h < aspect else (int(round(h * aspect)), h)
    cw, ch = min(cw, w), min(ch, h)
    y, x = (h - ch) // 2, (w - cw) // 2
    return _resize(img[y : y + ch, x : x + cw], size, size)


def resize_center_crop(img: np.ndarray, resize: int, size: int) -> np.ndarray:
    """Resize the shorter side of ``img`` [H, W, C] to ``resize`` pixels, then crop the centre ``size`` square."""
    h, w = img.shape[:2]
    s = resize / min(h, w)
    nh, nw = max(size, int(round(h * s))), max(size, int(round(w * s)))
    img = _resize(img, nw, nh)
    y, x = (nh - size) // 2, (nw - size) // 2
    return img[y : y + size, x : x + size]


class ImageFolderDataset(torch.utils.data.Dataset):
    """Class-folder images decoded with OpenCV, returned as uint8 tensors [C, H, W] and labels.

    ``train=True``: random resized crop to ``size`` and a horizontal flip (if ``flip``);
    otherwise resize the shorter side to ``resize`` and centre-crop ``size``. Random
    choices come from ``numpy.random.default_rng([seed, epoch, index])``, so a sample's
    augmentation does not depend on the worker that loads it; call :meth:`set_epoch`.
    """

    def __init__(
        self, root: str | os.PathLike, train: bool, size: int = 224, resize: int = 256, flip: bool = True, seed: int = 0
    ):
        self.samples, self.class_names = scan_image_folder(root)
        self.train, self.size, self.resize, self.flip, self.seed = train, size, resize, flip, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (0-based)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        img = _decode(path)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            img = random_resized_crop(img, self.size, rng)
            if self.flip and rng.random() < 0.5:
                img = img[:, ::-1]
        else:
            img = resize_center_crop(img, self.resize, self.size)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1), label


# ---------------------------------------------------------------------------- augmentations


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad images [B, C, H, W] by ``padding`` pixels and crop each back at a random offset."""
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator)
    return torch.stack([padded[i, :, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(offsets.tolist())])


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image of [B, C, H, W] left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``size`` x ``size`` pixel square per image of [B, C, H, W], centred at a random pixel (clipped at borders)."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=generator)
    cx = torch.randint(0, w, (b,), generator=generator)
    ys = torch.arange(h)[None, :]
    xs = torch.arange(w)[None, :]
    half = size // 2
    in_y = (ys >= (cy - half)[:, None]) & (ys < (cy - half + size)[:, None])
    in_x = (xs >= (cx - half)[:, None]) & (xs < (cx - half + size)[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :]
    return x.masked_fill(mask[:, None], 0.0)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Scale uint8 images [B, C, H, W] to [0, 1] and standardise per channel."""
    m = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


@dataclass(frozen=True)
class Augment:
    """Batch augmentation settings: crop padding (pixels), flip, cutout side (pixels)."""

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment normalised float images [B, C, H, W] (crop, flip, then cutout)."""
        x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        return cutout(x, self.cutout, generator)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class _BatchSource:
    """Common part of the sources: batch size, normalisation, shuffling, seed, length."""

    def __init__(
        self, count: int, batch_size: int, mean: Sequence[float], std: Sequence[float], shuffle: bool, seed: int
    ):
        if batch_size < 1:
            raise ConfigError(f"batch_size {batch_size!r}: must be >= 1")
        self.count, self.batch_size, self.mean, self.std = count, batch_size, list(mean), list(std)
        self.shuffle, self.seed = shuffle, seed

    def __len__(self) -> int:
        return math.ceil(self.count / self.batch_size)

    @property
    def num_samples(self) -> int:
        """Number of images this source yields per epoch."""
        return self.count

    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # pragma: no cover - abstract
        raise NotImplementedError


class ArraySource(_BatchSource):
    """Batches from in-memory uint8 images [N, H, W, C]: shuffled per epoch, augmented, normalised.

    ``batches(epoch)`` yields ``(x [B, C, H, W] float32, y [B] int64)``; the order and
    augmentation depend only on ``(seed, epoch)``.
    """

    def __init__(
        self,
        data: LabeledImages,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        indices: np.ndarray | None = None,
    ):
        self.indices = torch.arange(len(data.labels)) if indices is None else torch.as_tensor(indices)
        super().__init__(len(self.indices), batch_size, mean, std, shuffle, seed)
        self.images = torch.from_numpy(data.images).permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(data.labels)
        self.augment = augment

    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch``."""
        gen = _epoch_generator(self.seed, epoch)
        order = self.indices[torch.randperm(len(self.indices), generator=gen)] if self.shuffle else self.indices
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            x = normalize(self.images[idx], self.mean, self.std)
            if self.augment is not None:
                x = self.augment(x, gen)
            yield x, self.labels[idx]


class FolderSource(_BatchSource):
    """Batches from an :class:`ImageFolderDataset` through a multi-worker DataLoader.

    Same contract as :class:`ArraySource`: ``batches(epoch)`` is a function of
    ``(seed, epoch)`` only (the shuffle comes from a seeded generator, per-sample
    augmentation from the dataset's ``(seed, epoch, index)`` stream).
    """

    def __init__(
        self,
        dataset: ImageFolderDataset,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool = False,
        workers: int = 0,
        seed: int = 0,
        indices: np.ndarray | None = None,
    ):
        self.dataset = dataset
        self.subset = dataset if indices is None else torch.utils.data.Subset(dataset, [int(i) for i in indices])
        super().__init__(len(self.subset), batch_size, mean, std, shuffle, seed)
        self.workers = workers

    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch``."""
        self.dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            self.subset,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            num_workers=self.workers,
            generator=_epoch_generator(self.seed, epoch),
            pin_memory=False,
        )
        for x, y in loader:
            yield normalize(x, self.mean, self.std), y


# ---------------------------------------------------------------------------- assembly

Source = _BatchSource

_NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "digits": ((0.3053,), (0.3759,)),
}


@dataclass
class DataBundle:
    """What a run needs from its dataset.

    ``train``: training batches (augmented, shuffled); ``test``: the test split;
    ``search_train`` / ``search_val``: the two halves of the training split used by
    the bilevel search (weights / architecture). ``image_size`` in pixels.
    """

    name: str
    train: Source
    test: Source
    search_train: Source
    search_val: Source
    num_classes: int
    in_channels: int
    image_size: int
    class_names: list[str]


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)`` into (first ``fraction``, rest), both sorted."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"search.train_fraction {fraction!r}: must be between 0 and 1")
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * fraction))
    if cut == 0 or cut == n:
        raise ConfigError(f"search.train_fraction {fraction!r}: leaves an empty half of {n} training images")
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def _limit(data: LabeledImages, limit: int | None) -> LabeledImages:
    if limit is None or limit >= len(data.labels):
        return data
    if limit < 1:
        raise ConfigError(f"data.limit {limit!r}: must be >= 1 or null")
    return LabeledImages(data.images[:limit], data.labels[:limit], data.class_names)


def _assemble(
    name: str,
    make: Callable[[bool, np.ndarray | None, int], _BatchSource],
    n_train: int,
    train_indices: np.ndarray | None,
    search_fraction: float,
    seed: int,
    in_channels: int,
    image_size: int,
    class_names: list[str],
) -> DataBundle:
    """Build the four sources with ``make(train_split, indices, seed)``; ``train_indices`` (a
    subset of the training split, or None for all of it) is what training and search use."""
    half_w, half_a = split_indices(n_train, search_fraction, seed)
    if train_indices is not None:  # the halves index into the chosen subset
        half_w, half_a = train_indices[half_w], train_indices[half_a]
    return DataBundle(
        name=name,
        train=make(True, train_indices, seed),
        test=make(False, None, seed),
        search_train=make(True, half_w, seed),
        search_val=make(True, half_a, seed + 1),
        num_classes=len(class_names),
        in_channels=in_channels,
        image_size=image_size,
        class_names=class_names,
    )


def build_data(
    cfg: "DataConfig", batch_size: int, seed: int, search_fraction: float = 0.5, eval_batch_size: int | None = None
) -> DataBundle:
    """Build the data of a run from the ``data`` settings (see ``presets/defaults.yaml``).

    ``batch_size`` applies to training and search batches; ``eval_batch_size`` (default
    ``batch_size``) to the test split. ``search_fraction`` of the training split feeds
    the weight steps of a search, the rest the architecture steps.
    """
    name = cfg.name
    eval_bs = eval_batch_size or batch_size
    mean, std = _NORMALISATION.get(str(name), ((0.5,), (0.5,)))
    if name in ("cifar10", "cifar100", "digits"):
        if name == "digits":
            train, test = load_digits_split(seed=cfg.split_seed, test_fraction=cfg.test_fraction)
        else:
            if not cfg.root:
                raise ConfigError(f"data.root: required for {name} (the extracted folder or the .tar.gz)")
            train = load_cifar(cfg.root, name, "train", cfg.label)
            test = load_cifar(cfg.root, name, "test", cfg.label)
        train, test = _limit(train, cfg.limit_train), _limit(test, cfg.limit_test)
        augment = Augment(cfg.crop_padding, cfg.flip, cfg.cutout)

        def make_array(is_train: bool, indices: np.ndarray | None, s: int) -> _BatchSource:
            if is_train:
                return ArraySource(train, batch_size, mean, std, shuffle=True, augment=augment, seed=s, indices=indices)
            return ArraySource(test, eval_bs, mean, std)

        return _assemble(
            name,
            make_array,
            len(train.labels),
            None,
            search_fraction,
            seed,
            train.images.shape[-1],
            train.images.shape[1],
            train.class_names,
        )
    if name == "imagenet":
        if not cfg.root:
            raise ConfigError("data.root: required for imagenet (folder holding train/ and val/)")
        root = Path(cfg.root)
        size, resize, workers = cfg.image_size, cfg.resize, cfg.workers
        train_ds = ImageFolderDataset(root / "train", True, size, resize, cfg.flip, seed)
        test_ds = ImageFolderDataset(root / "val", False, size, resize)
        if test_ds.class_names != train_ds.class_names:
            raise DatasetError(f"{root}: val/ and train/ hold different class folders")
        n_train = len(train_ds) if cfg.limit_train is None else min(len(train_ds), cfg.limit_train)
        # a seeded random subset: the files are sorted by class, so the first N would miss classes
        every = (
            None
            if n_train == len(train_ds)
            else np.sort(np.random.default_rng(seed).permutation(len(train_ds))[:n_train])
        )
        test_idx = None if cfg.limit_test is None else np.arange(min(len(test_ds), cfg.limit_test))

        def make_folder(is_train: bool, indices: np.ndarray | None, s: int) -> _BatchSource:
            if is_train:
                return FolderSource(
                    train_ds, batch_size, mean, std, shuffle=True, workers=workers, seed=s, indices=indices
                )
            return FolderSource(test_ds, eval_bs, mean, std, workers=workers, indices=test_idx)

        return _assemble(name, make_folder, n_train, every, search_fraction, seed, 3, size, train_ds.class_names)
    raise ConfigError(f"data.name {name!r}: unknown dataset (cifar10, cifar100, imagenet, digits)")
