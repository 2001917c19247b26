"""Random scenes for the simulator: a layout of large surfaces (street, room or open space), many
occluding objects (some thin, some slanted) and a rig motion (driving, sideways, sway).

Disparities are planned against the rig's path: every object's nearest approach is at a
disparity drawn from [min_disparity, max_disparity] (one object close to the maximum), the far
background sits at ``min_disparity``, and ground (50-90 %), ceiling (40-90 %), room walls
(30-90 %) and street facades (15-80 %) are placed to reach those fractions of
``max_disparity`` at the image border, outside the rig's whole path. The renderer's near clip keeps the
ground truth at or below ``max_disparity`` whatever the motion does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .scene import RigMotion, Scene, mip_levels, rotation_matrix
from .textures import make_texture

if TYPE_CHECKING:
    from .config import SimConfig

__all__ = ["build_scene", "make_rig_motion"]

_SHAPE = {"plane": 0, "disk": 1, "ellipse": 2, "rectangle": 3, "triangle": 4, "fence": 5}
_X, _Y, _Z = np.eye(3)


@dataclass
class _Surfaces:
    """Surfaces collected while building a scene (one list entry per surface)."""

    origin: list = field(default_factory=list)
    vel: list = field(default_factory=list)
    e1: list = field(default_factory=list)
    e2: list = field(default_factory=list)
    spin: list = field(default_factory=list)
    size: list = field(default_factory=list)
    shape: list = field(default_factory=list)
    texel_m: list = field(default_factory=list)
    kind: list = field(default_factory=list)

    def add(
        self,
        kind: str,
        shape: str,
        origin,
        e1,
        e2,
        texel_m: float,
        size=(0.0, 0.0, 0.0, 0.0),
        vel=(0.0, 0.0, 0.0),
        spin: float = 0.0,
    ) -> None:
        self.kind.append(kind)
        self.shape.append(_SHAPE[shape])
        self.origin.append(np.asarray(origin, np.float64))
        self.e1.append(np.asarray(e1, np.float64))
        self.e2.append(np.asarray(e2, np.float64))
        self.texel_m.append(float(texel_m))
        self.size.append(np.asarray(size, np.float64))
        self.vel.append(np.asarray(vel, np.float64))
        self.spin.append(float(spin))


def make_rig_motion(
    kind: str, speed_px_s: float, ego: float, near_m: float, fx: float, radius_px: float, rng: np.random.Generator
) -> RigMotion:
    """The rig's motion of one ``kind`` ("drive", "sideways", "sway").

    ``speed_px_s`` sets the scale: the translation moves a point at ``near_m`` by about that
    many pixels per second; ``ego`` scales the rotations and oscillations (0: translation
    only). drive: forward along z with a slow yaw turn and small bounce / pitch / roll
    vibration; sideways: translation in the image plane (mostly horizontal) with some forward
    drift and rotation wobble; sway: hand-held, small translation and rotation oscillations
    (0.3-1.5 Hz) around a slow drift.
    """
    v_lat = speed_px_s * near_m / fx  # m/s that move a point at near_m by speed_px_s
    v_fwd = speed_px_s * near_m / radius_px  # m/s that move the image corner at near_m by it
    w_img = speed_px_s / fx  # rad/s that move the image centre by speed_px_s
    zero = np.zeros(3)
    osc_freq = rng.uniform(0.3, 1.5, 3)
    rot_freq = rng.uniform(0.3, 1.5, 3)
    osc_phase = rng.uniform(0, 2 * np.pi, 3)
    rot_phase = rng.uniform(0, 2 * np.pi, 3)
    if kind == "drive":
        vel = np.array([rng.uniform(-0.1, 0.1) * v_lat, 0.0, rng.uniform(0.5, 0.9) * v_fwd])
        rate = np.array([ego * rng.uniform(-0.1, 0.1) * w_img, 0.0, 0.0])
        osc_freq = rng.uniform(1.0, 3.0, 3)
        osc_vel = ego * np.array([0.02, 0.05, 0.0]) * v_lat
        rot_vel = ego * np.array([0.02, 0.05, 0.03]) * w_img
    elif kind == "sideways":
        heading = rng.uniform(-np.pi / 5, np.pi / 5) + (np.pi if rng.random() < 0.5 else 0.0)
        vel = np.array([math.cos(heading), math.sin(heading), 0.0]) * rng.uniform(0.6, 0.9) * v_lat
        vel[2] = ego * rng.uniform(-0.2, 0.2) * v_fwd
        rate = ego * np.array([rng.uniform(-0.05, 0.05), 0.0, 0.0]) * w_img
        osc_vel = ego * 0.1 * np.array([v_lat, v_lat, v_fwd])
        rot_vel = ego * np.array([0.1, 0.1, 0.05]) * w_img
    elif kind == "sway":
        direction = rng.normal(size=3)
        vel = 0.1 * v_lat * direction / np.linalg.norm(direction)
        rate = zero
        osc_vel = np.array([0.4 * v_lat, 0.3 * v_lat, 0.3 * v_fwd])
        rot_vel = ego * np.array([0.25, 0.2, 0.1]) * w_img
    else:  # pragma: no cover - SimConfig validates the motion names
        raise ValueError(f"unknown motion {kind!r}")
    return RigMotion(
        kind=kind,
        vel=vel,
        osc_amp=osc_vel / (2 * np.pi * osc_freq),
        osc_freq=osc_freq,
        osc_phase=osc_phase,
        rate=rate,
        rot_amp=rot_vel / (2 * np.pi * rot_freq),
        rot_freq=rot_freq,
        rot_phase=rot_phase,
    )


_STRUCTURE = ("ground", "ceiling", "wall", "facade")
_STRUCTURE_LIMIT = 0.95  # largest disparity of ground, walls, ceiling and facades, as a fraction of the maximum


def _keep_beyond(
    origin: np.ndarray,
    normal: np.ndarray,
    rig: RigMotion,
    ts: np.ndarray,
    corners: np.ndarray,
    fx: float,
    cx: float,
    cy: float,
    baseline_m: float,
    limit_px: float,
) -> np.ndarray:
    """Move a plane (``origin``, ``normal``) away from the rig's path until its disparity stays
    below ``limit_px`` at the image corners at the times ``ts`` for both cameras (the rig's
    rotations turn planes placed for a level rig towards the cameras). The disparity of a plane
    is affine in the pixel, so its largest value over the image is at a corner."""
    normal = normal / np.linalg.norm(normal)
    kinv = np.array([[1 / fx, 0, -cx / fx], [0, 1 / fx, -cy / fx], [0, 0, 1]])
    rays = [rig.rotation(t) @ kinv @ corners.T for t in ts]  # (3, 4) world directions per time
    centres = rig.position(ts)
    offsets = [np.zeros(3)] + [rig.rotation(t)[:, 0] * baseline_m for t in ts]
    for _ in range(8):
        peak, gap = 0.0, np.inf
        for i in range(len(ts)):
            for offset in (np.zeros(3), offsets[i + 1]):
                h = float(normal @ (origin - centres[i] - offset))
                w = (normal @ rays[i]) / h  # 1 / depth at the corners
                peak = max(peak, float(fx * baseline_m * w.max()))
                gap = min(gap, abs(h))
        if peak <= limit_px:
            break
        side = 1.0 if normal @ (origin - centres.mean(axis=0)) > 0 else -1.0
        origin = origin + side * normal * gap * (peak / limit_px - 1.0)
    return origin


_OBJECT_LIMIT = 0.97  # largest disparity of an object's corners, as a fraction of the maximum


def _corner_peak(
    origin: np.ndarray,
    vel: np.ndarray,
    e1: np.ndarray,
    e2: np.ndarray,
    spin: float,
    ext: np.ndarray,
    rig: RigMotion,
    ts: np.ndarray,
    focal_baseline: float,
) -> float:
    """Largest disparity (pixels) of the corners of a moving, spinning shape's bounding
    rectangle (half extents ``ext`` along e1, e2) at the times ``ts`` (the disparity over a
    planar shape peaks at a corner; depth along the optical axis is the same for both
    cameras); ``inf`` when a corner gets behind the cameras."""
    peak = 0.0
    for t in ts:
        rot = rig.rotation(t)
        c, s = math.cos(spin * t), math.sin(spin * t)
        d1, d2 = c * e1 + s * e2, -s * e1 + c * e2
        centre = origin + vel * t
        corners = np.array([centre + i * ext[0] * d1 + j * ext[1] * d2 for i in (-1, 1) for j in (-1, 1)])
        depth = (corners - rig.position(t)) @ rot[:, 2]  # the same for both cameras
        if np.any(depth <= 0):
            return math.inf
        peak = max(peak, focal_baseline / float(depth.min()))
    return peak


def _object_disparities(n: int, min_d: float, max_d: float, rng: np.random.Generator) -> np.ndarray:
    """Nearest-approach disparities of ``n`` objects, near to far: one in [0.85, 0.97] of the
    maximum, the rest uniform over [max(2, 1.5 min), 0.97 max] (with a third of them drawn
    log-uniformly so that far, small-disparity objects are common too)."""
    lo, hi = min(max(2.0, 1.5 * min_d), 0.5 * max_d), 0.97 * max_d
    d = rng.uniform(lo, hi, n)
    far = rng.random(n) < 1 / 3
    d[far] = np.exp(rng.uniform(math.log(lo), math.log(hi), int(far.sum())))
    if n:
        d[0] = rng.uniform(0.85, 0.97) * max_d
    return np.sort(d)[::-1]


def build_scene(config: SimConfig, rng: np.random.Generator) -> Scene:
    """Draw a random scene for ``config`` (a resolved :class:`SimConfig`): layout and motion
    drawn from ``config.layouts`` / ``config.motions``, ``num_objects / 2`` to ``num_objects``
    objects, a fraction ``thin_fraction`` of them thin (poles, wires, fences)."""
    h, w = config.height, config.width
    fx = float(config.fx)
    fb = fx * config.baseline_m
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    radius_px = math.hypot(w, h) / 2
    duration_s = config.duration_us * 1e-6
    max_d, min_d = float(config.max_disparity), float(config.min_disparity)
    near = fb / max_d
    base = config.baseline_m
    layout = config.layouts[int(rng.integers(len(config.layouts)))]
    motion = config.motions[int(rng.integers(len(config.motions)))]
    rig = make_rig_motion(motion, float(config.speed_px_s), config.ego_motion, near, fx, radius_px, rng)

    ts = np.linspace(0.0, duration_s, 257)
    path = rig.position(ts)
    z_max = float(path[:, 2].max())
    t_mid = duration_s / 2
    c_mid, r_mid = rig.position(t_mid), rig.rotation(t_mid)
    ahead = float(z_max - c_mid[2])  # how much nearer objects get after mid-sequence

    surf = _Surfaces()
    lo, hi = path.min(axis=0), path.max(axis=0)  # walls, floor and ceiling stay outside the rig's path

    def texel_at(depth_m: float) -> float:
        """Metres per texel for 1.5-3 screen pixels per texel at ``depth_m``."""
        return rng.uniform(1.5, 3.0) * depth_m / fx

    # ---------------------------------------------------------------- layout: large surfaces
    z_bg = z_max + fb / min_d
    surf.add("background", "plane", (rng.uniform(-50, 50), rng.uniform(-50, 50), z_bg), _X, _Y, texel_at(z_bg))
    floor_y = ceiling_y = None
    if layout in ("street", "room") or (layout == "open" and rng.random() < 0.5):
        below = base * (h - cy) / (rng.uniform(0.5, 0.9) * max_d)  # bottom row at 50-90 % of max
        floor_y = hi[1] + below
        surf.add(
            "ground",
            "plane",
            (rng.uniform(-50, 50), floor_y, rng.uniform(-50, 50)),
            _X,
            _Z,
            texel_at(below * fx / (0.5 * (h - cy))),
        )
    if layout == "street":
        height_m = rng.uniform(3.0, 25.0)
        length = z_bg * rng.uniform(0.3, 0.9)
        for side in (-1.0, 1.0):
            if rng.random() < 0.85:
                dist = base * (w / 2) / (rng.uniform(0.15, 0.8) * max_d)  # image edge at 15-80 % of max
                x = (hi[0] + dist) if side > 0 else (lo[0] - dist)
                centre = (x, 0.5 * (floor_y - height_m), lo[2] - 5.0 + length / 2)
                surf.add(
                    "facade",
                    "rectangle",
                    centre,
                    _Z,
                    _Y,
                    texel_at(dist * fx / (0.25 * w)),
                    size=(length / 2, 0.5 * (floor_y + height_m), 0, 0),
                )
    if layout == "room":
        above = base * cy / (rng.uniform(0.4, 0.9) * max_d)
        ceiling_y = lo[1] - above
        surf.add("ceiling", "plane", (rng.uniform(-50, 50), ceiling_y, 0.0), _X, _Z, texel_at(above * fx / (0.5 * cy)))
        for side in (-1.0, 1.0):
            dist = base * (w / 2) / (rng.uniform(0.3, 0.9) * max_d)
            x = (hi[0] + dist) if side > 0 else (lo[0] - dist)
            surf.add("wall", "plane", (x, 0.0, rng.uniform(-50, 50)), _Z, _Y, texel_at(dist * fx / (0.25 * w)))

    corners = np.array([[0.0, 0.0, 1.0], [w - 1.0, 0.0, 1.0], [0.0, h - 1.0, 1.0], [w - 1.0, h - 1.0, 1.0]])
    for k, kind in enumerate(surf.kind):
        if kind in _STRUCTURE:
            surf.origin[k] = _keep_beyond(
                surf.origin[k],
                np.cross(surf.e1[k], surf.e2[k]),
                rig,
                ts,
                corners,
                fx,
                cx,
                cy,
                base,
                _STRUCTURE_LIMIT * max_d,
            )
            if kind == "ground":
                floor_y = float(surf.origin[k][1])
            elif kind == "ceiling":
                ceiling_y = float(surf.origin[k][1])

    # ---------------------------------------------------------------- objects
    n_max = config.num_objects
    n_obj = int(rng.integers((n_max + 1) // 2, n_max + 1)) if n_max else 0
    speed = float(config.speed_px_s)
    slant_max = math.radians(config.slant_max_deg)
    for d in _object_disparities(n_obj, min_d, max_d, rng):
        thin = rng.random() < config.thin_fraction
        u, v = rng.uniform(0.05 * w, 0.95 * w), rng.uniform(0.1 * h, 0.9 * h)
        spin_px = 0.0  # pixels per second at the shape's rim
        tilt_x = tilt_y = 0.0
        if thin:  # sizes in pixels at mid-sequence
            kind = ("pole", "wire", "bar", "fence")[int(rng.integers(4))]
            if kind == "fence":
                shape, angle = "fence", 0.0
                period = rng.uniform(6.0, 20.0)
                size_px = (
                    rng.uniform(0.15, 0.4) * w,
                    rng.uniform(0.06, 0.2) * h,
                    period,
                    min(rng.uniform(1.0, 2.5), 0.3 * period),
                )
                tilt_y = rng.uniform(-1, 1) * slant_max
            else:
                shape = "rectangle"
                long_px = rng.uniform(0.2, 0.6) * (h if kind == "pole" else w)
                size_px = (rng.uniform(1.0, 3.0), 0.5 * long_px, 0.0, 0.0)
                angle = {
                    "pole": rng.normal(0, 0.03),
                    "wire": math.pi / 2 + rng.normal(0, 0.1),
                    "bar": rng.uniform(0, math.pi),
                }[kind]
        else:
            kind = "object"
            shape = ("disk", "ellipse", "rectangle", "triangle")[int(rng.integers(4))]
            r_px = rng.uniform(0.05, 0.2) * min(h, w)
            size_px = (r_px, r_px if shape == "disk" else r_px * rng.uniform(0.4, 1.0), 0.0, 0.0)
            angle = rng.uniform(0, 2 * math.pi)
            spin_px = config.object_motion * rng.uniform(-1, 1) * 0.2 * speed
            if rng.random() < 0.5:
                tilt_x, tilt_y = rng.uniform(-1, 1, 2) * slant_max
        # depth at mid-sequence: the nearest approach of the (slanted) near edge is ~ fb / d
        lean = max(size_px[0], size_px[1]) * max(abs(math.sin(tilt_x)), abs(math.sin(tilt_y))) / fx
        depth = (fb / d + ahead) / (1.0 - min(lean, 0.5))
        spin = spin_px / size_px[0]
        grounded = (
            floor_y is not None
            and kind in ("pole", "fence", "object")
            and rng.random() < (0.9 if kind == "pole" else 0.4)
        )
        # in-plane axes: fronto-parallel, tilted about x then y, then turned by `angle`
        tilt = rotation_matrix(tilt_y, tilt_x, 0.0)
        a1, a2 = tilt @ _X, tilt @ _Y
        ca, sa = math.cos(angle), math.sin(angle)
        e1, e2 = ca * a1 + sa * a2, -sa * a1 + ca * a2
        obj_px = config.object_motion * rng.uniform(0.0, 0.4) * speed if kind == "object" else 0.0
        direction = rng.uniform(0, 2 * math.pi)
        look = r_mid @ np.array([(u - cx) / fx, (v - cy) / fx, 1.0])  # mid-sequence ray through (u, v)
        move = r_mid @ np.array([math.cos(direction), math.sin(direction), 0.0])
        ext = (size_px[0], size_px[0] if shape in ("disk", "triangle") else size_px[1])
        for _ in range(8):  # the rig's rotations may bring the object nearer than planned: push it back
            m_per_px = depth / fx
            point = c_mid + look * depth
            if grounded:  # stands on the floor
                point[1] = floor_y - size_px[1] * m_per_px * (abs(math.cos(angle)) if kind == "pole" else 1.0)
            if kind == "wire" and ceiling_y is not None:
                point[1] = max(point[1], ceiling_y + size_px[0] * m_per_px)
            vel = obj_px * m_per_px * move
            peak = _corner_peak(point - vel * t_mid, vel, e1, e2, spin, np.array(ext) * m_per_px, rig, ts, fb)
            if peak <= _OBJECT_LIMIT * max_d:
                break
            depth *= min(peak / (_OBJECT_LIMIT * max_d), 4.0)
        size = tuple(x * m_per_px for x in size_px)
        surf.add(kind, shape, point - vel * t_mid, e1, e2, texel_at(depth), size=size, vel=vel, spin=spin)

    # ---------------------------------------------------------------- order, textures, shading
    n = len(surf.kind)
    order = list(range(1, n)) + [0]  # objects and structure first, the background last
    kinds = [config.textures[int(rng.integers(len(config.textures)))] for _ in range(n)]
    textures = np.stack([mip_levels(make_texture(kind, config.texture_size, rng)) for kind in kinds])
    bias = rng.uniform(0.02, 0.25, n)
    gain = rng.uniform(0.55, 1.0 - bias)
    pick = np.array(order)
    return Scene(
        height=h,
        width=w,
        fx=fx,
        cx=cx,
        cy=cy,
        baseline_m=float(config.baseline_m),
        max_disparity=max_d,
        origin=np.stack(surf.origin)[pick],
        vel=np.stack(surf.vel)[pick],
        e1=np.stack(surf.e1)[pick],
        e2=np.stack(surf.e2)[pick],
        spin=np.array(surf.spin)[pick],
        size=np.stack(surf.size)[pick],
        shape_ids=np.array(surf.shape, np.int64)[pick],
        texel_m=np.array(surf.texel_m)[pick],
        gain=gain[pick],
        bias=bias[pick],
        tex_ids=np.arange(n, dtype=np.int64)[pick],
        textures=textures,
        rig=rig,
        layout=layout,
        kinds=tuple(surf.kind[i] for i in order),
    )
