"""Procedural textures and the photographs bundled with scikit-image, as square gray images.

Every texture is a float32 (size, size) array in [0, 1], band-limited by a small Gaussian
blur so that the renderer (which samples it bilinearly at 1-3 screen pixels per texel) does
not alias into flickering events. Photographs are read with OpenCV straight from the image
files that ship inside the scikit-image package (no download is ever attempted; OpenCV's
wheel ships no sample images).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

from ...errors import ConfigError

__all__ = ["TEXTURE_KINDS", "bundled_photos", "make_texture"]

TEXTURE_KINDS: tuple[str, ...] = ("noise", "checkers", "stripes", "blobs", "photo")

# Natural photographs among the image files that scikit-image bundles in skimage/data
# (charts, logos and multi-page files are left out; so are stereo-benchmark images such as the
# Middlebury motorcycle pair, which are test data only). Only files that exist are used.
_PHOTO_FILES = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "moon.png",
    "rocket.jpg",
    "page.png",
    "cell.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "text.png",
)

_ANTI_ALIAS_SIGMA = 0.8  # texels


@functools.lru_cache(maxsize=1)
def bundled_photos() -> tuple[Path, ...]:
    """Paths of the photographs shipped inside the installed scikit-image package.

    Returns an empty tuple when scikit-image is missing or ships none of them.
    """
    try:
        import skimage.data
    except ImportError:  # pragma: no cover - scikit-image is a declared dependency
        return ()
    folder = Path(os.path.dirname(skimage.data.__file__))
    return tuple(folder / name for name in _PHOTO_FILES if (folder / name).is_file())


@functools.lru_cache(maxsize=32)
def _load_photo(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:  # pragma: no cover - a corrupt scikit-image install
        raise ConfigError(f"textures: cannot read bundled photograph {path}")
    return img


def _normalise(img: np.ndarray) -> np.ndarray:
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), _ANTI_ALIAS_SIGMA)
    lo, hi = float(img.min()), float(img.max())
    if hi - lo < 1e-6:
        return np.full(img.shape, 0.5, np.float32)
    return ((img - lo) / (hi - lo)).astype(np.float32)


def _value_noise(size: int, rng: np.random.Generator) -> np.ndarray:
    """Multi-scale value noise: random grids with cells from 32 texels down to 2 texels,
    upsampled (bicubic) and summed with amplitude falling by 0.7 per octave."""
    out = np.zeros((size, size), np.float32)
    cells, amp = max(2, size // 32), 1.0
    while cells <= size // 2:
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        out += amp * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        cells *= 2
        amp *= 0.7
    return out


def _checkers(size: int, rng: np.random.Generator) -> np.ndarray:
    square = int(rng.integers(3, 13))  # texels
    yy, xx = np.mgrid[0:size, 0:size]
    board = ((xx // square + yy // square) % 2).astype(np.float32)
    # two grey levels per colour so large uniform squares still carry some structure
    return board * 0.7 + 0.3 * _normalise(_value_noise(size, rng))


def _stripes(size: int, rng: np.random.Generator) -> np.ndarray:
    period = float(rng.uniform(4.0, 16.0))  # texels
    theta = float(rng.uniform(0, np.pi))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phase = (xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / period)
    wave = np.sin(phase)
    if rng.random() < 0.5:  # square-wave stripes
        wave = np.sign(wave)
    return wave.astype(np.float32) * 0.8 + 0.2 * _normalise(_value_noise(size, rng))


def _blobs(size: int, rng: np.random.Generator) -> np.ndarray:
    img = np.full((size, size), float(rng.uniform(0.2, 0.8)), np.float32)
    count = int(size * size / rng.uniform(25.0, 60.0))
    for _ in range(count):
        centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        radius = int(rng.integers(2, 9))  # texels
        cv2.circle(img, centre, radius, float(rng.random()), thickness=-1, lineType=cv2.LINE_AA)
    return img


def _photo(size: int, rng: np.random.Generator) -> np.ndarray:
    photos = bundled_photos()
    if not photos:
        raise ConfigError(
            "textures: 'photo' requested but no photographs are bundled with the installed "
            "scikit-image; drop 'photo' from the texture list"
        )
    img = _load_photo(photos[int(rng.integers(len(photos)))])
    h, w = img.shape
    side = int(min(h, w) * rng.uniform(0.6, 1.0))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = img[y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


_MAKERS = {
    "noise": _value_noise,
    "checkers": _checkers,
    "stripes": _stripes,
    "blobs": _blobs,
    "photo": _photo,
}


def make_texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Make one texture of ``kind`` (one of :data:`TEXTURE_KINDS`).

    Args:
        kind: texture family name.
        size: side length in texels.
        rng: random generator (the texture is a deterministic function of its state).

    Returns:
        float32 (size, size) array in [0, 1].
    """
    try:
        maker = _MAKERS[kind]
    except KeyError:
        raise ConfigError(f"textures: unknown texture kind {kind!r} (choose from {', '.join(TEXTURE_KINDS)})") from None
    return _normalise(maker(size, rng))
