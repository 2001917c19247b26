"""Disparity inference, window by window, with bounded memory.

For each entry (a ground-truth / test timestamp, or one the user gives) the events of the
``window_ms`` before it are read from both cameras, turned into the representation, run
through the network at full resolution and written as ``OUT/<seq>/<6-digit index>.png``
(uint16, disparity x 256: the DSEC submission layout), optionally also as float32 ``.npy``,
depth (metres, from the calibration) and colour previews. Only one window is in memory at a
time. A window without events, or one that fails to read or to run, is reported (one
line through ``log``) and skipped; the others go on. A window that ends at or before the
recording's first event (e.g. the first DSEC ground-truth map: nothing was recorded before
it) is an expected, quiet skip: recorded in the report with the reason
:data:`BEFORE_FIRST_EVENT` and counted in :func:`skip_summary`, without a line of its own.
An output folder that cannot be written stops the run at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_path, ensure_dir
from ..errors import DatasetError, OutputError, StereoSNNError
from ..events.dsec import write_submission_png
from ..events.recording import Events
from ..runtime import resolve_device
from ..spiking import carried_state, reset
from ..viz import colorize, save_image
from ..windows import BEFORE_FIRST_EVENT, NO_GROUND_TRUTH, before_first_event, read_windows, skip_summary
from .config import StereoConfig
from .data import Entry, Representer, StereoSource

__all__ = [
    "Predictor",
    "InferReport",
    "infer_source",
    "EmptyWindowError",
    "BEFORE_FIRST_EVENT",
    "NO_GROUND_TRUTH",
    "before_first_event",
    "skip_summary",
]


class EmptyWindowError(DatasetError):
    """A window holds no events in one or both cameras (nothing to match)."""


class Predictor:
    """Runs a trained stereo network on event windows (one at a time, no gradients).

    predict_events(left, right, height, width) -> float32 (H, W) disparity in pixels.

    Example (an untrained tiny network on random events of a 48x64 sensor; a trained one
    comes from :func:`~stereo_snn.stereo.network.load_model`):

    >>> import numpy as np
    >>> from stereo_snn.events import Events
    >>> from stereo_snn.search import Genotype
    >>> from stereo_snn.stereo.config import load_config
    >>> from stereo_snn.stereo.infer import Predictor
    >>> from stereo_snn.stereo.network import build_network, build_supernet
    >>> cfg = load_config("tiny")
    >>> supernet = build_supernet(cfg)
    >>> genotype = Genotype(components={"feature": supernet.feature.derive(), "matching": supernet.matching.derive()})
    >>> predictor = Predictor(build_network(cfg, genotype), cfg, device="cpu")
    >>> rng = np.random.default_rng(0)
    >>> def random_events(n=2000):  # x, y in pixels, t in microseconds, p in {0, 1}
    ...     return Events(rng.uniform(0, 63, n).astype(np.float32), rng.uniform(0, 47, n).astype(np.float32),
    ...                   np.sort(rng.integers(0, 50_000, n)), rng.integers(0, 2, n).astype(np.int8))
    >>> disparity = predictor.predict_events(random_events(), random_events(), 48, 64)
    >>> disparity.shape, disparity.dtype
    ((48, 64), dtype('float32'))
    """

    def __init__(self, model: torch.nn.Module, cfg: StereoConfig, device: torch.device | str | None = None):
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.represent = Representer(cfg)
        self.window_us = int(round(cfg.window_ms * 1000))
        self.history = int(cfg.train.stream_windows)  # > 0: a streaming model (predict_window)
        self._last: tuple[Any, ...] | None = None  # (recording, size, end time) of the last streamed window

    def predict_window(self, source: StereoSource, entry: Entry, left: Events, right: Events) -> np.ndarray:
        """Disparity (float32 (H, W), pixels) of ``entry``'s window of ``source``, whose events
        ``left``/``right`` come from :meth:`window`.

        A model trained on streamed windows (``train.stream_windows`` K > 0) carries its neuron
        states from the previous call when that window of the same recording ended where this
        one starts; otherwise it starts from rest and first runs the K windows before this one
        (:meth:`StereoSource.windows_before`: as in training, one that would start before the
        recording is all zeros). A stateless model treats every window on its own.
        """
        if self.history == 0:
            return self.predict_events(left, right, source.height, source.width)
        here = (source.name, source.height, source.width)
        follows = self._last == (*here, int(entry.t_us) - self.window_us)
        self._last = None  # until this window is done
        current = self.inputs(left, right, source.height, source.width)
        with carried_state():
            if not follows:
                reset(self.model)
                for before in source.windows_before(entry, self.window_us, self.history):
                    if before is not None:
                        past = self.inputs(*source.window(before, self.window_us), *here[1:])
                    else:  # a window that would start before the recording is an empty one, as in training
                        past = tuple(torch.zeros_like(v) for v in current)
                    self.predict_inputs(*past)
            out = self.predict_inputs(*current)
        self._last = (*here, int(entry.t_us))
        return out

    def window(self, source: StereoSource, entry: Entry) -> tuple[Events, Events]:
        """Left/right events of the window before ``entry``; EmptyWindowError when a camera has none."""
        left, right = source.window(entry, self.window_us)
        empty = [cam for cam, ev in (("left", left), ("right", right)) if len(ev) == 0]
        if empty:
            raise EmptyWindowError(
                f"{source.name}: no events in the {' and '.join(empty)} camera between "
                f"{entry.t_us - self.window_us} and {entry.t_us} us (entry {entry.index})"
            )
        return left, right

    def predict_events(self, left: Events, right: Events, height: int, width: int) -> np.ndarray:
        """Disparity (float32 (H, W), pixels) of one window of rectified events."""
        return self.predict_inputs(*self.inputs(left, right, height, width))

    @torch.no_grad()
    def predict_inputs(self, left: torch.Tensor, right: torch.Tensor) -> np.ndarray:
        """Disparity (float32 (H, W), pixels) of one pair of inputs from :meth:`inputs`."""
        return self.model(left, right)["disparity"][0].float().cpu().numpy()

    def inputs(self, left: Events, right: Events, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's left/right inputs [T, 1, C, H, W] on the device (both views at once)."""
        lt, rt = self.represent.pair(left, right, height, width)
        return (torch.from_numpy(lt).unsqueeze(1).to(self.device), torch.from_numpy(rt).unsqueeze(1).to(self.device))


@dataclass
class InferReport:
    """What an inference run wrote and what it skipped (with the reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    zip_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": [str(p) for p in self.written],
            "skipped": self.skipped,
            "zip": str(self.zip_path) if self.zip_path else None,
        }


def infer_source(
    predictor: Predictor,
    source: StereoSource,
    out_dir: str | os.PathLike,
    entries: Sequence[Entry] | None = None,
    npy: bool = False,
    depth: bool = False,
    preview: bool = False,
    progress: bool = True,
    report: InferReport | None = None,
    log: Callable[[str], None] = print,
) -> InferReport:
    """Write the disparity of every entry of ``source`` under ``out_dir/<source.name>/``.

    Extras go to ``out_dir/<source.name>/extra/`` so the zip of the PNGs stays a clean
    submission: npy: ``<index>.npy`` float32 disparity (pixels); depth: ``<index>_depth.npy``
    float32 metres (0 where the disparity is 0; needs a calibrated source); preview:
    ``<index>_color.png``.
    """
    report = report or InferReport()
    seq_dir = ensure_dir(Path(out_dir) / source.name)
    extra = ensure_dir(seq_dir / "extra") if (npy or depth or preview) else seq_dir
    if depth and not hasattr(source, "depth"):
        raise OutputError(f"{source.name}: --depth needs a calibrated source (DSEC folder or MVSEC file)")
    todo = list(entries) if entries is not None else source.entries()
    start_us, _ = source.time_range_us()
    bar = tqdm(todo, desc=f"infer {source.name}", unit="window", disable=not progress)

    def predict(entry: Entry) -> np.ndarray:
        return predictor.predict_window(source, entry, *predictor.window(source, entry))

    for window in read_windows(
        bar,
        predict,
        report.skipped,
        start_us=start_us,
        window_us=predictor.window_us,
        errors=(StereoSNNError, RuntimeError, ValueError),
        sequence=source.name,
        log=log,
    ):
        entry, disp = window.entry, window.value
        report.written.append(write_submission_png(out_dir, source.name, entry.index, disp))
        stem = extra / f"{entry.index:06d}"
        if npy:
            _save_npy(stem.with_suffix(".npy"), disp)
        if depth:
            _save_npy(stem.parent / f"{stem.name}_depth.npy", np.nan_to_num(source.depth(disp), nan=0.0))
        if preview:
            save_image(stem.parent / f"{stem.name}_color.png", colorize(disp, 0, predictor.cfg.max_disparity))
    return report


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array, dtype=np.float32))
