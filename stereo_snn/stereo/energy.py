"""Measured energy per frame of a stereo network and of its all-ANN twin (engine's report).

The figures come from a real forward pass on a real event window (firing rates depend on
the data): compute energy (MACs x 4.6 pJ + ACs x 0.9 pJ, Horowitz 45 nm) is the headline,
spikingjelly's memory-access term is reported beside it, labelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..events.recording import Events
from ..search import EnergyReport, ann_twin, energy_report
from ..windows import read_windows
from .data import StereoSource
from .infer import EmptyWindowError, Predictor

__all__ = ["StereoEnergy", "measure_energy", "energy_table", "first_window"]


@dataclass(frozen=True)
class StereoEnergy:
    """Energy reports (one frame = one stereo window) of a network and its ANN twin;
    energies in millijoules per frame, ``height`` x ``width`` pixels."""

    snn: EnergyReport
    ann: EnergyReport
    height: int
    width: int

    @property
    def ratio_compute(self) -> float:
        """ANN twin / SNN compute energy (inf when the SNN's is 0)."""
        return self.ann.compute_mj / self.snn.compute_mj if self.snn.compute_mj > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """``{"snn": report dict, "ann": report dict, "ratio_compute", "size": [H, W]}`` (the JSON files)."""
        return {
            "snn": self.snn.to_dict(),
            "ann": self.ann.to_dict(),
            "ratio_compute": self.ratio_compute,
            "size": [self.height, self.width],
        }


def first_window(predictor: Predictor, source: StereoSource) -> tuple[Events, Events]:
    """Left/right events of the first window of ``source`` that lies wholly after the first
    event and has events in both cameras; EmptyWindowError when there is none."""
    start, _ = source.time_range_us()
    windows = read_windows(
        source.entries(),
        lambda e: predictor.window(source, e),
        [],
        start_us=start,
        window_us=predictor.window_us,
        whole_window=True,
        errors=(EmptyWindowError,),
    )
    found = next(windows, None)
    if found is None:
        raise EmptyWindowError(f"{source.name}: no window with events to measure on")
    return found.value


def measure_energy(predictor: Predictor, left: Events, right: Events, height: int, width: int) -> StereoEnergy:
    """Energy of the network and its ANN twin on one window of rectified events."""
    lt, rt = predictor.inputs(left, right, height, width)
    model = predictor.model.eval()
    with torch.no_grad():
        snn = energy_report(model, (lt, rt))
        ann = energy_report(ann_twin(model).eval(), (lt, rt))
    return StereoEnergy(snn, ann, height, width)


def energy_table(result: StereoEnergy) -> str:
    """A short side-by-side summary (mJ per frame) of :func:`measure_energy`'s result."""
    rows = [("", "compute mJ/frame", "memory mJ/frame", "MACs", "ACs")]
    for r, label in ((result.snn, "SNN (ours)"), (result.ann, "ANN twin")):
        rows.append((label, f"{r.compute_mj:.4f}", f"{r.memory_mj:.4f}", f"{r.macs:,}", f"{r.acs:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows
    ]
    lines.append(f"ANN twin / SNN compute energy: {result.ratio_compute:.1f}x")
    return "\n".join(lines)
