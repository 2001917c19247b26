"""The spatial-temporal search engine (SpikeDHS + DGS + temporal/hybrid search). See docs/engine.md.

The names are loaded lazily (PEP 562 module ``__getattr__``): ``from stereo_snn.search import
Searcher`` works as usual, while importing a light submodule such as ``stereo_snn.search.cli``
(the CLI registrar) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..spiking.lazy import lazy_exports

_MODULES: dict[str, tuple[str, ...]] = {
    ".activation": ("E_AC_PJ", "E_MAC_PJ", "E_UPDATE_PJ", "CellNeurons", "NodeActivation"),
    ".cell": ("Cell", "Resample", "Signal", "edge_inputs", "num_edges"),
    ".config": ("ALPHA_MODES", "MOVES", "MemoryConfig", "TrellisConfig"),
    ".genotype": (
        "GENOTYPE_FORMAT",
        "GENOTYPE_VERSION",
        "CellGenotype",
        "ComponentGenotype",
        "Genotype",
        "decode_cell",
        "genotype_from_dict",
        "genotype_to_dict",
        "load_genotype",
        "save_genotype",
        "viterbi",
    ),
    ".ops": ("ALL_CANDIDATES", "DEFAULT_CANDIDATES", "OPS", "OpSpec", "SeqConvBN", "make_op"),
    ".trellis": ("SpikingTrellis", "is_arch_name", "split_parameters", "trellises"),
    ".energy": ("PJ_PER_MJ", "EnergyReport", "LayerEnergy", "ann_twin", "energy_report"),
    ".dgs": ("DGSConfig", "SurrogateSearch"),
    ".report": ("REPORT_FILE", "Decision", "SearchReport", "noise_margin", "search_report"),
    ".architect": ("BilevelConfig", "Searcher"),
}
_EXPORTS: dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .activation import E_AC_PJ, E_MAC_PJ, E_UPDATE_PJ, CellNeurons, NodeActivation
    from .architect import BilevelConfig, Searcher
    from .cell import Cell, Resample, Signal, edge_inputs, num_edges
    from .config import ALPHA_MODES, MOVES, MemoryConfig, TrellisConfig
    from .dgs import DGSConfig, SurrogateSearch
    from .energy import PJ_PER_MJ, EnergyReport, LayerEnergy, ann_twin, energy_report
    from .genotype import (
        GENOTYPE_FORMAT,
        GENOTYPE_VERSION,
        CellGenotype,
        ComponentGenotype,
        Genotype,
        decode_cell,
        genotype_from_dict,
        genotype_to_dict,
        load_genotype,
        save_genotype,
        viterbi,
    )
    from .ops import ALL_CANDIDATES, DEFAULT_CANDIDATES, OPS, OpSpec, SeqConvBN, make_op
    from .report import REPORT_FILE, Decision, SearchReport, noise_margin, search_report
    from .trellis import SpikingTrellis, is_arch_name, split_parameters, trellises
