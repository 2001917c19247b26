"""Spiking building blocks on spikingjelly: neurons, the Dspike surrogate, reset and rates.

The names are loaded lazily (PEP 562 module ``__getattr__``): importing the package (e.g. by a
CLI registrar) does not import torch; the first access of a name imports its module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    **{
        name: ".neurons"
        for name in (
            "NEURON_KINDS",
            "SPIKING_KINDS",
            "SPIKING_TYPES",
            "AnnActivation",
            "ChannelLIFNode",
            "NeuronConfig",
            "carried_state",
            "carrying",
            "firing_rates",
            "grouped_multi_step",
            "is_spiking",
            "make_neuron",
            "neuron_tau",
            "reset",
            "spiking_modules",
            "state_fits",
        )
    },
    **{name: ".surrogate" for name in ("DSPIKE_HALF_WINDOW", "Dspike", "GroupedDspike", "dspike_grad")},
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .neurons import (
        NEURON_KINDS,
        SPIKING_KINDS,
        SPIKING_TYPES,
        AnnActivation,
        ChannelLIFNode,
        NeuronConfig,
        firing_rates,
        grouped_multi_step,
        is_spiking,
        make_neuron,
        neuron_tau,
        reset,
        spiking_modules,
    )
    from .surrogate import DSPIKE_HALF_WINDOW, Dspike, GroupedDspike, dspike_grad
