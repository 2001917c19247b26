"""Measured energy per frame of a stereo network and of its all-ANN twin (engine's report).

The figures come from a real forward pass on a real event window (firing rates depend on
the data): compute energy (MACs x 4.6 pJ + ACs x 0.9 pJ, Horowitz 45 nm) is the headline,
spikingjelly's memory-access term is reported beside it, labelled.
"""

from __future__ import annotations

from typing import Any

import torch

from ..events.recording import Events
from .infer import Predictor

__all__ = ["measure_energy", "energy_table"]


def measure_energy(predictor: Predictor, left: Events, right: Events, height: int, width: int) -> dict[str, Any]:
    """Energy reports (one frame = one stereo window) of the network and its ANN twin.

    Returns ``{"snn": report dict, "ann": report dict, "ratio_compute": ann / snn compute
    energy, "size": [H, W]}``; energies in millijoules per frame.
    """
    from ..search import ann_twin, energy_report

    lt, rt = predictor.inputs(left, right, height, width)
    model = predictor.model.eval()
    with torch.no_grad():
        snn = energy_report(model, (lt, rt))
        ann = energy_report(ann_twin(model).eval(), (lt, rt))
    ratio = ann.compute_mj / snn.compute_mj if snn.compute_mj > 0 else float("inf")
    return {"snn": snn.to_dict(), "ann": ann.to_dict(), "ratio_compute": ratio, "size": [height, width],
            "tables": {"snn": snn.table(), "ann": ann.table()}}


def energy_table(result: dict[str, Any]) -> str:
    """A short side-by-side summary (mJ per frame) of :func:`measure_energy`'s result."""
    rows = [("", "compute mJ/frame", "memory mJ/frame", "MACs", "ACs")]
    for key, label in (("snn", "SNN (ours)"), ("ann", "ANN twin")):
        r = result[key]
        rows.append((label, f"{r['compute_mj']:.4f}", f"{r['memory_mj']:.4f}", f"{r['macs']:,}", f"{r['acs']:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.append(f"ANN twin / SNN compute energy: {result['ratio_compute']:.1f}x")
    return "\n".join(lines)
