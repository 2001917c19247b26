"""Settings of the stereo event simulator (one frozen dataclass, validated on creation)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ...errors import ConfigError
from .textures import TEXTURE_KINDS

__all__ = ["SimConfig"]


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
        render_rate_hz: rendered frames per second fed to the event model.
        gt_rate_hz: ground-truth disparity maps per second (DSEC: 10).
        start_time_us: absolute time of the first frame (µs); also the recording's t_offset.
        fx: rectified focal length in pixels (default 0.9 * width).
        baseline_m: stereo baseline in metres.
        max_disparity: largest disparity in the scene, pixels (default 0.15 * width).
        min_disparity: disparity of the background plane, pixels (default max / 4).
        speed_px_s: image speed of the nearest possible point due to the rig's translation,
            pixels per second (default 1.0 * width).
        ego_motion: scale of the rig's jitter, forward motion and roll (0 = pure translation).
        object_motion: scale of the objects' own translation and spin (0 = static objects).
        num_objects: number of foreground objects in front of the background plane.
        textures: texture kinds to draw from (see TEXTURE_KINDS).
        texture_size: side of each texture in texels.
        threshold_pos, threshold_neg: nominal ON/OFF contrast thresholds (log units).
        threshold_sigma: per-pixel threshold mismatch (standard deviation, log units).
        refractory_us: pixel refractory period in microseconds.
        noise_rate_hz: shot-noise events per pixel per second (both polarities).
        log_eps: eps in log(I + eps), intensities in [0, 1].
        warp: strength of the raw-to-rectified camera warp (0 = identity rectification).
        seed: random seed; the whole recording is a deterministic function of the config.
    """

    name: str = "sim"
    height: int = 120
    width: int = 160
    duration_ms: float = 1000.0
    render_rate_hz: float = 1000.0
    gt_rate_hz: float = 10.0
    start_time_us: int = 0
    fx: float | None = None
    baseline_m: float = 0.6
    max_disparity: float | None = None
    min_disparity: float | None = None
    speed_px_s: float | None = None
    ego_motion: float = 1.0
    object_motion: float = 1.0
    num_objects: int = 4
    textures: tuple[str, ...] = field(default=TEXTURE_KINDS)
    texture_size: int = 256
    threshold_pos: float = 0.2
    threshold_neg: float = 0.2
    threshold_sigma: float = 0.03
    refractory_us: int = 100
    noise_rate_hz: float = 0.1
    log_eps: float = 1e-3
    warp: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.textures, list):
            object.__setattr__(self, "textures", tuple(self.textures))
        if not isinstance(self.textures, tuple) or not all(isinstance(t, str) for t in self.textures):
            raise ConfigError(f"textures: expected a list of texture names, got {self.textures!r}")
        checks: list[tuple[bool, str]] = [
            (self.height >= 8 and self.width >= 8, f"height/width: sensor {self.height}x{self.width} is too small (min 8x8)"),
            (self.duration_ms > 0, f"duration_ms: must be > 0, got {self.duration_ms}"),
            (self.render_rate_hz > 0, f"render_rate_hz: must be > 0, got {self.render_rate_hz}"),
            (1e6 / self.render_rate_hz >= 1 if self.render_rate_hz > 0 else True,
             f"render_rate_hz: {self.render_rate_hz} Hz is above 1 MHz (frames closer than 1 µs)"),
            (self.gt_rate_hz > 0, f"gt_rate_hz: must be > 0, got {self.gt_rate_hz}"),
            (self.gt_rate_hz <= self.render_rate_hz, f"gt_rate_hz: {self.gt_rate_hz} Hz exceeds render_rate_hz {self.render_rate_hz} Hz"),
            (self.start_time_us >= 0, f"start_time_us: must be >= 0, got {self.start_time_us}"),
            (self.fx is None or self.fx > 0, f"fx: must be > 0, got {self.fx}"),
            (self.baseline_m > 0, f"baseline_m: must be > 0, got {self.baseline_m}"),
            (self.speed_px_s is None or self.speed_px_s >= 0, f"speed_px_s: must be >= 0, got {self.speed_px_s}"),
            (self.ego_motion >= 0, f"ego_motion: must be >= 0, got {self.ego_motion}"),
            (self.object_motion >= 0, f"object_motion: must be >= 0, got {self.object_motion}"),
            (self.num_objects >= 0, f"num_objects: must be >= 0, got {self.num_objects}"),
            (len(self.textures) > 0, "textures: the list is empty"),
            (self.texture_size >= 16, f"texture_size: must be >= 16 texels, got {self.texture_size}"),
            (self.threshold_pos > 0 and self.threshold_neg > 0,
             f"threshold_pos/threshold_neg: must be > 0, got {self.threshold_pos}/{self.threshold_neg}"),
            (self.threshold_sigma >= 0, f"threshold_sigma: must be >= 0, got {self.threshold_sigma}"),
            (self.refractory_us >= 0, f"refractory_us: must be >= 0, got {self.refractory_us}"),
            (self.noise_rate_hz >= 0, f"noise_rate_hz: must be >= 0, got {self.noise_rate_hz}"),
            (self.log_eps > 0, f"log_eps: must be > 0, got {self.log_eps}"),
            (0 <= self.warp <= 10, f"warp: must be in [0, 10], got {self.warp}"),
            (bool(self.name) and "/" not in self.name and "\\" not in self.name and self.name not in (".", ".."),
             f"name: {self.name!r} is not a valid file name"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        unknown = [t for t in self.textures if t not in TEXTURE_KINDS]
        if unknown:
            raise ConfigError(f"textures: unknown kind(s) {', '.join(map(repr, unknown))} (choose from {', '.join(TEXTURE_KINDS)})")
        for v, label in ((self.duration_ms, "duration_ms"), (self.render_rate_hz, "render_rate_hz"), (self.baseline_m, "baseline_m")):
            if not math.isfinite(v):
                raise ConfigError(f"{label}: must be finite, got {v}")
        r = self.resolved_values()
        if not 0 < r["min_disparity"] < r["max_disparity"]:
            raise ConfigError(f"min_disparity/max_disparity: need 0 < min < max, got {r['min_disparity']} / {r['max_disparity']}")
        if r["max_disparity"] >= self.width / 2:
            raise ConfigError(f"max_disparity: {r['max_disparity']} px is not below half the width ({self.width / 2} px)")

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
        """Time between rendered frames in whole microseconds."""
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
    if key == "textures":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"textures: expected a list of texture names, got {value!r}")
        return tuple(value)
    if key == "name":
        if not isinstance(value, str):
            raise ConfigError(f"name: expected a string, got {value!r}")
        return value
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
