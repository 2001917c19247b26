"""Settings of the stereo application, read from a YAML/JSON file.

One :class:`StereoConfig` holds everything a run needs: the event representation, the
number of time steps, the maximum disparity, the network sizes, and the search and
training settings. Unknown keys and impossible values raise :class:`ConfigError` naming
the file and the key. The bundled presets live in ``stereo_snn/stereo/configs/*.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..search.config import ENERGY_CONSTRAINTS, MemoryConfig
from ..settings import check_field_types, load_mapping

__all__ = [
    "NetworkConfig",
    "TrainConfig",
    "SearchConfig",
    "StereoConfig",
    "load_config",
    "preset_path",
    "PRESETS_DIR",
    "DEFAULT_PRESET",
]

PRESETS_DIR = Path(__file__).resolve().parent / "configs"
#: the preset used when no config is given: the settings of the bundled DSEC model (640x480,
#: 0-128 px); ``tiny`` is the one for tests and smoke runs
DEFAULT_PRESET = "dsec"


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the stereo network (channels are per cell node; layers are trellis layers).

    feature_channels / matching_channels: channels per node in the 2D / 3D cells.
    feature_layers / matching_layers: number of cells (trellis layers) in each network.
    levels: resolution levels the trellis may use (1 = only 1/3 resolution).
    steps: intermediate nodes per cell.
    ops: candidate operation names (None = the engine's default set).
    neuron: neuron settings handed to the engine (kind, tau, v_threshold, surrogate b).
    hybrid: let the matching network choose spiking or ANN per layer (search only).
    neuron_kinds: spiking neuron kinds searched per cell (temporal search; ``[lif]``: fixed LIF).
    max_skip: at most this many skip_connect edges per derived cell (search only; None = no
    limit). An energy-weighted search favours skips, which cost nothing, and can end with
    cells that compute nothing; the cap (P-DARTS) keeps them computing.
    alphas: ``shared`` (one set of op logits per searched component, shared by all its cells,
    as in SpikeDHS/LEAStereo) or ``per_node`` (one set per trellis node); search only.
    design: ``concat`` (a concatenation cost volume over every 3-px shift at 1/3 resolution;
    small disparity ranges) or ``pyramid`` (coarse-to-fine: a group-wise correlation volume
    at 1/(3 * coarse_scale) resolution over the whole range, then a searched refinement at 1/3
    resolution; full sensor scale, see :class:`~stereo_snn.stereo.network.PyramidStereoNet`).
    coarse_scale: pooling of the 1/3-resolution features for the pyramid's coarse volume.
    coarse_window: the coarse disparity's expectation runs over the candidates within this many
    of the most likely one (0: over all). An expectation over all of them lands between the
    modes of an ambiguous match (far pixels pulled nearer, near ones farther); no weights.
    groups: channel groups of the pyramid's correlation volumes (divides steps x feature_channels).
    refine_channels / refine_layers / refine_levels: the pyramid's refinement trellis.
    refine_radius: the refinement searches offsets -R..R (1/3-resolution pixels, i.e. 3R px)
    around the coarse disparity.
    tau_candidates: time constants (time steps) each searched cell may choose for its ``lif``
    neurons, beside the other kinds (temporal search; empty: lif keeps ``neuron.tau``; the
    bundled models were searched without it).
    upsample: how the pyramid brings its 1/3-resolution disparity to full resolution:
    ``bilinear``, or ``convex`` (each full-resolution pixel a learned convex combination of its
    3x3 coarse neighbours, the weights predicted from the refinement's output as in RAFT;
    initialised to bilinear, so a bilinear checkpoint fine-tunes into it with ``--init``).
    fine_channels: channels of the pyramid's full-resolution refinement trellis (0: none). It
    sees the events themselves (ON and OFF spikes of every representation channel) and their
    coincidences with the right view's at offsets -fine_radius..fine_radius full-resolution
    pixels around the upsampled disparity, and adds a residual within that radius. Its head
    starts at zero residual, so a checkpoint without it fine-tunes into it with ``--init``.
    fine_layers / fine_levels / fine_radius: its cells, resolution levels and offset radius (px).
    fine_stride: the stride of its stem (1: it runs at full resolution; 2, the default: at half
    resolution, on full-resolution inputs, its offset logits upsampled bilinearly), which sets
    its cost: on the 2-core CPU a spiking trellis of 8 channels at 640x480 costs about 1.5 s a
    frame, at half resolution about 0.4 s.
    """

    feature_channels: int = 8
    feature_layers: int = 2
    matching_channels: int = 8
    matching_layers: int = 2
    levels: int = 2
    steps: int = 2
    ops: tuple[str, ...] | None = None
    neuron: Mapping[str, Any] = field(default_factory=dict)
    hybrid: bool = True
    neuron_kinds: tuple[str, ...] = ("lif", "plif")
    max_skip: int | None = None
    alphas: str = "shared"
    design: str = "concat"
    coarse_scale: int = 2
    coarse_window: int = 0
    groups: int = 8
    refine_channels: int = 8
    refine_layers: int = 2
    refine_levels: int = 2
    refine_radius: int = 3
    tau_candidates: tuple[float, ...] = ()
    upsample: str = "bilinear"
    fine_channels: int = 0
    fine_layers: int = 2
    fine_levels: int = 2
    fine_radius: int = 2
    fine_stride: int = 2


@dataclass(frozen=True)
class TrainConfig:
    """Retraining settings (learning rate per sample batch, epochs, crops, loss).

    dgs_every: epochs between DGS rounds (0: no DGS); dgs_batches: batch pairs per round;
    dgs_start: the 0-based epoch of the first round (None: after ``dgs_every`` epochs). The
    rounds run on two halves of the TRAINING windows, never on the validation windows that
    choose ``best.pt``.
    stream_windows: K > 0 trains a streaming SNN: before each window the network runs the K
    windows before it (no gradients), carrying its neuron states into the window, so membranes
    charged by earlier events fill event-sparse regions. Validation does the same, and
    inference carries the states across consecutive windows (``Predictor.predict_window``).
    freeze: names of the network's parts (``feature``, ``matching``, ``refine``, ``fine``,
    ``head``, ``refine_head``, ``upsample_head``, ``fine_head``) whose weights and batch-norm
    statistics stay as initialised (``--init``): to train a new stage on a trained network.
    fine_loss: how the full-resolution refinement (``network.fine_channels``) learns: ``all``
    (the default: from every valid pixel, through the disparity's loss) or ``reach`` (only
    from pixels whose error before it is within its radius, the ones it can correct; the rest
    of the network still learns from every pixel), see ``losses.disparity_loss``.
    coarse_loss: the pyramid network's deep supervision of its coarse volume (weight
    ``coarse_weight``): ``smooth_l1`` of its expected disparity, or ``ce``, the cross-entropy
    of its candidate distribution against the ground truth's two nearest candidates
    (``losses.coarse_cross_entropy``), which trains the choice of candidate itself (with
    ``network.coarse_window`` the expectation passes no gradient to far candidates).
    """

    epochs: int = 10
    batch_size: int = 2
    lr: float = 1e-3
    weight_decay: float = 0.0
    crop: tuple[int, int] | None = None
    vflip: bool = True
    loss: str = "smooth_l1"
    subpixel_b: float = 1.0
    grad_clip: float = 5.0
    dgs_every: int = 0
    dgs_batches: int = 16
    dgs_start: int | None = None
    coarse_weight: float = 0.5
    amp: bool = True
    image_every: int = 1
    stream_windows: int = 0
    freeze: tuple[str, ...] = ()
    fine_loss: str = "all"
    coarse_loss: str = "smooth_l1"


@dataclass(frozen=True)
class SearchConfig:
    """Bilevel search settings (handed to the engine's searcher).

    energy_weight: weight of the relative energy term; energy_target_mj: expected energy per
    stereo frame (both views' feature nets, the matching and refinement nets) to aim at, held by
    a Lagrange multiplier (``energy_weight`` is then its start) moved by dual ascent with
    step ``energy_dual_lr``; ``energy_constraint``: ``max`` (at most the target) or ``equal``
    (near it, below or above); ``energy_fit``: derive within the target (the derived cells'
    spiking-or-ANN choices fitted to it) (:class:`~stereo_snn.search.BilevelConfig`).
    dgs_*: as in :class:`TrainConfig` (dgs_start None: after ``dgs_every`` epochs and the warm-up).
    """

    epochs: int = 4
    batch_size: int = 2
    lr: float = 0.025
    lr_min: float = 1e-3
    arch_lr: float = 2e-3
    arch_weight_decay: float = 1e-3
    warmup_epochs: int = 1
    energy_weight: float = 0.0
    energy_target_mj: float | None = None
    energy_dual_lr: float = 0.5
    energy_constraint: str = "max"
    energy_fit: bool = False
    crop: tuple[int, int] | None = None
    dgs_every: int = 0
    dgs_batches: int = 16
    dgs_start: int | None = None
    # memory-saving mode (the engine's MemoryConfig; the defaults are the plain supernet)
    partial_channels: int = 1
    sample_ops: bool = False
    gumbel_tau: float = 1.0
    checkpoint_cells: bool = False
    amp: bool = False


@dataclass(frozen=True)
class StereoConfig:
    """Everything a stereo run needs.

    representation: event representation spec for ``stereo_snn.events.make_representation``
        (e.g. ``{"name": "voxel_grid", "bins": 10}``); its channels are split into
        ``time_steps`` steps.
    time_steps: T, the number of time steps the spiking network runs.
    max_disparity: largest disparity in pixels (full resolution); rounded up to a multiple of 3.
    window_ms: length of the event window before each ground-truth timestamp (milliseconds).
    cache_mb: memory budget (MiB) for the training windows that ``train`` and ``search`` keep
        in memory between epochs; the rest are read from the files each time (0: none).
    """

    representation: Mapping[str, Any] = field(default_factory=lambda: {"name": "voxel_grid", "bins": 10})
    time_steps: int = 5
    max_disparity: int = 48
    window_ms: float = 50.0
    cache_mb: float = 1024.0
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    @property
    def disparity_levels(self) -> int:
        """Disparity candidates in the 1/3-resolution cost volume: shifts 0, 3, ..., >= max_disparity - 1 px."""
        return -(-(self.max_disparity - 1) // 3) + 1

    @property
    def input_channels(self) -> int:
        """Channels per time step of the network's input: the representation's channels / T.

        Raises ConfigError when the representation's channels do not divide into ``time_steps``.

        >>> StereoConfig(representation={"name": "voxel_grid", "bins": 10}, time_steps=5).input_channels
        2
        """
        from ..events.represent import make_representation  # numba: only when a network is built

        channels = make_representation(dict(self.representation)).channels
        if channels % self.time_steps:
            raise ConfigError(
                f"representation {dict(self.representation)} has {channels} channels, "
                f"not divisible by time_steps={self.time_steps}"
            )
        return channels // self.time_steps

    def to_dict(self) -> dict[str, Any]:
        """Plain-python form (JSON/YAML serialisable) that :meth:`from_dict` reads back."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str = "config") -> "StereoConfig":
        """Build and validate a config; unknown keys or bad values raise ConfigError naming ``source``."""
        data = dict(data or {})
        sub = {
            "network": NetworkConfig,
            "train": TrainConfig,
            "search": SearchConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sub:
                kwargs[key] = _build(sub[key], value, f"{source}: {key}")
            elif key in {f.name for f in dataclasses.fields(cls)}:
                kwargs[key] = value
            elif key == "written":
                continue
            else:
                raise ConfigError(f"{source}: unknown setting {key!r}")
        cfg = _build(cls, kwargs, source)
        cfg._validate(source)
        return cfg

    def replace(self, **changes: Any) -> "StereoConfig":
        """A copy with top-level or dotted (``"train.epochs"``) settings changed."""
        data = self.to_dict()
        for key, value in changes.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if part not in node or not isinstance(node[part], dict):
                    raise ConfigError(f"setting {key!r}: no such section {part!r}")
                node = node[part]
            node[parts[-1]] = value
        return StereoConfig.from_dict(data, "override")

    def _validate(self, source: str) -> None:
        def need(cond: bool, key: str, what: str) -> None:
            if not cond:
                raise ConfigError(f"{source}: {key} {what}")

        check_field_types(self, source)  # wrong types (train.epochs=abc) before any comparison
        need(
            isinstance(self.representation, Mapping) and "name" in self.representation,
            "representation",
            "must be a mapping with a 'name'",
        )
        need(isinstance(self.time_steps, int) and self.time_steps >= 1, "time_steps", "must be an integer >= 1")
        need(
            isinstance(self.max_disparity, int) and self.max_disparity >= 3, "max_disparity", "must be an integer >= 3"
        )
        need(self.window_ms > 0, "window_ms", "must be > 0")
        n = self.network

        def need_int(key: str, low: int = 1, note: str = "") -> None:
            value = getattr(n, key)
            need(isinstance(value, int) and value >= low, f"network.{key}", f"must be an integer >= {low}{note}")

        for key in ("feature_channels", "matching_channels", "feature_layers", "matching_layers", "steps", "levels"):
            need_int(key)
        need(n.levels <= 4, "network.levels", "must be at most 4")
        # the engine's ALPHA_MODES (stereo_snn.search.config imports torch; a test keeps the two equal)
        need(n.alphas in ("shared", "per_node"), "network.alphas", f"must be 'shared' or 'per_node', not {n.alphas!r}")
        need(n.design in ("concat", "pyramid"), "network.design", f"must be 'concat' or 'pyramid', not {n.design!r}")
        for key in ("coarse_scale", "groups", "refine_channels", "refine_layers", "refine_levels", "refine_radius"):
            need_int(key)
        need(n.refine_levels <= 4, "network.refine_levels", "must be at most 4")
        need_int("coarse_window", 0, " (0: all candidates)")
        need(n.coarse_window == 0 or n.design == "pyramid", "network.coarse_window", "needs network.design 'pyramid'")
        need(
            n.upsample in ("bilinear", "convex"),
            "network.upsample",
            f"must be 'bilinear' or 'convex', not {n.upsample!r}",
        )
        need(
            n.upsample == "bilinear" or n.design == "pyramid",
            "network.upsample",
            "'convex' needs network.design 'pyramid'",
        )
        need_int("fine_channels", 0, " (0: no full-resolution refinement)")
        if n.fine_channels:
            need(n.design == "pyramid", "network.fine_channels", "a full-resolution refinement needs design 'pyramid'")
            for key in ("fine_layers", "fine_levels", "fine_radius", "fine_stride"):
                need_int(key)
            need(n.fine_levels <= 4, "network.fine_levels", "must be at most 4")
        need(self.train.coarse_weight >= 0, "train.coarse_weight", "must be >= 0")
        if n.design == "pyramid":
            need(
                self.train.loss == "smooth_l1",
                "train.loss",
                "must be 'smooth_l1' with network.design 'pyramid' (it has no full disparity distribution)",
            )
        need(self.train.fine_loss in ("all", "reach"), "train.fine_loss", "must be 'all' or 'reach'")
        need(self.train.coarse_loss in ("smooth_l1", "ce"), "train.coarse_loss", "must be 'smooth_l1' or 'ce'")
        need(
            self.train.coarse_loss == "smooth_l1" or n.design == "pyramid",
            "train.coarse_loss",
            "'ce' needs network.design 'pyramid' (a coarse candidate volume)",
        )
        need(
            all(isinstance(name, str) and name for name in self.train.freeze),
            "train.freeze",
            "must be a list of part names (e.g. [feature, matching, refine])",
        )
        need(self.cache_mb >= 0, "cache_mb", "must be >= 0 (MiB; 0: read every window from the files)")
        t = self.train
        need(t.epochs >= 1 and t.batch_size >= 1, "train.epochs/batch_size", "must be >= 1")
        need(t.lr > 0, "train.lr", "must be > 0")
        need(
            isinstance(t.stream_windows, int) and t.stream_windows >= 0,
            "train.stream_windows",
            "must be an integer >= 0 (0: stateless windows)",
        )
        need(
            t.loss in ("smooth_l1", "subpixel_ce"),
            "train.loss",
            f"must be 'smooth_l1' or 'subpixel_ce', not {t.loss!r}",
        )
        for crop, key in ((t.crop, "train.crop"), (self.search.crop, "search.crop")):
            if crop is not None:
                need(
                    len(crop) == 2 and all(int(c) >= 6 for c in crop),
                    key,
                    "must be [height, width] with both >= 6 pixels",
                )
        s = self.search
        need(s.epochs >= 1 and s.batch_size >= 1, "search.epochs/batch_size", "must be >= 1")
        need(s.energy_weight >= 0, "search.energy_weight", "must be >= 0")
        need(
            s.energy_target_mj is None or s.energy_target_mj > 0,
            "search.energy_target_mj",
            "must be > 0 (mJ per frame)",
        )
        need(s.energy_dual_lr >= 0, "search.energy_dual_lr", "must be >= 0")
        need(not s.energy_fit or s.energy_target_mj is not None, "search.energy_fit", "needs search.energy_target_mj")
        need(
            s.energy_constraint in ENERGY_CONSTRAINTS,
            "search.energy_constraint",
            f"must be one of {', '.join(ENERGY_CONSTRAINTS)}",
        )
        try:
            MemoryConfig.of(s)
        except ConfigError as exc:
            raise ConfigError(f"{source}: search.{exc}") from None
        for key in ("feature_channels", "matching_channels", "refine_channels", "fine_channels"):
            need(
                getattr(n, key) % s.partial_channels == 0,
                "search.partial_channels",
                f"{s.partial_channels} must divide network.{key} ({getattr(n, key)})",
            )


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: type, value: Any, source: str) -> Any:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: must be a mapping, not {type(value).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, v in value.items():
        if key not in names:
            raise ConfigError(f"{source}: unknown setting {key!r}")
        if isinstance(v, list):
            v = tuple(v)
        kwargs[key] = v
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def preset_path(name: str) -> Path:
    """Path of a bundled preset (``tiny``, ``small``, ...)."""
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
        raise ConfigError(f"config preset {name!r} not found (presets: {', '.join(names)})")
    return path


def load_config(path_or_name: str | Path | None, overrides: Mapping[str, Any] | None = None) -> StereoConfig:
    """Read a YAML/JSON config file, or a bundled preset by name (None = :data:`DEFAULT_PRESET`).

    ``overrides`` maps dotted keys (``"train.epochs"``) to values applied after reading.
    """
    if path_or_name is None:
        path = preset_path(DEFAULT_PRESET)
    else:
        path = Path(path_or_name)
        if not path.suffix and not path.is_file():  # a folder named like a preset is not a config
            path = preset_path(str(path_or_name))
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    cfg = StereoConfig.from_dict(load_mapping(path), str(path))
    if overrides:
        cfg = cfg.replace(**overrides)
    return cfg
