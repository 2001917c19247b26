"""The spatial-temporal search engine (SpikeDHS + DGS + temporal/hybrid search). See docs/engine.md."""

from .activation import E_AC_PJ, E_MAC_PJ, CellNeurons, NodeActivation
from .cell import Cell, Resample, Signal, edge_inputs, num_edges
from .config import MOVES, TrellisConfig
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
from .trellis import SpikingTrellis, is_arch_name, split_parameters, trellises
from .energy import EnergyReport, LayerEnergy, ann_twin, energy_report
from .dgs import DGSConfig, SurrogateSearch
from .architect import SearchConfig, Searcher

__all__ = [
    "E_AC_PJ", "E_MAC_PJ", "CellNeurons", "NodeActivation", "Cell", "Resample", "Signal", "edge_inputs",
    "num_edges", "MOVES", "TrellisConfig", "GENOTYPE_FORMAT", "GENOTYPE_VERSION", "CellGenotype",
    "ComponentGenotype", "Genotype", "decode_cell", "genotype_from_dict", "genotype_to_dict", "load_genotype",
    "save_genotype", "viterbi", "ALL_CANDIDATES", "DEFAULT_CANDIDATES", "OPS", "OpSpec", "SeqConvBN", "make_op",
    "SpikingTrellis", "is_arch_name", "split_parameters", "trellises", "EnergyReport", "LayerEnergy", "ann_twin",
    "energy_report", "DGSConfig", "SurrogateSearch", "SearchConfig", "Searcher",
]
