"""Event-camera stereo simulator with ground-truth disparity.

A package rather than one module because it has four separable jobs, each testable alone:
``esim`` (the per-pixel event model, numba), ``textures`` (procedural and bundled-photo
textures), ``scene`` (layered stereo scene geometry, rendering, rectification warps, ground
truth) and ``api`` (the configurable run and the DSEC/MVSEC output). ``config`` holds the
settings dataclass.
"""

from .api import make_demo_sequences, scene_for, simulate_stereo, summarize, write_sequences
from .config import SimConfig
from .esim import EventGenerator
from .layouts import build_scene
from .presets import PRESETS, load_preset
from .scene import LAYOUTS, MOTIONS, Scene, make_rectify_map
from .textures import TEXTURE_KINDS, bundled_photos, make_texture

__all__ = [
    "SimConfig",
    "simulate_stereo",
    "make_demo_sequences",
    "write_sequences",
    "summarize",
    "scene_for",
    "EventGenerator",
    "Scene",
    "build_scene",
    "LAYOUTS",
    "MOTIONS",
    "PRESETS",
    "load_preset",
    "make_rectify_map",
    "TEXTURE_KINDS",
    "bundled_photos",
    "make_texture",
]
