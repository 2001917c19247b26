"""A procedural stereo scene: textured planar surfaces seen by a moving stereo rig.

Geometry (world frame: x right, y down, z forward; pixels with centres at integers):

* rectified intrinsics ``fx = fy``, principal point ``(cx, cy)``; the right camera sits
  ``baseline_m`` along the rig's x axis from the left one, so a point at depth ``Z`` (metres,
  along the rig's optical axis) appears at ``x_left - x_right = fx * baseline_m / Z``;
* every surface is a plane ``n . X = c`` carrying a textured shape in its own 2-D coordinates
  (an infinite plane, disk, ellipse, rectangle, triangle or fence); ground, walls, ceiling,
  facades and the far background are infinite planes or large rectangles, objects are small
  shapes, possibly slanted, thin (poles, wires, fences) and moving / spinning in their plane;
* for a camera at a given pose, the plane coordinates of the ray through rectified pixel
  ``m = (u, v, 1)`` are a homography of ``m`` and the inverse depth ``1 / Z`` is affine in
  ``m``, so disparity ``fx * baseline / Z`` is affine in (u, v): the renderer gets one row per
  surface (3x3 homography, shape sizes, texture scale, bounding box) and, per pixel, composites
  the surfaces it hits from near to far (soft one-pixel edges, mip-mapped textures);
* surfaces nearer than ``max_disparity`` (the near clip) are not drawn, so the ground truth
  never exceeds it;
* the rig translates and rotates (yaw, pitch, roll) along one of several motion kinds
  (driving, sideways flight, hand-held sway), see :class:`RigMotion`;
* each camera records raw pixels that relate to its rectified image by a small smooth warp
  (rotation, scale, shift, radial term): raw pixel ``(x, y)`` shows the scene at the
  rectified position ``rectify_map[y, x]``, so the simulated events rectify exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numba
import numpy as np

__all__ = [
    "Scene",
    "RigMotion",
    "make_rectify_map",
    "mip_levels",
    "rotation_matrix",
    "SHAPES",
    "LAYOUTS",
    "MOTIONS",
]

SHAPES: tuple[str, ...] = ("plane", "disk", "ellipse", "rectangle", "triangle", "fence")
LAYOUTS: tuple[str, ...] = ("open", "street", "room")
MOTIONS: tuple[str, ...] = ("drive", "sideways", "sway")

PARALLEL_MIN_PIXELS = 1 << 16  # smaller frames render faster on one thread than through prange
MIP_LEVELS = 6  # texture pre-filter levels: level l is blurred for a footprint of ~2**l texels
_FAR = 1e30  # "unbounded" in the bounding-box columns (finite: the kernels use fastmath)


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
def _sample(textures, k, level, u, v):
    """Bilinear sample of mip level ``level`` of texture ``k`` at texel (u, v), mirrored tiling."""
    size = textures.shape[2]
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
    top = textures[k, level, y0, x0] * (1.0 - fu) + textures[k, level, y0, x1] * fu
    bottom = textures[k, level, y1, x0] * (1.0 - fu) + textures[k, level, y1, x1] * fu
    return top * (1.0 - fv) + bottom * fv


@numba.njit(cache=True, fastmath=True, inline="always")
def _sample_mip(textures, k, u, v, footprint):
    """Texture ``k`` at texel (u, v) pre-filtered for a pixel ``footprint`` texels wide
    (linear blend of the two nearest mip levels)."""
    if footprint <= 1.0:
        return _sample(textures, k, 0, u, v)
    lod = min(math.log2(footprint), textures.shape[1] - 1.0)
    l0 = np.int64(math.floor(lod))
    if l0 >= textures.shape[1] - 1:
        return _sample(textures, k, textures.shape[1] - 1, u, v)
    f = lod - l0
    return _sample(textures, k, l0, u, v) * (1.0 - f) + _sample(textures, k, l0 + 1, u, v) * f


@numba.njit(cache=True, fastmath=True, inline="always")
def _sdf(shape, qx, qy, a, b, c, d):
    """Approximate signed distance (metres, positive inside) of a point in the shape's frame."""
    if shape == 0:  # plane: everywhere inside
        return 1e30
    if shape == 1:  # disk of radius a
        return a - math.sqrt(qx * qx + qy * qy)
    if shape == 2:  # ellipse with semi-axes a, b
        rr = math.sqrt((qx / a) ** 2 + (qy / b) ** 2)
        return (1.0 - rr) * min(a, b)
    rect = -max(abs(qx) - a, abs(qy) - b)
    if shape == 3:  # rectangle with half sizes a, b
        return rect
    if shape == 5:  # fence: half sizes a, b; vertical bars of period c, half width d; two rails
        bar = d - abs((qx + a) % c - 0.5 * c)
        rail = d - min(abs(qy - (b - d)), abs(qy + (b - d)))
        return min(rect, max(bar, rail))
    # triangle: equilateral, inradius a / 2, outward edge normals (0, 1), (-s, -1/2), (s, -1/2)
    s3 = 0.8660254037844386
    d1 = 0.5 * a - qy
    d2 = 0.5 * a + s3 * qx + 0.5 * qy
    d3 = 0.5 * a - s3 * qx + 0.5 * qy
    return min(d1, min(d2, d3))


# columns of the per-frame surface table handed to the renderer
_H = slice(0, 9)  # homography rows: qx numerator, qy numerator, w = 1 / depth
_SIZE = slice(9, 13)  # shape parameters a, b, c, d (metres)
_INV_TEXEL, _GAIN, _BIAS = 13, 14, 15
_UMIN, _UMAX, _VMIN, _VMAX = 16, 17, 18, 19
_COLUMNS = 20


@numba.njit(cache=True, fastmath=True, inline="always")
def _metres_per_pixel(layers, k, w, qx, qy):
    """Lengths (metres) that one pixel step along u and along v covers on surface ``k`` at the
    point (qx, qy) with inverse depth ``w`` (columns of the homography's Jacobian)."""
    jxu = (layers[k, 0] - qx * layers[k, 6]) / w
    jyu = (layers[k, 3] - qy * layers[k, 6]) / w
    jxv = (layers[k, 1] - qx * layers[k, 7]) / w
    jyv = (layers[k, 4] - qy * layers[k, 7]) / w
    return math.sqrt(jxu * jxu + jyu * jyu), math.sqrt(jxv * jxv + jyv * jyv)


@numba.njit(cache=True, fastmath=True, inline="always")
def _render_pixel(u, v, layers, shape_ids, tex_ids, textures, focal_baseline, w_max, cw, ck, ca, cx_, cy_):
    """Intensity and disparity seen at rectified position (u, v).

    Surfaces hit by the ray (in front of the camera and behind the near clip ``w_max`` =
    1 / nearest depth) are sorted by depth and composited near to far with soft edges. The
    disparity is that of the nearest surface covering at least half the pixel (0 if none).
    ``cw, ck, ca, cx_, cy_`` are scratch arrays of one entry per surface.
    """
    n = 0
    for k in range(layers.shape[0]):
        if u < layers[k, 16] or u > layers[k, 17] or v < layers[k, 18] or v > layers[k, 19]:
            continue  # outside the surface's image bounding box
        w = layers[k, 6] * u + layers[k, 7] * v + layers[k, 8]
        if w <= 0.0 or w > w_max:
            continue  # behind the camera or nearer than the near clip
        qx = (layers[k, 0] * u + layers[k, 1] * v + layers[k, 2]) / w
        qy = (layers[k, 3] * u + layers[k, 4] * v + layers[k, 5]) / w
        alpha = 1.0
        if shape_ids[k] != 0:
            mu, mv = _metres_per_pixel(layers, k, w, qx, qy)
            px_per_m = 1.0 / max(math.sqrt(mu * mv), 1e-12)
            sd = _sdf(shape_ids[k], qx, qy, layers[k, 9], layers[k, 10], layers[k, 11], layers[k, 12])
            alpha = min(max(0.5 + sd * px_per_m, 0.0), 1.0)
            if alpha <= 0.0:
                continue
        # insertion by depth (larger w = nearer first)
        j = n
        while j > 0 and cw[j - 1] < w:
            cw[j] = cw[j - 1]
            ck[j] = ck[j - 1]
            ca[j] = ca[j - 1]
            cx_[j] = cx_[j - 1]
            cy_[j] = cy_[j - 1]
            j -= 1
        cw[j] = w
        ck[j] = k
        ca[j] = alpha
        cx_[j] = qx
        cy_[j] = qy
        n += 1
    acc = 0.0
    trans = 1.0
    disp = 0.0
    half = textures.shape[2] * 0.5
    for j in range(n):
        k = ck[j]
        alpha = ca[j]
        if disp == 0.0 and alpha >= 0.5:
            disp = focal_baseline * cw[j]
        s = layers[k, 13]
        mu, mv = _metres_per_pixel(layers, k, cw[j], cx_[j], cy_[j])
        val = _sample_mip(textures, tex_ids[k], cx_[j] * s + half, cy_[j] * s + half, max(mu, mv) * s)
        acc += trans * alpha * (layers[k, 15] + layers[k, 14] * val)
        trans *= 1.0 - alpha
        if trans <= 1e-6:
            break
    return acc, disp


@numba.njit(cache=True, fastmath=True, inline="always")
def _render_row(r, sample_x, sample_y, layers, shape_ids, tex_ids, textures, focal_baseline, w_max, out_i, out_d):
    n = layers.shape[0]
    cw = np.empty(n)
    ck = np.empty(n, np.int64)
    ca = np.empty(n)
    cx_ = np.empty(n)
    cy_ = np.empty(n)
    for c in range(sample_x.shape[1]):
        out_i[r, c], out_d[r, c] = _render_pixel(
            sample_x[r, c],
            sample_y[r, c],
            layers,
            shape_ids,
            tex_ids,
            textures,
            focal_baseline,
            w_max,
            cw,
            ck,
            ca,
            cx_,
            cy_,
        )


@numba.njit(cache=True)
def _render_serial(sample_x, sample_y, layers, shape_ids, tex_ids, textures, focal_baseline, w_max, out_i, out_d):
    for r in range(sample_x.shape[0]):
        _render_row(r, sample_x, sample_y, layers, shape_ids, tex_ids, textures, focal_baseline, w_max, out_i, out_d)


@numba.njit(cache=True, parallel=True)
def _render_parallel(sample_x, sample_y, layers, shape_ids, tex_ids, textures, focal_baseline, w_max, out_i, out_d):
    for r in numba.prange(sample_x.shape[0]):
        _render_row(r, sample_x, sample_y, layers, shape_ids, tex_ids, textures, focal_baseline, w_max, out_i, out_d)


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rig-to-world rotation: yaw about y, then pitch about x, then roll about z."""
    cy_, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy_, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy_]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return ry @ rx @ rz


@dataclass
class RigMotion:
    """The rig's pose over time: a drift plus sinusoidal oscillations, in translation
    (world metres) and in the yaw / pitch / roll angles (radians).

    position(t) = vel * t + osc_amp * sin(2 pi osc_freq t + osc_phase) (per axis x, y, z);
    angles(t) = rate * t + rot_amp * sin(2 pi rot_freq t + rot_phase) (yaw, pitch, roll).
    """

    kind: str
    vel: np.ndarray
    osc_amp: np.ndarray
    osc_freq: np.ndarray
    osc_phase: np.ndarray
    rate: np.ndarray
    rot_amp: np.ndarray
    rot_freq: np.ndarray
    rot_phase: np.ndarray

    @classmethod
    def still(cls) -> RigMotion:
        """A rig that never moves (for tests and static scenes)."""
        z, one = np.zeros(3), np.ones(3)
        return cls("still", z, z, one, z, z, z, one, z)

    def position(self, t_s: float | np.ndarray) -> np.ndarray:
        """Rig (left camera) position in world metres, (3,) or (len(t), 3)."""
        t = np.asarray(t_s, np.float64)[..., None]
        return self.vel * t + self.osc_amp * np.sin(2 * np.pi * self.osc_freq * t + self.osc_phase)

    def angles(self, t_s: float | np.ndarray) -> np.ndarray:
        """(yaw, pitch, roll) in radians, (3,) or (len(t), 3)."""
        t = np.asarray(t_s, np.float64)[..., None]
        return self.rate * t + self.rot_amp * np.sin(2 * np.pi * self.rot_freq * t + self.rot_phase)

    def rotation(self, t_s: float) -> np.ndarray:
        """Rig-to-world rotation matrix at ``t_s`` seconds."""
        return rotation_matrix(*self.angles(t_s))

    def speeds(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear speed (m/s) and an upper bound of the angular speed (rad/s, sum of the
        three angle rates) at the times ``t_s``."""
        t = np.asarray(t_s, np.float64)[:, None]
        lin = self.vel + self.osc_amp * 2 * np.pi * self.osc_freq * np.cos(
            2 * np.pi * self.osc_freq * t + self.osc_phase
        )
        ang = self.rate + self.rot_amp * 2 * np.pi * self.rot_freq * np.cos(
            2 * np.pi * self.rot_freq * t + self.rot_phase
        )
        return np.linalg.norm(lin, axis=1), np.abs(ang).sum(axis=1)


@dataclass
class Scene:
    """A built scene: surfaces, their motions and textures, the rig's motion and the cameras.

    Surface ``k`` at time t: origin ``origin[k] + vel[k] * t`` (world metres) and in-plane axes
    ``e1, e2`` turned by ``spin[k] * t`` radians within the plane; a point of plane
    coordinates (qx, qy) is ``origin + qx * e1 + qy * e2``. Units: metres, seconds, radians.
    """

    height: int
    width: int
    fx: float
    cx: float
    cy: float
    baseline_m: float
    max_disparity: float  # near clip: nearer surfaces are not drawn
    origin: np.ndarray  # (n, 3)
    vel: np.ndarray  # (n, 3) m/s
    e1: np.ndarray  # (n, 3) unit, in-plane
    e2: np.ndarray  # (n, 3) unit, in-plane, orthogonal to e1
    spin: np.ndarray  # (n,) rad/s within the plane
    size: np.ndarray  # (n, 4) shape parameters a, b, c, d (metres)
    shape_ids: np.ndarray  # (n,) int64 index into SHAPES
    texel_m: np.ndarray  # (n,) metres per texel
    gain: np.ndarray  # (n,) intensity = bias + gain * texture
    bias: np.ndarray  # (n,)
    tex_ids: np.ndarray  # (n,) int64
    textures: np.ndarray  # (n_tex, MIP_LEVELS, S, S) float32
    rig: RigMotion
    layout: str = "custom"
    kinds: tuple[str, ...] = ()  # what each surface is ("ground", "pole", "object", ...)

    @property
    def focal_baseline(self) -> float:
        """fx * baseline (pixel metres)."""
        return self.fx * self.baseline_m

    def cam_offset(self, camera: str) -> float:
        """x position of ``camera`` in the rig frame (metres): 0 left, baseline right."""
        return 0.0 if camera == "left" else self.baseline_m

    def camera_pose(self, camera: str, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(centre (3,), camera-to-world rotation (3, 3)) of ``camera`` at ``t_s`` seconds."""
        rot = self.rig.rotation(t_s)
        return self.rig.position(t_s) + rot[:, 0] * self.cam_offset(camera), rot

    def surfaces_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origins, e1, e2) of every surface at ``t_s`` seconds, each (n, 3)."""
        origin = self.origin + self.vel * t_s
        ang = (self.spin * t_s)[:, None]
        e1 = np.cos(ang) * self.e1 + np.sin(ang) * self.e2
        e2 = -np.sin(ang) * self.e1 + np.cos(ang) * self.e2
        return origin, e1, e2

    def layer_table(self, camera: str, t_s: float) -> np.ndarray:
        """Per-surface rows for the renderer (float64 (n, 20)) for ``camera`` at ``t_s``:
        the homography ``H`` (9) with ``(qx, qy) = (H[0:3] . m, H[3:6] . m) / (H[6:9] . m)``
        and ``H[6:9] . m = 1 / depth`` for rectified pixel ``m = (u, v, 1)``; the shape sizes
        (4, metres); 1 / texel size; gain; bias; the image bounding box [u_min, u_max, v_min,
        v_max] (±1e30 when unbounded)."""
        centre, rot = self.camera_pose(camera, t_s)
        kinv = np.array([[1 / self.fx, 0, -self.cx / self.fx], [0, 1 / self.fx, -self.cy / self.fx], [0, 0, 1]])
        ray = rot @ kinv  # world direction of pixel m (depth component 1)
        origin, e1, e2 = self.surfaces_at(t_s)
        normal = np.cross(e1, e2)
        h = np.einsum("nk,nk->n", normal, origin - centre)  # signed distance of the plane along n
        h = np.where(np.abs(h) < 1e-9, 1e-9, h)  # the camera on the plane: sees it edge-on
        w_row = (normal @ ray) / h[:, None]  # 1 / depth
        rel = np.einsum("nk,nk->n", e1, centre - origin), np.einsum("nk,nk->n", e2, centre - origin)
        table = np.zeros((len(origin), _COLUMNS))
        table[:, 0:3] = rel[0][:, None] * w_row + e1 @ ray
        table[:, 3:6] = rel[1][:, None] * w_row + e2 @ ray
        table[:, 6:9] = w_row
        table[:, _SIZE] = self.size
        table[:, _INV_TEXEL] = 1.0 / self.texel_m
        table[:, _GAIN], table[:, _BIAS] = self.gain, self.bias
        table[:, _UMIN], table[:, _VMIN] = -_FAR, -_FAR
        table[:, _UMAX], table[:, _VMAX] = _FAR, _FAR
        bounded = np.flatnonzero(self.shape_ids != 0)
        if len(bounded):
            ext = self._extent()[bounded]
            signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], np.float64)  # around the rectangle
            corners = (
                origin[bounded, None, :]
                + (signs[None, :, 0:1] * ext[:, None, 0:1]) * e1[bounded, None, :]
                + (signs[None, :, 1:2] * ext[:, None, 1:2]) * e2[bounded, None, :]
            )  # (m, 4, 3)
            cam = (corners - centre) @ rot  # camera coordinates
            near = self.focal_baseline / self.max_disparity  # nothing nearer is drawn
            for i, k in enumerate(bounded):
                table[k, _UMIN : _VMAX + 1] = self._image_box(_clip_near(cam[i], near))
        return table

    def _image_box(self, points: np.ndarray) -> tuple[float, float, float, float]:
        """[u_min, u_max, v_min, v_max] (pixels, 2 px margin) of camera-frame points in front
        of the camera; an empty box when there are none."""
        if len(points) == 0:
            return (_FAR, -_FAR, _FAR, -_FAR)
        u = self.fx * points[:, 0] / points[:, 2] + self.cx
        v = self.fx * points[:, 1] / points[:, 2] + self.cy
        return (u.min() - 2, u.max() + 2, v.min() - 2, v.max() + 2)

    def _extent(self) -> np.ndarray:
        """(n, 2) half extents of each shape along e1 and e2 (metres)."""
        a, b = self.size[:, 0], self.size[:, 1]
        square = np.isin(self.shape_ids, (1, 4))  # disk radius a; triangle circumradius a
        return np.stack([a, np.where(square, a, b)], axis=1)

    def render(
        self,
        camera: str,
        sample_x: np.ndarray,
        sample_y: np.ndarray,
        t_s: float,
        out_intensity: np.ndarray | None = None,
        out_disparity: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Render intensity (in [0, 1]) and disparity (pixels) of ``camera`` ("left"/"right")
        at the rectified positions ``sample_x/y`` (float32 (H, W), pixels) at ``t_s`` seconds."""
        shape = sample_x.shape
        out_i = np.empty(shape, np.float32) if out_intensity is None else out_intensity
        out_d = np.empty(shape, np.float32) if out_disparity is None else out_disparity
        kernel = _render_parallel if sample_x.size >= PARALLEL_MIN_PIXELS else _render_serial
        kernel(
            sample_x,
            sample_y,
            self.layer_table(camera, t_s),
            self.shape_ids,
            self.tex_ids,
            self.textures,
            self.focal_baseline,
            self.max_disparity / self.focal_baseline,
            out_i,
            out_d,
        )
        return out_i, out_d

    def ground_truth(self, t_s: float) -> np.ndarray:
        """Disparity (float32 (H, W), pixels) in the rectified left frame at ``t_s`` seconds;
        0 where the surface point falls outside the right image."""
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        _, disp = self.render("left", xs, ys, t_s)
        disp[xs - disp < -0.5] = 0.0
        return disp

    def max_image_speed(self, duration_s: float) -> float:
        """Upper bound of the image speed of any drawn scene point (pixels per second) over
        [0, duration_s]: every drawn point is at least ``focal_baseline / max_disparity`` away."""
        near = self.focal_baseline / self.max_disparity
        radius_px = math.hypot(self.width, self.height) / 2
        ts = np.linspace(0.0, duration_s, 513)
        lin, ang = self.rig.speeds(ts)
        rig = (self.fx + radius_px) * lin / near + ang * (self.fx + radius_px**2 / self.fx)
        # moving surfaces: speed over the nearest in-view depth (distance / cos of the half
        # diagonal field of view, at least `near`) along the rig's path
        reach = np.hypot(*self._extent().T)
        obj = np.linalg.norm(self.vel, axis=1) + np.abs(self.spin) * reach
        moving = np.flatnonzero((obj > 0) & (self.shape_ids != 0))
        if len(moving):
            centres = self.origin[moving, None, :] + self.vel[moving, None, :] * ts[None, :, None]
            dist = np.linalg.norm(centres - self.rig.position(ts)[None], axis=2).min(axis=1) - reach[moving]
            depth = np.maximum(dist / math.hypot(1.0, radius_px / self.fx), near)
            rig = rig + float(np.max(obj[moving] * (self.fx + radius_px) / depth))
        return float(rig.max())


def _clip_near(polygon: np.ndarray, near: float) -> np.ndarray:
    """The part of a convex camera-frame polygon ((k, 3), in order) with depth z >= ``near``
    (Sutherland-Hodgman against one plane); (0, 3) when none of it is."""
    out = []
    for i in range(len(polygon)):
        a, b = polygon[i], polygon[(i + 1) % len(polygon)]
        if a[2] >= near:
            out.append(a)
        if (a[2] >= near) != (b[2] >= near):
            out.append(a + (b - a) * ((near - a[2]) / (b[2] - a[2])))
    return np.array(out).reshape(-1, 3)


def mip_levels(texture: np.ndarray, levels: int = MIP_LEVELS) -> np.ndarray:
    """(levels, S, S) float32: level l is ``texture`` low-passed for a footprint of 2**l texels
    (Gaussian, sigma 0.5 * sqrt(4**l - 1) texels; level 0 is the texture itself)."""
    out = [texture.astype(np.float32)]
    for level in range(1, levels):
        sigma = 0.5 * math.sqrt(4.0**level - 1.0)
        out.append(cv2.GaussianBlur(out[0], (0, 0), sigma, borderType=cv2.BORDER_REFLECT))
    return np.stack(out)


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
