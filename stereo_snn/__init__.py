"""stereo-snn: spatial-temporal architecture search for spiking neural networks,
applied to event-camera stereo.

Subpackages:
    events      event files (DSEC, MVSEC, generic), representations, simulator (no torch)
    spiking     neurons and surrogate gradients on spikingjelly
    search      the architecture-search engine (task agnostic)
    stereo      the stereo disparity application
"""

__version__ = "0.1.0"
