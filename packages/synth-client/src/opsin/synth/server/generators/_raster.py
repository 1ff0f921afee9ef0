"""Vectorised ray casting of planes, boxes, capsules and ellipsoids, and the per-frame avatar renderer.

Rays are ``o + t d`` with ``d`` scaled so that its camera-z component is 1: the ray parameter ``t`` is then the
depth of the hit along the optical axis, which is what the depth buffers, the keypoint visibility test and the
``z`` label fields use. Every primitive is culled to its projected screen box before its rays are tested.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from opsin.synth.server.generators._skeleton import Body, PosedBody

__all__ = [
    "AvatarBuffers",
    "Camera",
    "PlanarRays",
    "intersect_boxes",
    "intersect_capsule",
    "intersect_ellipsoid",
    "pixel_rays",
    "render_avatar",
]


class Camera(NamedTuple):
    """Pinhole camera (OpenCV axes: x right, y down, z forward).

    Attributes:
        K: 3x3 intrinsics.
        R: world-to-camera rotation.
        t: translation (``x_cam = R x + t``).
        P: ``K @ [R | t]``.
        position: camera centre in the world.
        yaw: camera yaw in degrees, as in the labels of the job result.
        pitch: camera pitch in degrees, as in the labels of the job result.
        width: image width in pixels.
        height: image height in pixels.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    P: np.ndarray
    position: np.ndarray
    yaw: float
    pitch: float
    width: int
    height: int

    @classmethod
    def look(cls, position: np.ndarray, yaw: float, pitch: float, width: int, height: int) -> Camera:
        """Build the camera at ``position`` looking along ``yaw``/``pitch`` (50 mm lens on a 36 mm sensor)."""
        f = max(width, height) * 50.0 / 36.0
        k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
        y, p = math.radians(yaw), math.radians(pitch)
        forward = np.array([-math.sin(y) * math.sin(p), math.cos(y) * math.sin(p), -math.cos(p)])
        right = np.array([math.cos(y), math.sin(y), 0.0])
        down = np.cross(forward, right)
        r = np.stack([right, down, forward])
        t = -r @ position
        rt = np.concatenate([r, t[:, None]], axis=1)
        return cls(k, r, t, k @ rt, np.asarray(position, dtype=np.float64), yaw, pitch, width, height)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project ``(..., 3)`` world points: returns continuous pixel coordinates ``(..., 2)`` and depths."""
        cam = points @ self.R.T + self.t
        z = cam[..., 2]
        safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
        uv = (cam[..., :2] / safe[..., None]) * np.array([self.K[0, 0], self.K[1, 1]]) + self.K[:2, 2]
        return uv, z


def pixel_rays(cam: Camera) -> np.ndarray:
    """World ray directions through the pixel centres, ``(H, W, 3)``, each with camera-z component 1."""
    xs = (np.arange(cam.width) + 0.5 - cam.K[0, 2]) / cam.K[0, 0]
    ys = (np.arange(cam.height) + 0.5 - cam.K[1, 2]) / cam.K[1, 1]
    local = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], np.ones((1, 1))), axis=-1)
    return local @ cam.R  # R^T applied to each row vector


def intersect_boxes(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of rays with axis-aligned boxes.

    Args:
        o: ``(..., 3)`` or ``(3,)`` ray origins.
        d: ``(..., 3)`` ray directions.
        lo: ``(B, 3)`` lower box corners.
        hi: ``(B, 3)`` upper box corners.

    Returns:
        ``t`` (inf where no box is hit) and the index of the box hit (-1 for none).
    """
    shape = d.shape[:-1]
    best = np.full(shape, np.inf)
    index = np.full(shape, -1, dtype=np.int64)
    origin = np.asarray(o, dtype=np.float64)
    # per-axis planes: contiguous 2D arithmetic instead of reductions over a trailing axis of 3
    ok = [origin[..., k] if origin.ndim > 1 else float(origin[k]) for k in range(3)]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = [1.0 / np.where(np.abs(d[..., k]) < 1e-12, 1e-12, d[..., k]) for k in range(3)]
        for b in range(len(lo)):
            tmin = np.full(shape, -np.inf)
            tmax = np.full(shape, np.inf)
            for k in range(3):
                t1 = (lo[b, k] - ok[k]) * inv[k]
                t2 = (hi[b, k] - ok[k]) * inv[k]
                np.maximum(tmin, np.minimum(t1, t2), out=tmin)
                np.minimum(tmax, np.maximum(t1, t2), out=tmax)
            tmin = np.where(tmin > 1e-6, tmin, np.inf)
            hit = (tmax >= tmin) & (tmin < best)
            best = np.where(hit, tmin, best)
            index = np.where(hit, b, index)
    return best, index


class PlanarRays(NamedTuple):
    """Ray directions split into contiguous x, y, z planes ``(H, W)`` plus their squared norms (fast box slices)."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    dd: np.ndarray

    @classmethod
    def from_rays(cls, rays: np.ndarray) -> PlanarRays:
        """Split ``(H, W, 3)`` rays."""
        x, y, z = (np.ascontiguousarray(rays[..., i]) for i in range(3))
        return cls(x, y, z, x * x + y * y + z * z)

    def box(self, x0: int, y0: int, x1: int, y1: int) -> PlanarRays:
        """The rays of a pixel box (views)."""
        return PlanarRays(self.x[y0:y1, x0:x1], self.y[y0:y1, x0:x1], self.z[y0:y1, x0:x1], self.dd[y0:y1, x0:x1])

    def dot(self, v: np.ndarray) -> np.ndarray:
        """Per-ray dot product with the vector ``v``."""
        return self.x * v[0] + self.y * v[1] + self.z * v[2]


def intersect_capsule(o: np.ndarray, d: PlanarRays, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Ray parameter of the first hit with the capsule ``a``-``b`` of radius ``r`` (inf for a miss).

    The capsule is the union of the finite cylinder and the two end spheres, so the nearest of the three hits wins.
    """
    ba = b - a
    oa = o - a
    baba = float(ba @ ba)
    baoa = float(ba @ oa)
    oaoa = float(oa @ oa)
    bard = d.dot(ba)
    rdoa = d.dot(oa)
    aa = baba * d.dd - bard * bard
    bb = baba * rdoa - baoa * bard
    cc = baba * oaoa - baoa * baoa - r * r * baba
    h = bb * bb - aa * cc
    hit = h >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        tc = (-bb - np.sqrt(np.where(hit, h, 0.0))) / np.where(aa > 1e-12, aa, 1e-12)
        y = baoa + tc * bard
        t = np.where(hit & (y > 0) & (y < baba) & (tc > 0), tc, np.inf)
        # end spheres: d.(o - a) = rdoa, d.(o - b) = rdoa - bard
        for b2, c2 in ((rdoa, oaoa - r * r), (rdoa - bard, float((o - b) @ (o - b)) - r * r)):
            h2 = b2 * b2 - d.dd * c2
            ts = (-b2 - np.sqrt(np.maximum(h2, 0.0))) / d.dd
            t = np.where((h2 >= 0) & (ts > 0) & (ts < t), ts, t)
    return t


def intersect_ellipsoid(o: np.ndarray, d: PlanarRays, c: np.ndarray, rot: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Ray parameter of the first hit with an ellipsoid (centre ``c``, axes = columns of ``rot``, ``radii``)."""
    inv = 1.0 / radii
    ol = (rot.T @ (o - c)) * inv
    dl = [d.dot(rot[:, k]) * inv[k] for k in range(3)]
    aa = dl[0] * dl[0] + dl[1] * dl[1] + dl[2] * dl[2]
    bb = dl[0] * ol[0] + dl[1] * ol[1] + dl[2] * ol[2]
    cc = float(ol @ ol) - 1.0
    h = bb * bb - aa * cc
    with np.errstate(invalid="ignore"):
        t = (-bb - np.sqrt(np.maximum(h, 0.0))) / aa
    return np.where((h >= 0) & (t > 0), t, np.inf)


class AvatarBuffers(NamedTuple):
    """Avatar-only buffers of one frame (no room): depth (inf = empty), part id (-1 = empty), normals."""

    depth: np.ndarray
    part: np.ndarray
    normal: np.ndarray
    box: tuple[int, int, int, int] | None


def render_avatar(
    cam: Camera, rays: PlanarRays, body: Body, posed: PosedBody, part_ids: dict[str, int]
) -> AvatarBuffers:
    """Ray cast the body's primitives (each culled to its screen box) into fresh depth/part/normal buffers."""
    h, w = cam.height, cam.width
    depth = np.full((h, w), np.inf)
    part = np.full((h, w), -1, dtype=np.int16)
    normal = np.empty((h, w, 3))  # read only where part >= 0
    o = cam.position
    pos, rots = posed.positions, posed.rotations
    # bounding spheres of every primitive, projected in one call
    starts, ends, radii = [], [], []
    for prim in body.primitives:
        if prim.kind == "capsule":
            starts.append(pos[prim.a])
            ends.append(pos[prim.b])
        else:
            centre = pos[prim.a] + rots[prim.a] @ np.asarray(prim.centre)
            starts.append(centre)
            ends.append(centre)
        radii.append(prim.radius)
    pts = np.stack(starts + ends)
    uv, z = cam.project(pts)
    n = len(radii)
    rad = np.array(radii)
    zmin = np.minimum(z[:n], z[n:])
    rpx = cam.K[0, 0] * rad / np.maximum(zmin, 1e-3) + 2.0
    bx0 = np.floor(np.minimum(uv[:n, 0], uv[n:, 0]) - rpx)
    bx1 = np.ceil(np.maximum(uv[:n, 0], uv[n:, 0]) + rpx)
    by0 = np.floor(np.minimum(uv[:n, 1], uv[n:, 1]) - rpx)
    by1 = np.ceil(np.maximum(uv[:n, 1], uv[n:, 1]) + rpx)
    near = zmin < rad + 1e-3
    union: list[int] | None = None
    for i, prim in enumerate(body.primitives):
        if z[i] < 1e-3 and z[n + i] < 1e-3:
            continue
        if near[i]:
            x0, y0, x1, y1 = 0, 0, w, h
        else:
            x0, y0 = max(int(bx0[i]), 0), max(int(by0[i]), 0)
            x1, y1 = min(int(bx1[i]), w), min(int(by1[i]), h)
        if x0 >= x1 or y0 >= y1:
            continue
        d = rays.box(x0, y0, x1, y1)
        if prim.kind == "capsule":
            a, b = starts[i], ends[i]
            t = intersect_capsule(o, d, a, b, prim.radius)
        else:
            c, rot = starts[i], rots[prim.a]
            t = intersect_ellipsoid(o, d, c, rot, np.asarray(prim.radii))
        sub = depth[y0:y1, x0:x1]
        better = t < sub
        if not better.any():
            continue
        tb = t[better]
        p = o + tb[:, None] * np.stack([d.x[better], d.y[better], d.z[better]], axis=1)
        if prim.kind == "capsule":
            ba = b - a
            hh = np.clip(((p - a) @ ba) / max(float(ba @ ba), 1e-12), 0.0, 1.0)
            nrm = (p - a - hh[:, None] * ba) / prim.radius
        else:
            local = ((p - c) @ rot) / np.asarray(prim.radii) ** 2
            nrm = local @ rot.T
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
        sub[better] = tb
        part[y0:y1, x0:x1][better] = part_ids[prim.part]
        normal[y0:y1, x0:x1][better] = nrm
        box = [x0, y0, x1, y1]
        union = box if union is None else [min(union[0], x0), min(union[1], y0), max(union[2], x1), max(union[3], y1)]
    return AvatarBuffers(depth, part, normal, None if union is None else (union[0], union[1], union[2], union[3]))
