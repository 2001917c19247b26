"""Run-time plumbing shared by every training loop: devices, seeds, run folders,
atomic checkpoints (loaded with ``weights_only=True``).

One checkpoint writer and one reader for the whole project live here.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .atomic import atomic_path, ensure_dir, write_json
from .errors import CheckpointError, ConfigError

__all__ = [
    "resolve_device",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
    "RunDir",
    "rng_state",
    "set_rng_state",
]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to run on: the given one, else CUDA when present, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r}: not a valid torch device") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA was asked for but is not available on this machine")
    return dev


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _to_plain(obj: Any) -> Any:
    """Convert numpy scalars/arrays and Paths to plain python so weights_only loading accepts them."""
    if isinstance(obj, Mapping):
        # int keys stay ints: optimizer state dicts are keyed by parameter index
        return {(k if isinstance(k, (int, str)) else str(k)): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_plain(v) for v in obj) if isinstance(obj, list) else tuple(_to_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Atomically write ``state`` (tensors, state dicts, plain python) with ``torch.save``.

    The file is first written beside the target and renamed, so an interrupted save
    never corrupts an existing checkpoint.
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(_to_plain(dict(state)), tmp)
    return target


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises :class:`CheckpointError` naming the file for a missing, truncated or foreign file.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        first = (str(exc).strip().splitlines() or [""])[0]  # torch's messages run over many lines
        raise CheckpointError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {first})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{p}: checkpoint does not hold a dictionary")
    return state


def rng_state() -> dict[str, Any]:
    """All RNG states (python, numpy, torch CPU, CUDA when present) as checkpointable values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": json.dumps(random.getstate()),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "name": np_state[0], "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunDir:
    """A run folder: resolved config, metrics, checkpoints and pictures in one place.

    Layout::

        RUN/config.json        resolved settings of the run
        RUN/metrics.json       final metrics
        RUN/checkpoints/       last.pt, best.pt, ...
        RUN/figures/           pictures
        RUN/tb/                TensorBoard event files
    """

    def __init__(self, root: str | os.PathLike):
        self.root = ensure_dir(root)

    @property
    def checkpoints(self) -> Path:
        return ensure_dir(self.root / "checkpoints")

    @property
    def figures(self) -> Path:
        return ensure_dir(self.root / "figures")

    @property
    def tensorboard(self) -> Path:
        return ensure_dir(self.root / "tb")

    def write_config(self, config: Mapping[str, Any]) -> Path:
        return write_json(self.root / "config.json", {**dict(config), "written": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def write_metrics(self, metrics: Mapping[str, Any], name: str = "metrics.json") -> Path:
        return write_json(self.root / name, dict(metrics))

    def read_json(self, name: str) -> Any:
        path = self.root / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: not found") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
