"""Run-time plumbing shared by every training loop: devices, seeds, run folders,
atomic checkpoints (loaded with ``weights_only=True``).

One checkpoint writer and one reader for the whole project live here.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .atomic import atomic_path, check_readable, ensure_dir, write_json
from .errors import CheckpointError, ConfigError

__all__ = [
    "resolve_device",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
    "set_threads",
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
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ConfigError(f"device {device!r}: this machine has {n} CUDA device(s), cuda:0 to cuda:{n - 1}")
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
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder, not a checkpoint file")
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
    check_readable(p, CheckpointError, "checkpoint")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except PermissionError as exc:
        raise CheckpointError(f"{p}: permission denied (cannot read this checkpoint)") from exc
    except Exception as exc:  # torch raises many types for corrupt files
        if isinstance(exc, pickle.UnpicklingError):
            # PyTorch's message advises weights_only=False, i.e. running the file's code: never repeat it
            if "global" in str(exc).lower():
                raise CheckpointError(
                    f"{p}: not a trusted checkpoint (it holds objects other than tensors and "
                    "plain data, which are never loaded)"
                ) from exc
            raise CheckpointError(
                f"{p}: not a readable checkpoint (not written by torch.save, or damaged; {_unpickler_problem(exc)})"
            ) from exc
        first = (str(exc).strip().splitlines() or [""])[0]  # torch's messages run over many lines
        raise CheckpointError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {first})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{p}: checkpoint does not hold a dictionary")
    bad = _first_non_finite(state)
    if bad is not None:
        raise CheckpointError(
            f"{p}: tensor {bad} holds NaN or inf values; the checkpoint is unusable (training diverged?)"
        )
    return state


def _unpickler_problem(exc: Exception) -> str:
    """The one line of PyTorch's weights-only refusal that says what was found (it spans many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else "unknown content")
    return "unknown content"


def _first_non_finite(obj: Any, prefix: str = "") -> str | None:
    """Dotted key of the first floating-point tensor in ``obj`` (nested dicts/lists) with a NaN/inf."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            return None if bool(torch.isfinite(obj).all()) else prefix or "<root>"
        return None
    items = obj.items() if isinstance(obj, Mapping) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = _first_non_finite(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def set_threads(threads: int | None, setting: str = "--threads") -> None:
    """Set torch's CPU thread count; ``None`` or 0 keeps torch's default.

    Raises :class:`ConfigError` naming ``setting`` for a negative or non-integer count.
    """
    if threads is None or threads == 0:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"{setting} {threads!r}: must be a whole number of threads >= 0 (0 = torch's default)")
    torch.set_num_threads(threads)


def rng_state() -> dict[str, Any]:
    """All RNG states (python, numpy, torch CPU, CUDA when present) as checkpointable values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": json.dumps(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "name": np_state[0],
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
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
        # saved on a machine with more GPUs (e.g. resumed on fewer): the devices this one has
        torch.cuda.set_rng_state_all(list(state["cuda"])[: torch.cuda.device_count()])


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
