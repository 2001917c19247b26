"""Project exception types, one per family.

Every error a user can cause (bad files, bad settings) is raised as a subclass of
:class:`StereoSNNError` with a message that names the thing and the problem. The
command line turns these into a one-line message and a non-zero exit code.
"""

from __future__ import annotations


class StereoSNNError(Exception):
    """Base class of every error this project raises on purpose."""


class EventFileError(StereoSNNError):
    """An event file (h5/npz/hdf5) is missing, unreadable or malformed."""


class CorruptFileError(EventFileError):
    """A file contradicts itself (e.g. an ``ms_to_idx`` index that disagrees with the
    timestamps it indexes): every window read from it may be wrong, so commands stop."""


class DatasetError(StereoSNNError):
    """A dataset folder, ground-truth file, calibration or split is missing or malformed."""


class RepresentationError(StereoSNNError):
    """Impossible settings for an event representation (bins < 1, bad sizes, ...)."""


class ConfigError(StereoSNNError):
    """A configuration value or command-line setting is impossible."""


class GenotypeError(StereoSNNError):
    """A genotype file is malformed or incompatible with the network being built."""


class CheckpointError(StereoSNNError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


class OutputError(StereoSNNError):
    """An output location cannot be written."""
