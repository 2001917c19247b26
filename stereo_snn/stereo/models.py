"""The bundled stereo models and the choice of one for a recording.

Each bundled model was trained for one sensor layout and size (DSEC 640x480, MVSEC 346x260);
``stereo_snn/data/models/index.json`` lists them (name, layout, height, width, file).
:func:`choose_checkpoint` gives the checkpoint for a set of recordings: the user's own when
given (checked against the sensor size it was trained for), else the bundled model of the
recordings' layout and size. A recording no model fits gets one :class:`ModelChoiceError` line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from ..errors import CheckpointError

__all__ = [
    "BUNDLED_DIR",
    "BundledModel",
    "ModelChoiceError",
    "bundled_models",
    "choose_checkpoint",
    "default_checkpoint",
    "check_sensor_size",
]

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "models"


class ModelChoiceError(CheckpointError):
    """No model fits the recording (layout or sensor size)."""


class Recording(Protocol):
    name: str
    layout: str
    height: int
    width: int


@dataclass(frozen=True)
class BundledModel:
    """One entry of the bundled-model index: ``layout`` ("dsec", "mvsec"), sensor size in pixels."""

    name: str
    layout: str
    height: int
    width: int
    path: Path

    def describe(self) -> str:
        return f"{self.name} ({self.layout}, {self.width}x{self.height})"


def bundled_models(index: str | Path | None = None) -> list[BundledModel]:
    """The bundled models listed in ``index`` (default: the installed ``data/models/index.json``)."""
    path = Path(index) if index is not None else BUNDLED_DIR / "index.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["models"]
        return [
            BundledModel(
                str(r["name"]), str(r["layout"]), int(r["height"]), int(r["width"]), path.parent / str(r["file"])
            )
            for r in rows
        ]
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: the bundled model index is missing from this installation") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable bundled model index ({exc})") from exc


def default_checkpoint(index: str | Path | None = None) -> Path:
    """The first bundled model of the index (the DSEC one): the model of last resort, e.g. for
    the energy of a simulated frame. CheckpointError when its file is missing."""
    path = bundled_models(index)[0].path
    if not path.is_file():
        raise CheckpointError(f"{path}: the bundled model is missing from this installation")
    return path


def _sizes(recordings: Sequence[Recording]) -> set[tuple[str, int, int]]:
    return {(r.layout, int(r.height), int(r.width)) for r in recordings}


def choose_checkpoint(
    recordings: Sequence[Recording], checkpoint: str | Path | None = None, index: str | Path | None = None
) -> Path:
    """The checkpoint to run on ``recordings``: ``checkpoint`` when given, else the bundled model
    whose layout and sensor size match (a generic event-file pair matches by size only).

    Raises ModelChoiceError when the recordings mix sizes or no bundled model fits them.
    """
    if checkpoint is not None:
        return Path(checkpoint)
    kinds = _sizes(recordings)
    if not kinds:
        raise ModelChoiceError("no recording to choose a model for")
    if len({(h, w) for _, h, w in kinds}) > 1:
        raise ModelChoiceError(
            "the recordings differ in sensor size ("
            + ", ".join(f"{w}x{h}" for _, h, w in sorted(kinds))
            + "): run them separately or pass --checkpoint"
        )
    models = bundled_models(index)
    layout, h, w = sorted(kinds)[0]
    for m in models:
        if (m.height, m.width) == (h, w) and (layout == "generic" or m.layout == layout):
            return m.path
    have = ", ".join(m.describe() for m in models)
    raise ModelChoiceError(
        f"{recordings[0].name}: no bundled model for a {w}x{h} {layout} recording "
        f"(bundled: {have}); train one with `stereo-snn train` and pass --checkpoint"
    )


def check_sensor_size(recordings: Sequence[Recording], trained_size: Sequence[int] | None, source: str) -> None:
    """ModelChoiceError when a recording's sensor size differs from the size ``[H, W]`` the model
    in ``source`` was trained on (its disparities are in that sensor's pixels)."""
    if not trained_size:
        return
    th, tw = (int(v) for v in trained_size)
    for r in recordings:
        if (int(r.height), int(r.width)) != (th, tw):
            raise ModelChoiceError(
                f"{source}: trained on {tw}x{th} recordings, but {r.name} is {r.width}x{r.height}; its disparities "
                f"would be off by the scale between the sensors: use a model for this sensor, or --any-size to run anyway"
            )
