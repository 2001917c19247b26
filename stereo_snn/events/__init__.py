"""Event data layer: containers, readers/writers (generic, DSEC, MVSEC), rectification.

Never imports torch (tests check this in a subprocess).
"""

from .dsec import (
    DSECCalibration,
    DSECSequence,
    DSECSplit,
    load_calibration,
    read_disparity_png,
    read_test_csv,
    validate_submission,
    write_disparity_png,
    write_dsec_sequence,
    write_submission_png,
    write_test_csv,
    zip_submission,
)
from .files import EventFile, open_events, write_event_h5, write_event_npz
from .geometry import depth_to_disparity, disparity_to_depth
from .mvsec import FOCAL_BASELINE, MVSECRecording, load_split_protocol, mvsec_split, write_mvsec_recording
from .recording import Events, StereoRecording, empty_events
from .rectify import load_rectify_map, rectify_events, write_rectify_map
from .simulator import SimConfig, make_demo_sequences, simulate_stereo

__all__ = [
    "Events",
    "StereoRecording",
    "empty_events",
    "EventFile",
    "open_events",
    "write_event_h5",
    "write_event_npz",
    "rectify_events",
    "load_rectify_map",
    "write_rectify_map",
    "depth_to_disparity",
    "disparity_to_depth",
    "DSECCalibration",
    "DSECSequence",
    "DSECSplit",
    "load_calibration",
    "read_disparity_png",
    "write_disparity_png",
    "read_test_csv",
    "write_test_csv",
    "write_dsec_sequence",
    "write_submission_png",
    "zip_submission",
    "validate_submission",
    "FOCAL_BASELINE",
    "MVSECRecording",
    "mvsec_split",
    "load_split_protocol",
    "write_mvsec_recording",
    "SimConfig",
    "simulate_stereo",
    "make_demo_sequences",
]

# representations (numba)
from .represent import (  # noqa: E402
    SBT,
    Histogram,
    MixedDensity,
    VoxelGrid,
    histogram,
    make_representation,
    mixed_density_stack,
    sbt,
    to_time_steps,
    voxel_grid,
)

__all__ += [
    "voxel_grid",
    "sbt",
    "histogram",
    "mixed_density_stack",
    "VoxelGrid",
    "SBT",
    "Histogram",
    "MixedDensity",
    "make_representation",
    "to_time_steps",
]
