"""The room: box room per scene, procedural floor materials, furniture boxes, wall art, and its static render.

The camera never moves during a job, so the room is ray cast once per job into colour, depth and world-position
buffers; each frame only re-renders the avatar (and the soft shadow it casts on the floor) on top of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from opsin.synth.server.generators._raster import Camera, intersect_boxes

__all__ = [
    "SCENES",
    "Room",
    "RoomRender",
    "avatar_shadow",
    "build_room",
    "occlusion_fraction",
    "place_furniture",
    "render_room",
    "shade",
    "shadow_box",
]

SCENES = ("BEDROOM_2", "BEDROOM_4", "BEDROOM_5", "BEDROOM_6", "GYM_1", "LIVINGROOM_1", "LIVINGROOM_2", "OFFICE_1")

# scene kind -> (floor kind, furniture (name, size x, size y, size z))
_KINDS: dict[str, tuple[str, tuple[tuple[str, float, float, float], ...]]] = {
    "BEDROOM": ("carpet", (("bed", 2.0, 1.6, 0.55), ("nightstand", 0.5, 0.4, 0.55), ("wardrobe", 1.2, 0.6, 2.0))),
    "LIVINGROOM": ("planks", (("sofa", 2.2, 0.9, 0.85), ("table", 1.2, 0.6, 0.45), ("shelf", 1.0, 0.35, 1.8))),
    "OFFICE": ("carpet", (("desk", 1.4, 0.7, 0.75), ("chair", 0.5, 0.5, 0.9), ("cabinet", 0.8, 0.5, 1.2))),
    "GYM": ("rubber", (("rack", 1.5, 1.2, 2.2), ("bench", 1.2, 0.4, 0.45), ("mat", 2.0, 1.0, 0.05))),
}
# palettes (linear RGB): wall, floor base, furniture tint; the scene suffix picks one
_PALETTES = (
    ((0.62, 0.58, 0.50), (0.35, 0.22, 0.12), (0.45, 0.30, 0.20)),
    ((0.45, 0.55, 0.62), (0.30, 0.30, 0.32), (0.20, 0.25, 0.35)),
    ((0.70, 0.66, 0.60), (0.50, 0.38, 0.25), (0.60, 0.55, 0.50)),
    ((0.55, 0.60, 0.48), (0.25, 0.20, 0.18), (0.30, 0.35, 0.25)),
    ((0.66, 0.50, 0.45), (0.12, 0.12, 0.13), (0.25, 0.25, 0.28)),
    ((0.50, 0.48, 0.58), (0.40, 0.28, 0.18), (0.55, 0.35, 0.30)),
)


class Room(NamedTuple):
    """Room geometry and materials.

    Attributes:
        half: half the side of the square room (m); the room spans ``[-half, half]`` in x and y.
        height: ceiling height (m).
        floor_kind: ``planks``, ``carpet`` or ``rubber``.
        wall, floor, tint: linear RGB colours.
        boxes_lo, boxes_hi: ``(B, 3)`` corners of furniture and wall-art boxes.
        box_colour: ``(B, 3)`` linear albedo per box.
        art: per box, -1 for furniture, else the wall-art style (0 abstract, 1 stick figures).
        light: ceiling light position.
    """

    half: float
    height: float
    floor_kind: str
    wall: np.ndarray
    floor: np.ndarray
    tint: np.ndarray
    boxes_lo: np.ndarray
    boxes_hi: np.ndarray
    box_colour: np.ndarray
    art: np.ndarray
    light: np.ndarray


def build_room(scene: str, gen: np.random.Generator) -> tuple[Room, tuple[tuple[str, float, float, float], ...]]:
    """Room size and materials for ``scene`` (no boxes yet) and the scene's furniture list."""
    kind, number = scene.rsplit("_", 1)
    floor_kind, furniture = _KINDS[kind]
    palette = _PALETTES[(int(number) + len(kind)) % len(_PALETTES)]
    half = float(gen.uniform(5.5, 6.5))
    height = float(gen.uniform(2.9, 3.2))
    empty = np.zeros((0, 3))
    room = Room(half, height, floor_kind, np.array(palette[0]), np.array(palette[1]), np.array(palette[2]),
                empty, empty, empty, np.zeros(0, dtype=np.int64), np.array([0.0, 0.0, height - 0.05]))  # fmt: skip
    return room, furniture


def occlusion_fraction(camera_pos: np.ndarray, points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fraction of ``points`` (``(F, M, 3)``) whose segment from the camera crosses a box, per frame ``(F,)``."""
    d = points - camera_pos
    blocked = np.zeros(points.shape[:-1], dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(np.abs(d) < 1e-12, 1e-12, d)
        for b in range(len(lo)):
            t1 = (lo[b] - camera_pos) * inv
            t2 = (hi[b] - camera_pos) * inv
            tmin = np.minimum(t1, t2).max(axis=-1)
            tmax = np.maximum(t1, t2).min(axis=-1)
            blocked |= (tmax >= np.maximum(tmin, 0.0)) & (tmin < 1.0)
    return blocked.mean(axis=-1)


def place_furniture(
    room: Room,
    furniture: Sequence[tuple[str, float, float, float]],
    gen: np.random.Generator,
    camera_pos: np.ndarray,
    avatar_xy: np.ndarray,
    body_points: np.ndarray,
    allowable_percent: float,
    wall_art: int,
    art_style: int,
) -> Room:
    """Place furniture (10 tries each, dropped if it keeps hiding too much of the avatar) and wall-art panels.

    The occlusion test uses the avatar's surface points of sampled frames against boxes inflated by 5 cm, so the
    rendered ``percent_occlusion`` stays within ``allowable_percent``.
    """
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    colours: list[np.ndarray] = []
    art: list[int] = []
    inflate = 0.05
    # keep furniture clear of the whole motion, not just the avatar's feet (push-ups reach ~1 m from the pelvis)
    reach = float(np.abs(body_points[..., :2] - avatar_xy).max()) + 0.2 if body_points.size else 0.9
    for name, sx, sy, sz in furniture:
        del name
        for _ in range(10):
            swap = bool(gen.integers(0, 2))
            w, d = (sy, sx) if swap else (sx, sy)
            x = float(gen.uniform(-room.half + w / 2 + 0.05, room.half - w / 2 - 0.05))
            y = float(gen.uniform(-room.half + d / 2 + 0.05, room.half - d / 2 - 0.05))
            between, frac, side = gen.uniform(size=3)
            if between < 0.5:  # half of the tries put the piece between the camera and the avatar
                x, y = camera_pos[:2] + (0.35 + 0.3 * frac) * (avatar_xy - camera_pos[:2])
                x, y = x + 1.2 * (side - 0.5), y + 1.2 * (side - 0.5)
                x = float(np.clip(x, -room.half + w / 2 + 0.05, room.half - w / 2 - 0.05))
                y = float(np.clip(y, -room.half + d / 2 + 0.05, room.half - d / 2 - 0.05))
            shade = float(gen.uniform(0.7, 1.2))
            box_lo = np.array([x - w / 2, y - d / 2, 0.0])
            box_hi = np.array([x + w / 2, y + d / 2, sz])
            near_avatar = np.all(np.abs(avatar_xy - np.array([x, y])) < np.array([w, d]) / 2 + reach)
            near_camera = np.all(np.abs(camera_pos[:2] - np.array([x, y])) < np.array([w, d]) / 2 + 0.4)
            if near_avatar or near_camera:
                continue
            test_lo = np.stack([*lo, box_lo]) - inflate
            test_hi = np.stack([*hi, box_hi]) + inflate
            if 100.0 * occlusion_fraction(camera_pos, body_points, test_lo, test_hi).max() > allowable_percent:
                continue
            lo.append(box_lo)
            hi.append(box_hi)
            colours.append(np.clip(room.tint * shade, 0.0, 1.0))
            art.append(-1)
            break
    for _ in range(wall_art):
        wall = int(gen.integers(0, 4))
        width = float(gen.uniform(0.6, 1.2))
        tall = float(gen.uniform(0.5, 0.9))
        along = float(gen.uniform(-room.half + 1.0, room.half - 1.0))
        z0 = float(gen.uniform(1.0, 1.5))
        depth = 0.03
        if wall < 2:  # walls at y = -half / +half
            y0 = -room.half if wall == 0 else room.half - depth
            box_lo, box_hi = np.array([along - width / 2, y0, z0]), np.array([along + width / 2, y0 + depth, z0 + tall])
        else:
            x0 = -room.half if wall == 2 else room.half - depth
            box_lo, box_hi = np.array([x0, along - width / 2, z0]), np.array([x0 + depth, along + width / 2, z0 + tall])
        lo.append(box_lo)
        hi.append(box_hi)
        colours.append(gen.uniform(0.1, 0.9, size=3))
        art.append(art_style)
    arr = lambda xs: np.stack(xs) if xs else np.zeros((0, 3))  # noqa: E731
    return room._replace(boxes_lo=arr(lo), boxes_hi=arr(hi), box_colour=arr(colours), art=np.array(art, dtype=np.int64))


def _hash2(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) per integer cell."""
    h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float64) / 65536.0


def _floor_albedo(room: Room, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if room.floor_kind == "planks":
        plank = np.floor(x / 0.18)
        board = np.floor((y + 0.7 * _hash2(plank, plank * 0 + 7)) / 1.4)
        v = 0.8 + 0.35 * _hash2(plank, board) + 0.05 * np.sin(y * 40 + plank)
        v = np.where((x / 0.18 - plank) < 0.04, 0.45, v)
    elif room.floor_kind == "carpet":
        v = 0.9 + 0.2 * _hash2(np.floor(x / 0.02), np.floor(y / 0.02))
    else:
        tile = (np.floor(x) + np.floor(y)) % 2
        v = 0.85 + 0.15 * tile + 0.08 * _hash2(np.floor(x / 0.05), np.floor(y / 0.05))
    return room.floor * v[..., None]


def _art_albedo(style: int, colour: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Wall-art texture in panel coordinates ``u, v`` in [0, 1]: abstract blocks or stick-figure silhouettes."""
    out = np.empty((*u.shape, 3))
    if style == 0:
        band = np.floor(u * 3) + np.floor(v * 2) * 3
        out[:] = colour * (0.5 + 0.5 * ((band * 0.37) % 1.0))[..., None]
        ring = np.abs(np.hypot(u - 0.6, v - 0.5) - 0.22) < 0.04
        out[ring] = 1.0 - colour
        return out
    out[:] = np.array([0.85, 0.82, 0.75])
    dist = np.full(u.shape, np.inf)
    for cx in (0.3, 0.7):
        segs = [((cx, 0.78), (cx, 0.45)), ((cx, 0.45), (cx - 0.08, 0.15)), ((cx, 0.45), (cx + 0.08, 0.15)),
                ((cx, 0.68), (cx - 0.1, 0.5)), ((cx, 0.68), (cx + 0.1, 0.5))]  # fmt: skip
        for (ax, ay), (bx, by) in segs:
            px, py, dx, dy = u - ax, v - ay, bx - ax, by - ay
            h = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0, 1)
            dist = np.minimum(dist, np.hypot(px - h * dx, py - h * dy))
        dist = np.minimum(dist, np.abs(np.hypot(u - cx, v - 0.85) - 0.0) - 0.05)
    out[dist < 0.025] = colour * 0.2
    return out


class RoomRender(NamedTuple):
    """Static room buffers: linear colour ``(H, W, 3)``, depth ``(H, W)``, world hit points, floor mask."""

    colour: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    floor: np.ndarray


def shade(albedo: np.ndarray, normal: np.ndarray, points: np.ndarray, light: np.ndarray, power: float) -> np.ndarray:
    """Lambert shading from a point light plus ambient, scaled by ``lighting_power / 300`` (linear RGB)."""
    to_light = light - points
    dist2 = np.einsum("...i,...i->...", to_light, to_light)
    cos = np.einsum("...i,...i->...", normal, to_light) / np.sqrt(dist2 + 1e-12)
    diffuse = np.clip(cos, 0.0, None) * 9.0 / (dist2 + 3.0)
    return albedo * ((0.18 + 0.82 * diffuse) * (power / 300.0))[..., None]


def render_room(cam: Camera, rays: np.ndarray, room: Room, power: float) -> RoomRender:
    """Ray cast the room once: walls, floor, ceiling, furniture and wall art, with furniture shadows."""
    o = cam.position
    half, top = room.half, room.height
    with np.errstate(divide="ignore", invalid="ignore"):
        cands = [
            np.where(rays[..., 2] < 0, (0.0 - o[2]) / rays[..., 2], np.inf),  # floor
            np.where(rays[..., 2] > 0, (top - o[2]) / rays[..., 2], np.inf),  # ceiling
            np.where(rays[..., 0] < 0, (-half - o[0]) / rays[..., 0], np.inf),
            np.where(rays[..., 0] > 0, (half - o[0]) / rays[..., 0], np.inf),
            np.where(rays[..., 1] < 0, (-half - o[1]) / rays[..., 1], np.inf),
            np.where(rays[..., 1] > 0, (half - o[1]) / rays[..., 1], np.inf),
        ]
    planes = np.stack(cands)
    surface = planes.argmin(axis=0)
    depth = planes.min(axis=0)
    normals = np.array([[0, 0, 1], [0, 0, -1], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=np.float64)
    normal = normals[surface]
    points = o + depth[..., None] * rays
    albedo = np.empty(rays.shape)
    albedo[:] = room.wall * (0.9 + 0.1 * np.clip(points[..., 2:3] / top, 0, 1))
    floor = surface == 0
    albedo[floor] = _floor_albedo(room, points[floor][:, 0], points[floor][:, 1])
    albedo[surface == 1] = np.array([0.85, 0.85, 0.82])
    if len(room.boxes_lo):
        tb, ib = intersect_boxes(o, rays, room.boxes_lo, room.boxes_hi)
        hit = tb < depth
        depth = np.where(hit, tb, depth)
        floor &= ~hit
        points = o + depth[..., None] * rays
        for b in range(len(room.boxes_lo)):
            sel = hit & (ib == b)
            if not sel.any():
                continue
            p = points[sel]
            lo, hi = room.boxes_lo[b], room.boxes_hi[b]
            # face normal: the axis where the point lies on the box surface
            dlo, dhi = np.abs(p - lo), np.abs(p - hi)
            axis = np.minimum(dlo, dhi).argmin(axis=1)
            sign = np.where(dlo[np.arange(len(p)), axis] < dhi[np.arange(len(p)), axis], -1.0, 1.0)
            n = np.zeros_like(p)
            n[np.arange(len(p)), axis] = sign
            normal[sel] = n
            if room.art[b] >= 0:
                size = hi - lo
                flat = int(np.argmin(size))
                ua, va = (1, 2) if flat == 0 else (0, 2)
                u = (p[:, ua] - lo[ua]) / size[ua]
                v = 1.0 - (p[:, va] - lo[va]) / size[va]
                albedo[sel] = _art_albedo(int(room.art[b]), room.box_colour[b], u, v)
            else:
                albedo[sel] = room.box_colour[b] * (0.85 + 0.15 * (axis == 2))[:, None]
    colour = shade(albedo, normal, points, room.light, power)
    furniture = room.art < 0
    if furniture.any():
        # one shadow ray per pixel towards the ceiling light, against the furniture boxes
        start = points + normal * 1e-3
        to_light = room.light - start
        t, _ = intersect_boxes(start, to_light, room.boxes_lo[furniture], room.boxes_hi[furniture])
        colour *= np.where(t < 1.0, 0.45, 1.0)[..., None]
    return RoomRender(colour, depth, points, floor)


def avatar_shadow(render: RoomRender, centre: np.ndarray, radius: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """Soft floor shadow factor (1 = lit) inside ``box`` for a body above ``centre`` (x, y) of ``radius`` (m)."""
    x0, y0, x1, y1 = box
    pts = render.points[y0:y1, x0:x1]
    d2 = (pts[..., 0] - centre[0]) ** 2 + (pts[..., 1] - centre[1]) ** 2
    factor = 1.0 - 0.55 * np.exp(-d2 / (radius * radius))
    return np.where(render.floor[y0:y1, x0:x1], factor, 1.0)


def shadow_box(cam: Camera, centre: np.ndarray, radius: float) -> tuple[int, int, int, int] | None:
    """Screen box of the floor disc of ``2.5 * radius`` around ``centre`` (x, y)."""
    ang = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    ring = np.stack([centre[0] + 2.5 * radius * np.cos(ang), centre[1] + 2.5 * radius * np.sin(ang), np.zeros(16)], 1)
    uv, z = cam.project(ring)
    if np.any(z < 0.05):
        return 0, 0, cam.width, cam.height
    x0, y0 = int(max(0, math.floor(uv[:, 0].min()))), int(max(0, math.floor(uv[:, 1].min())))
    x1, y1 = int(min(cam.width, math.ceil(uv[:, 0].max()) + 1)), int(min(cam.height, math.ceil(uv[:, 1].max()) + 1))
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1
