"""Settings of the stereo event simulator (one frozen dataclass, validated on creation)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ...errors import ConfigError
from .scene import LAYOUTS, MOTIONS
from .textures import TEXTURE_KINDS

__all__ = ["SimConfig"]

# settings that are lists of names, and the names each accepts
_NAMES: dict[str, tuple[str, ...]] = {"textures": TEXTURE_KINDS, "layouts": LAYOUTS, "motions": MOTIONS}

# inclusive ranges of the numeric settings: anything outside is refused rather than run for hours
_BOUNDS: dict[str, tuple[float, float]] = {
    "height": (8, 4096),
    "width": (8, 4096),
    "duration_ms": (0, 600_000),  # events stay in memory until written: make long data as many sequences
    "render_rate_hz": (0, 1_000_000),
    "gt_rate_hz": (0, 1000),
    "gt_window_ms": (1, 600_000),
    "warmup_ms": (0, 10_000),
    "start_time_us": (0, 2**53),
    "fx": (1, 100_000),
    "baseline_m": (1e-3, 100),
    "max_disparity": (0, 4096),
    "min_disparity": (0, 4096),
    "speed_px_s": (0, 1e5),
    "ego_motion": (0, 10),
    "object_motion": (0, 10),
    "num_objects": (0, 200),
    "thin_fraction": (0, 1),
    "slant_max_deg": (0, 80),
    "texture_size": (16, 4096),
    "threshold_pos": (0, 10),
    "threshold_neg": (0, 10),
    "threshold_sigma": (0, 1),
    "refractory_us": (0, 1_000_000),
    "noise_rate_hz": (0, 100),
    "hot_pixel_fraction": (0, 0.01),
    "hot_pixel_rate_hz": (0, 10_000),
    "log_eps": (0, 1),
    "warp": (0, 10),
    "seed": (0, 2**63 - 1),
}
_MAX_FRAMES = 1_000_000  # rendered frames per sequence


@dataclass(frozen=True)
class SimConfig:
    """All settings of :func:`stereo_snn.events.simulate_stereo`.

    Sizes in pixels, times in milliseconds / microseconds / hertz as named, distances in
    metres, contrast thresholds in log-intensity units. ``None`` means "derived from the
    image size" (see :meth:`resolved`).

    Attributes:
        name: sequence name (folder / file stem of the written sequence).
        height, width: sensor size in pixels (both cameras).
        duration_ms: simulated time span in milliseconds.
        render_rate_hz: rendered frames per second fed to the event model; ``None`` ("auto")
            picks per sequence the lowest multiple of 50 Hz that keeps the scene's motion
            within the per-frame limit (see :func:`~.api.simulate_stereo`).
        gt_rate_hz: ground-truth disparity maps per second (DSEC: 10).
        gt_window_ms: ``None``: render the whole span; else render only the frames of the
            ``gt_window_ms + warmup_ms`` before each ground-truth time (faster; the events of
            the other times are missing).
        warmup_ms: lead-in of each rendered span before its window (settles the event model).
        start_time_us: absolute time of the first frame (µs); also the recording's t_offset.
        fx: rectified focal length in pixels (default 0.9 * width).
        baseline_m: stereo baseline in metres.
        max_disparity: largest disparity in the scene, pixels (default 0.15 * width).
        min_disparity: disparity of the background plane, pixels (default max / 4).
        speed_px_s: scale of the rig's motion: its translation moves a point at the nearest
            depth (max_disparity) by about this many pixels per second, its rotations the image
            centre by a fraction of it (default 1.0 * width).
        ego_motion: scale of the rig's rotations and oscillations (0 = translation only).
        object_motion: scale of the objects' own translation and spin (0 = static objects).
        num_objects: most foreground objects per sequence (each draws from n/2 to n).
        layouts: scene layouts to draw from per sequence ("open": background and objects,
            sometimes a ground plane; "street": road, facades, poles; "room": floor, ceiling,
            walls), see LAYOUTS.
        motions: rig motions to draw from per sequence ("drive", "sideways", "sway"), see MOTIONS.
        thin_fraction: fraction of the objects that are thin (poles, wires, bars, fences); 0 by
            default (a few pixels are a large part of the small default image), 0.3 in the presets.
        slant_max_deg: largest tilt of a slanted object's plane away from fronto-parallel.
        textures: texture kinds to draw from (see TEXTURE_KINDS).
        texture_size: side of each texture in texels.
        threshold_pos, threshold_neg: nominal ON/OFF contrast thresholds (log units).
        threshold_sigma: per-pixel threshold mismatch (standard deviation, log units).
        refractory_us: pixel refractory period in microseconds.
        noise_rate_hz: background-activity (shot-noise) events per pixel per second.
        hot_pixel_fraction: fraction of pixels that are hot (fixed per sequence and camera).
        hot_pixel_rate_hz: events per second of each hot pixel.
        log_eps: eps in log(I + eps), intensities in [0, 1].
        warp: strength of the raw-to-rectified camera warp (0 = identity rectification).
        seed: random seed; the whole recording is a deterministic function of the config.
    """

    name: str = "sim"
    height: int = 120
    width: int = 160
    duration_ms: float = 1000.0
    render_rate_hz: float | None = 1000.0
    gt_rate_hz: float = 10.0
    gt_window_ms: float | None = None
    warmup_ms: float = 10.0
    start_time_us: int = 0
    fx: float | None = None
    baseline_m: float = 0.6
    max_disparity: float | None = None
    min_disparity: float | None = None
    speed_px_s: float | None = None
    ego_motion: float = 1.0
    object_motion: float = 1.0
    num_objects: int = 14
    layouts: tuple[str, ...] = field(default=LAYOUTS)
    motions: tuple[str, ...] = field(default=MOTIONS)
    thin_fraction: float = 0.0
    slant_max_deg: float = 60.0
    textures: tuple[str, ...] = field(default=TEXTURE_KINDS)
    texture_size: int = 256
    threshold_pos: float = 0.2
    threshold_neg: float = 0.2
    threshold_sigma: float = 0.03
    refractory_us: int = 100
    noise_rate_hz: float = 0.1
    hot_pixel_fraction: float = 1e-4
    hot_pixel_rate_hz: float = 200.0
    log_eps: float = 1e-3
    warp: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for key, known in _NAMES.items():
            value = getattr(self, key)
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, key, value)
            if not isinstance(value, tuple) or not all(isinstance(t, str) for t in value):
                raise ConfigError(f"{key}: expected a list of names, got {value!r}")
            if not value:
                raise ConfigError(f"{key}: the list is empty")
            unknown = [t for t in value if t not in known]
            if unknown:
                raise ConfigError(
                    f"{key}: unknown kind(s) {', '.join(map(repr, unknown))} (choose from {', '.join(known)})"
                )
        if not (bool(self.name) and "/" not in self.name and "\\" not in self.name and self.name not in (".", "..")):
            raise ConfigError(f"name: {self.name!r} is not a valid file name")
        for key, (lo, hi) in _BOUNDS.items():
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{key}: expected a finite number, got {value!r}")
            if not lo <= value <= hi:
                raise ConfigError(f"{key}: {value} is outside the allowed range [{lo:g}, {hi:g}]")
        checks: list[tuple[bool, str]] = [
            (self.duration_ms > 0, f"duration_ms: must be > 0, got {self.duration_ms}"),
            (self.gt_rate_hz > 0, f"gt_rate_hz: must be > 0, got {self.gt_rate_hz}"),
            (self.fx is None or self.fx > 0, f"fx: must be > 0, got {self.fx}"),
            (self.baseline_m > 0, f"baseline_m: must be > 0, got {self.baseline_m}"),
            (
                self.threshold_pos > 0 and self.threshold_neg > 0,
                f"threshold_pos/threshold_neg: must be > 0, got {self.threshold_pos}/{self.threshold_neg}",
            ),
            (self.log_eps > 0, f"log_eps: must be > 0, got {self.log_eps}"),
        ]
        if self.render_rate_hz is not None:
            checks += [
                (self.render_rate_hz > 0, f"render_rate_hz: must be > 0, got {self.render_rate_hz}"),
                (
                    self.gt_rate_hz <= self.render_rate_hz,
                    f"gt_rate_hz: {self.gt_rate_hz} Hz exceeds render_rate_hz {self.render_rate_hz} Hz",
                ),
                (
                    self.duration_ms * 1e-3 * self.render_rate_hz <= _MAX_FRAMES,
                    f"duration_ms/render_rate_hz: {self.duration_ms} ms at {self.render_rate_hz} Hz is more than {_MAX_FRAMES:,} frames",
                ),
            ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        r = self.resolved_values()
        if not 0 < r["min_disparity"] < r["max_disparity"]:
            raise ConfigError(
                f"min_disparity/max_disparity: need 0 < min < max, got {r['min_disparity']} / {r['max_disparity']}"
            )
        if r["max_disparity"] >= self.width / 2:
            raise ConfigError(
                f"max_disparity: {r['max_disparity']} px is not below half the width ({self.width / 2} px)"
            )

    # ------------------------------------------------------------------ derived values
    def resolved_values(self) -> dict[str, float]:
        """fx, max_disparity, min_disparity and speed_px_s with the size-based defaults filled in."""
        max_d = self.max_disparity if self.max_disparity is not None else round(0.15 * self.width, 2)
        min_d = self.min_disparity if self.min_disparity is not None else round(max_d / 4, 2)
        return {
            "fx": float(self.fx if self.fx is not None else 0.9 * self.width),
            "max_disparity": float(max_d),
            "min_disparity": float(min_d),
            "speed_px_s": float(self.speed_px_s if self.speed_px_s is not None else 1.0 * self.width),
        }

    def resolved(self) -> SimConfig:
        """A copy with every ``None`` replaced by its derived value."""
        return dataclasses.replace(self, **self.resolved_values())

    @property
    def frame_interval_us(self) -> int:
        """Time between rendered frames in whole microseconds (``render_rate_hz`` must be set)."""
        if self.render_rate_hz is None:
            raise ConfigError("render_rate_hz: 'auto' is only known once the scene is drawn")
        return max(1, int(round(1e6 / self.render_rate_hz)))

    @property
    def duration_us(self) -> int:
        return int(round(self.duration_ms * 1000.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON/YAML friendly; ``textures`` as a list)."""
        d = dataclasses.asdict(self)
        d["textures"] = list(self.textures)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SimConfig:
        """Build from a mapping (e.g. parsed YAML); unknown keys and wrong types raise ConfigError."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"simulator config: expected a mapping, got {type(values).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"simulator config: unknown setting(s) {', '.join(unknown)} (known: {', '.join(known)})")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            kwargs[key] = _coerce(key, value, cls.__dataclass_fields__[key].default)
        return cls(**kwargs)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of setting ``key`` (judged from its default)."""
    if key in _NAMES:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of names, got {value!r}")
        return tuple(value)
    if key == "name":
        if not isinstance(value, str):
            raise ConfigError(f"name: expected a string, got {value!r}")
        return value
    if key == "render_rate_hz" and (value is None or (isinstance(value, str) and value.strip().lower() == "auto")):
        return None
    if value is None:
        if default is None:
            return None
        raise ConfigError(f"{key}: a value is required")
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    want_int = isinstance(default, int)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if want_int:
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    return number
