"""A procedural stereo scene: textured fronto-parallel layers seen by a moving stereo rig.

Geometry (all in the rectified frame of the left camera, pixels with centres at integers):

* rectified intrinsics ``fx = fy``, principal point ``(cx, cy)``, the right camera sits
  ``baseline_m`` to the right of the left one, so a point at depth ``Z`` (metres, in front of
  the rig) appears at ``x_left - x_right = fx * baseline_m / Z``;
* the scene is a background plane plus foreground objects (disk, ellipse, rectangle,
  triangle), each a textured fronto-parallel plane at its own world depth, drawn front to back
  (z-ordering; soft one-pixel edges so that moving edges do not alias);
* the rig translates in x, y, z with a small sinusoidal jitter and rolls slightly about its
  optical axis (planes stay fronto-parallel); objects translate and spin in their planes;
* each camera records raw pixels that relate to its rectified image by a small smooth warp
  (rotation, scale, shift, radial term): raw pixel ``(x, y)`` shows the scene at the
  rectified position ``rectify_map[y, x]``, so the simulated events rectify exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from .textures import make_texture

if TYPE_CHECKING:
    from .config import SimConfig

__all__ = ["Scene", "build_scene", "make_rectify_map", "SHAPES"]

SHAPES: tuple[str, ...] = ("plane", "disk", "ellipse", "rectangle", "triangle")


PARALLEL_MIN_PIXELS = 1 << 16  # smaller frames render faster on one thread than through prange


@numba.njit(cache=True, inline="always")
def _mirror(i, size):
    """Mirrored-repeat texel index (period 2 * size)."""
    period = 2 * size
    if i < 0 or i >= period:
        i = i % period
    if i >= size:
        i = period - 1 - i
    return i


@numba.njit(cache=True, fastmath=True, inline="always")
def _sample(textures, k, u, v):
    """Bilinear sample of texture ``k`` at texel (u, v) with mirrored tiling."""
    size = textures.shape[1]
    u0 = math.floor(u)
    v0 = math.floor(v)
    fu = u - u0
    fv = v - v0
    iu = np.int64(u0)
    iv = np.int64(v0)
    if 0 <= iu and iu + 1 < size and 0 <= iv and iv + 1 < size:  # common case: no tiling
        x0, x1, y0, y1 = iu, iu + 1, iv, iv + 1
    else:
        x0 = _mirror(iu, size)
        x1 = _mirror(iu + 1, size)
        y0 = _mirror(iv, size)
        y1 = _mirror(iv + 1, size)
    top = textures[k, y0, x0] * (1.0 - fu) + textures[k, y0, x1] * fu
    bottom = textures[k, y1, x0] * (1.0 - fu) + textures[k, y1, x1] * fu
    return top * (1.0 - fv) + bottom * fv


@numba.njit(cache=True, fastmath=True, inline="always")
def _sdf(shape, qx, qy, a, b):
    """Approximate signed distance (metres, positive inside) of a point in the object's frame."""
    if shape == 0:  # plane: everywhere inside
        return 1e30
    if shape == 1:  # disk of radius a
        return a - math.sqrt(qx * qx + qy * qy)
    if shape == 2:  # ellipse with semi-axes a, b
        rr = math.sqrt((qx / a) ** 2 + (qy / b) ** 2)
        return (1.0 - rr) * min(a, b)
    if shape == 3:  # rectangle with half sizes a, b
        return -max(abs(qx) - a, abs(qy) - b)
    # triangle: equilateral, inradius a / 2, outward edge normals (0, 1), (-s, -1/2), (s, -1/2)
    s3 = 0.8660254037844386
    d1 = 0.5 * a - qy
    d2 = 0.5 * a + s3 * qx + 0.5 * qy
    d3 = 0.5 * a - s3 * qx + 0.5 * qy
    return min(d1, min(d2, d3))


# columns of the per-frame layer table handed to the renderer
_AX, _AY, _A0, _BX, _BY, _B0, _SIZE_A, _SIZE_B, _PX_PER_M, _DISP, _INV_TEXEL, _GAIN, _BIAS = range(13)
_UMIN, _UMAX, _VMIN, _VMAX = range(13, 17)
_COLUMNS = 17


@numba.njit(cache=True, fastmath=True, inline="always")
def _render_pixel(u, v, layers, shape_ids, tex_ids, textures):
    """Intensity and disparity (first surface covering at least half the pixel, else 0) seen
    at rectified position (u, v); layers are composited front to back with soft edges.

    Each layer row maps (u, v) affinely to its plane coordinates (qx, qy) in metres
    (``qx = ax*u + ay*v + a0``, ``qy = bx*u + by*v + b0``), see :meth:`Scene.layer_table`.
    """
    half = textures.shape[1] * 0.5
    acc = 0.0
    trans = 1.0
    disp = 0.0
    for k in range(layers.shape[0]):
        if u < layers[k, 13] or u > layers[k, 14] or v < layers[k, 15] or v > layers[k, 16]:
            continue  # outside the layer's image bounding box (or behind the camera)
        qx = layers[k, 0] * u + layers[k, 1] * v + layers[k, 2]
        qy = layers[k, 3] * u + layers[k, 4] * v + layers[k, 5]
        alpha = min(max(0.5 + _sdf(shape_ids[k], qx, qy, layers[k, 6], layers[k, 7]) * layers[k, 8], 0.0), 1.0)
        if alpha <= 0.0:
            continue
        if disp == 0.0 and alpha >= 0.5:
            disp = layers[k, 9]
        val = _sample(textures, tex_ids[k], qx * layers[k, 10] + half, qy * layers[k, 10] + half)
        acc += trans * alpha * (layers[k, 12] + layers[k, 11] * val)
        trans *= 1.0 - alpha
        if trans <= 1e-6:
            break
    return acc, disp


@numba.njit(cache=True)
def _render_serial(sample_x, sample_y, layers, shape_ids, tex_ids, textures, out_i, out_d):
    for r in range(sample_x.shape[0]):
        for c in range(sample_x.shape[1]):
            out_i[r, c], out_d[r, c] = _render_pixel(sample_x[r, c], sample_y[r, c], layers, shape_ids, tex_ids, textures)


@numba.njit(cache=True, parallel=True)
def _render_parallel(sample_x, sample_y, layers, shape_ids, tex_ids, textures, out_i, out_d):
    for r in numba.prange(sample_x.shape[0]):
        for c in range(sample_x.shape[1]):
            out_i[r, c], out_d[r, c] = _render_pixel(sample_x[r, c], sample_y[r, c], layers, shape_ids, tex_ids, textures)


@dataclass
class Scene:
    """A built scene: static layer parameters, motions, textures and camera constants.

    Units: metres, seconds, radians; image quantities in pixels.
    """

    height: int
    width: int
    fx: float
    cx: float
    cy: float
    baseline_m: float
    depth: np.ndarray  # (n,) world depth of each layer, near to far (background last)
    pos0: np.ndarray  # (n, 2) object centre at t = 0 (metres, world x/y)
    vel: np.ndarray  # (n, 2) object velocity (m/s)
    angle0: np.ndarray  # (n,) radians
    spin: np.ndarray  # (n,) rad/s
    size: np.ndarray  # (n, 2) shape parameters a, b (metres)
    shape_ids: np.ndarray  # (n,) int64 index into SHAPES
    texel_m: np.ndarray  # (n,) metres per texel
    gain: np.ndarray  # (n,) intensity = bias + gain * texture
    bias: np.ndarray  # (n,)
    tex_ids: np.ndarray  # (n,) int64
    textures: np.ndarray  # (n_tex, S, S) float32
    rig_vel: np.ndarray  # (3,) m/s
    rig_jitter_amp: np.ndarray  # (3,) metres
    rig_jitter_freq: np.ndarray  # (3,) Hz
    rig_jitter_phase: np.ndarray  # (3,)
    roll_amp: float  # radians
    roll_freq: float  # Hz
    roll_phase: float
    rig_z_max: float  # largest rig z over the simulated time span (metres)

    @property
    def focal_baseline(self) -> float:
        """fx * baseline (pixel metres)."""
        return self.fx * self.baseline_m

    def rig_at(self, t_s: float) -> np.ndarray:
        """Rig pose at ``t_s`` seconds: [x, y, z, cos(roll), sin(roll)]."""
        pos = self.rig_vel * t_s + self.rig_jitter_amp * np.sin(
            2 * np.pi * self.rig_jitter_freq * t_s + self.rig_jitter_phase
        )
        roll = self.roll_amp * math.sin(2 * math.pi * self.roll_freq * t_s + self.roll_phase)
        return np.array([pos[0], pos[1], pos[2], math.cos(roll), math.sin(roll)], np.float64)

    def cam_offset(self, camera: str) -> float:
        """x position of ``camera`` in the rig frame (metres): 0 left, baseline right."""
        return 0.0 if camera == "left" else self.baseline_m

    def plane_coords(self, camera: str, u: np.ndarray, v: np.ndarray, t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the ray through rectified pixel (u, v) of ``camera`` meets each layer's plane.

        Args:
            u, v: rectified pixel coordinates, arrays broadcastable to (n_layers, ...).
        Returns:
            (qx, qy, depth): coordinates in each layer's own (moving, rotating) frame in
            metres, and the layer's depth in front of the rig in metres.
        """
        pos = self.pos0 + self.vel * t_s
        ang = self.angle0 + self.spin * t_s
        rig = self.rig_at(t_s)
        extra = (slice(None),) + (None,) * max(np.ndim(u), np.ndim(v))
        depth = (self.depth - rig[2])[extra]
        xr = depth * (u - self.cx) / self.fx + self.cam_offset(camera)
        yr = depth * (v - self.cy) / self.fx
        dx = rig[0] + rig[3] * xr - rig[4] * yr - pos[:, 0][extra]
        dy = rig[1] + rig[4] * xr + rig[3] * yr - pos[:, 1][extra]
        ca, sa = np.cos(ang)[extra], np.sin(ang)[extra]
        return ca * dx + sa * dy, -sa * dx + ca * dy, depth

    def layer_table(self, camera: str, t_s: float) -> np.ndarray:
        """Per-layer rows for the renderer (float64 (n, 17)): the affine map from rectified
        pixels of ``camera`` to plane coordinates at ``t_s`` seconds, shape sizes (m), pixels
        per metre, disparity (px), 1 / texel size (1/m), gain, bias and the image bounding box
        [u_min, u_max, v_min, v_max] (empty for layers behind the rig)."""
        probe_u = np.array([0.0, 1.0, 0.0])
        probe_v = np.array([0.0, 0.0, 1.0])
        qx, qy, depth = self.plane_coords(camera, probe_u, probe_v, t_s)
        depth = depth[:, 0]
        table = np.zeros((len(self.depth), _COLUMNS))
        table[:, _AX], table[:, _AY], table[:, _A0] = qx[:, 1] - qx[:, 0], qx[:, 2] - qx[:, 0], qx[:, 0]
        table[:, _BX], table[:, _BY], table[:, _B0] = qy[:, 1] - qy[:, 0], qy[:, 2] - qy[:, 0], qy[:, 0]
        ahead = depth > 1e-6
        safe = np.where(ahead, depth, 1.0)
        table[:, _SIZE_A], table[:, _SIZE_B] = self.size[:, 0], self.size[:, 1]
        table[:, _PX_PER_M] = self.fx / safe
        table[:, _DISP] = self.focal_baseline / safe
        table[:, _INV_TEXEL] = 1.0 / self.texel_m
        table[:, _GAIN], table[:, _BIAS] = self.gain, self.bias
        # bounding box: the pixel where the object's centre (plane coords 0, 0) projects,
        # padded by the object's circumscribed radius + 2 px
        det = table[:, _AX] * table[:, _BY] - table[:, _AY] * table[:, _BX]
        u = (table[:, _AY] * table[:, _B0] - table[:, _A0] * table[:, _BY]) / det
        v = (table[:, _BX] * table[:, _A0] - table[:, _AX] * table[:, _B0]) / det
        reach = np.hypot(self.size[:, 0], self.size[:, 1]) * self.fx / safe + 2.0
        reach[self.shape_ids == 0] = np.inf
        table[:, _UMIN], table[:, _UMAX], table[:, _VMIN], table[:, _VMAX] = u - reach, u + reach, v - reach, v + reach
        table[~ahead, _UMIN] = np.inf
        return table

    def render(self, camera: str, sample_x: np.ndarray, sample_y: np.ndarray, t_s: float,
               out_intensity: np.ndarray | None = None, out_disparity: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Render intensity (in [0, 1]) and disparity (pixels) of ``camera`` ("left"/"right")
        at the rectified positions ``sample_x/y`` (float32 (H, W), pixels) at ``t_s`` seconds."""
        shape = sample_x.shape
        out_i = np.empty(shape, np.float32) if out_intensity is None else out_intensity
        out_d = np.empty(shape, np.float32) if out_disparity is None else out_disparity
        kernel = _render_parallel if sample_x.size >= PARALLEL_MIN_PIXELS else _render_serial
        kernel(sample_x, sample_y, self.layer_table(camera, t_s), self.shape_ids, self.tex_ids, self.textures, out_i, out_d)
        return out_i, out_d

    def ground_truth(self, t_s: float) -> np.ndarray:
        """Disparity (float32 (H, W), pixels) in the rectified left frame at ``t_s`` seconds;
        0 where the surface point falls outside the right image."""
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        _, disp = self.render("left", xs, ys, t_s)
        disp[xs - disp < -0.5] = 0.0
        return disp

    def max_image_speed(self) -> float:
        """Upper bound of the image speed of any scene point (pixels per second)."""
        near = float(self.depth.min() - self.rig_z_max)
        radius_px = math.hypot(self.width, self.height) / 2
        jitter_vel = np.abs(2 * np.pi * self.rig_jitter_freq * self.rig_jitter_amp)
        rig_xy = float(np.hypot(self.rig_vel[0], self.rig_vel[1]) + jitter_vel[0] + jitter_vel[1])
        rig_z = float(abs(self.rig_vel[2]) + jitter_vel[2])
        roll = abs(2 * np.pi * self.roll_freq * self.roll_amp)
        rel = self.depth - self.rig_z_max
        obj = np.hypot(self.vel[:, 0], self.vel[:, 1]) + np.abs(self.spin) * self.size.max(axis=1)
        obj_px = float(np.max(obj * self.fx / rel)) if len(rel) else 0.0
        return self.fx * rig_xy / near + radius_px * rig_z / near + radius_px * roll + obj_px


def make_rectify_map(height: int, width: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A smooth raw-to-rectified warp: float32 (H, W, 2), ``map[y, x]`` = rectified (x, y) of
    raw pixel (x, y).

    Composed of a rotation of up to ``strength`` degrees about the image centre, a scale change
    of up to ``strength`` %, a shift of up to ``strength`` * 1.5 pixels and a radial term that
    moves the corners by up to ``strength`` * 1.5 pixels. ``strength = 0`` gives the identity.
    """
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    theta = np.deg2rad(rng.uniform(-1.0, 1.0) * strength)
    scale = 1.0 + rng.uniform(-0.01, 0.01) * strength
    shift = rng.uniform(-1.5, 1.5, 2) * strength
    r0 = math.hypot(cx, cy)
    k1 = rng.uniform(-1.5, 1.5) * strength / r0  # displacement at the corner, in pixels / r0
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = xs - cx, ys - cy
    radial = 1.0 + k1 * (dx * dx + dy * dy) / (r0 * r0)
    dx, dy = dx * radial, dy * radial
    c, s = math.cos(theta), math.sin(theta)
    rx = cx + scale * (c * dx - s * dy) + shift[0]
    ry = cy + scale * (s * dx + c * dy) + shift[1]
    return np.stack([rx, ry], axis=-1).astype(np.float32)


def build_scene(config: SimConfig, rng: np.random.Generator) -> Scene:
    """Draw a random scene for ``config`` (a resolved :class:`SimConfig`).

    Layer disparities lie in [min_disparity, max_disparity] at the rig's closest approach
    (the background plane at min_disparity, the nearest object near max_disparity), so the
    ground truth never exceeds ``max_disparity``.
    """
    h, w = config.height, config.width
    fx = float(config.fx)
    fb = fx * config.baseline_m
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    radius_px = math.hypot(w, h) / 2
    duration_s = config.duration_us * 1e-6
    max_d, min_d = float(config.max_disparity), float(config.min_disparity)
    speed = float(config.speed_px_s)
    z_near = fb / max_d
    ego = config.ego_motion

    # rig motion: image speed `speed` at the nearest depth; forward motion and jitter scaled by ego
    v = speed * z_near / fx
    heading = rng.uniform(-np.pi / 5, np.pi / 5) + (np.pi if rng.random() < 0.5 else 0.0)
    vz_max = 0.25 * speed * z_near / radius_px
    rig_vel = np.array([v * math.cos(heading), v * math.sin(heading), ego * rng.uniform(-1, 1) * vz_max])
    jitter_freq = rng.uniform(0.5, 2.0, 3)
    jitter_vel = 0.15 * ego * np.array([v, v, vz_max])
    jitter_amp = jitter_vel / (2 * np.pi * jitter_freq)
    jitter_phase = rng.uniform(0, 2 * np.pi, 3)
    roll_freq = float(rng.uniform(0.3, 1.5))
    roll_amp = 0.15 * ego * speed / radius_px / (2 * np.pi * roll_freq)
    roll_phase = float(rng.uniform(0, 2 * np.pi))
    ts = np.linspace(0.0, duration_s, 512)
    rig_z = rig_vel[2] * ts + jitter_amp[2] * np.sin(2 * np.pi * jitter_freq[2] * ts + jitter_phase[2])
    rig_z_max = float(rig_z.max()) + 1e-9
    t_mid = duration_s / 2
    rig_mid = rig_vel * t_mid + jitter_amp * np.sin(2 * np.pi * jitter_freq * t_mid + jitter_phase)

    # disparities at closest approach, near to far; background last
    n_obj = config.num_objects
    disp = np.sort(rng.uniform(min(min_d * 1.3, max_d), max_d, n_obj))[::-1]
    if n_obj:
        disp[0] = max_d * rng.uniform(0.85, 1.0)
    disp = np.append(disp, min_d)
    depth = fb / disp + rig_z_max
    depth += np.arange(len(depth)) * 1e-6  # strict order for ties
    n = len(depth)
    rel_mid = depth - rig_mid[2]

    shape_ids = np.zeros(n, np.int64)
    size = np.zeros((n, 2))
    pos0 = np.zeros((n, 2))
    vel = np.zeros((n, 2))
    angle0 = np.zeros(n)
    spin = np.zeros(n)
    for k in range(n_obj):
        shape_ids[k] = int(rng.integers(1, len(SHAPES)))
        r_px = rng.uniform(0.12, 0.3) * min(h, w)
        a = r_px * rel_mid[k] / fx
        size[k] = (a, a if shape_ids[k] == 1 else a * rng.uniform(0.5, 1.0))
        u, vv = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
        obj_speed_px = config.object_motion * rng.uniform(0.0, 0.4) * speed
        direction = rng.uniform(0, 2 * np.pi)
        vel[k] = obj_speed_px * rel_mid[k] / fx * np.array([math.cos(direction), math.sin(direction)])
        centre_mid = rig_mid[:2] + rel_mid[k] * np.array([(u - cx) / fx, (vv - cy) / fx])
        pos0[k] = centre_mid - vel[k] * t_mid
        angle0[k] = rng.uniform(0, 2 * np.pi)
        spin[k] = config.object_motion * rng.uniform(-1, 1) * 0.2 * speed / r_px

    size_tex = config.texture_size
    kinds = [config.textures[int(rng.integers(len(config.textures)))] for _ in range(n)]
    textures = np.stack([make_texture(kind, size_tex, rng) for kind in kinds]).astype(np.float32)
    texel_px = rng.uniform(1.5, 3.0, n)  # screen pixels per texel at mid-sequence: no aliasing
    texel_m = texel_px * rel_mid / fx
    bias = rng.uniform(0.02, 0.25, n)
    gain = rng.uniform(0.55, 1.0 - bias)

    return Scene(
        height=h, width=w, fx=fx, cx=cx, cy=cy, baseline_m=float(config.baseline_m),
        depth=depth, pos0=pos0, vel=vel, angle0=angle0, spin=spin, size=size, shape_ids=shape_ids,
        texel_m=texel_m, gain=gain, bias=bias, tex_ids=np.arange(n, dtype=np.int64), textures=textures,
        rig_vel=rig_vel, rig_jitter_amp=jitter_amp, rig_jitter_freq=jitter_freq, rig_jitter_phase=jitter_phase,
        roll_amp=float(roll_amp), roll_freq=roll_freq, roll_phase=roll_phase, rig_z_max=rig_z_max,
    )
