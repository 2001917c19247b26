"""Spiking building blocks on spikingjelly: neurons, the Dspike surrogate, reset and rates."""

from .neurons import (
    NEURON_KINDS,
    SPIKING_KINDS,
    SPIKING_TYPES,
    AnnActivation,
    ChannelLIFNode,
    NeuronConfig,
    firing_rates,
    is_spiking,
    make_neuron,
    neuron_tau,
    reset,
    spiking_modules,
)
from .surrogate import DSPIKE_HALF_WINDOW, Dspike, dspike_grad

__all__ = [
    "NEURON_KINDS", "SPIKING_KINDS", "SPIKING_TYPES", "AnnActivation", "ChannelLIFNode", "NeuronConfig",
    "firing_rates", "is_spiking", "make_neuron", "neuron_tau", "reset", "spiking_modules",
    "DSPIKE_HALF_WINDOW", "Dspike", "dspike_grad",
]
