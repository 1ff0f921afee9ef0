"""Label computation for one VisionFit frame: polygons, keypoints with visibility, cuboid, percentages, metrics.

Everything is derived from the same buffers the image was rendered from, so the labels are geometrically consistent
with the camera matrices: pixel coordinates are ``floor`` of ``P @ X`` and depths are camera-z values.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from opsin.synth.server.generators._raster import Camera
from opsin.synth.server.generators._skeleton import JOINT_NAMES, matrix_to_quaternion

__all__ = [
    "COCO_KEYPOINTS",
    "COCO_SKELETON",
    "COCO_SOURCES",
    "coco_keypoints",
    "cuboid",
    "frame_metrics",
    "keypoint_table",
    "mask_polygons",
    "quaternions",
    "r6",
]

COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")  # fmt: skip
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
                 [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]  # fmt: skip
# COCO keypoint -> ("joint" | "vertex", name)
COCO_SOURCES = {"nose": ("vertex", "nose_tip"), "left_eye": ("joint", "left_eye_smplhf"),
                "right_eye": ("joint", "right_eye_smplhf"), "left_ear": ("vertex", "left_ear"),
                "right_ear": ("vertex", "right_ear")}  # fmt: skip


def r6(x: float) -> float:
    """Round to 6 decimals (keeps ``labels.json`` compact and byte-stable)."""
    return round(float(x), 6)


def mask_polygons(mask: np.ndarray) -> tuple[list[list[float]], list[float]]:
    """Outline a binary mask as COCO polygons with vertices on pixel edges (inset 0.01) and their extent.

    Returns:
        ``(segmentation, bbox)``: one polygon (components joined by zero-width bridges) and its extent
        ``[x, y, w, h]`` (``[]`` and ``[0, 0, 0, 0]`` for an empty mask).
    """
    m = mask.astype(np.uint8)
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return [], [0.0, 0.0, 0.0, 0.0]
    h, w = m.shape
    xmin, xmax, ymin, ymax = xs.min(), xs.max(), ys.min(), ys.max()
    padded = np.pad(m, 1)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons: list[list[float]] = []
    for contour in contours:
        pts = contour.reshape(-1, 2)
        if len(pts) < 3:
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            rect = [(x0 + 0.01, y0 + 0.01), (x1 + 0.99, y0 + 0.01), (x1 + 0.99, y1 + 0.99), (x0 + 0.01, y1 + 0.99)]
            polygons.append([r6(v) for xy in rect for v in xy])
            continue
        px, py = pts[:, 0], pts[:, 1]
        left_out = padded[py + 1, px] == 0
        right_out = padded[py + 1, px + 2] == 0
        up_out = padded[py, px + 1] == 0
        down_out = padded[py + 2, px + 1] == 0
        ox = np.where(left_out & ~right_out, 0.01, np.where(right_out & ~left_out, 0.99, 0.5))
        both_x = left_out & right_out
        ox = np.where(both_x & (px == xmin), 0.01, np.where(both_x & (px == xmax), 0.99, ox))
        oy = np.where(up_out & ~down_out, 0.01, np.where(down_out & ~up_out, 0.99, 0.5))
        both_y = up_out & down_out
        oy = np.where(both_y & (py == ymin), 0.01, np.where(both_y & (py == ymax), 0.99, oy))
        polygons.append(np.stack([px + ox, py + oy], axis=1).reshape(-1).tolist())
    del h, w
    merged = _bridge([np.reshape(poly, (-1, 2)) for poly in polygons])
    x0, y0 = float(merged[:, 0].min()), float(merged[:, 1].min())
    bbox = [r6(x0), r6(y0), r6(float(merged[:, 0].max()) - x0), r6(float(merged[:, 1].max()) - y0)]
    return [np.round(merged.reshape(-1), 6).tolist()], bbox


def _bridge(outlines: list[np.ndarray]) -> np.ndarray:
    """Join component outlines into one polygon through zero-width bridges.

    The original result layout has one polygon per annotation.

    Each further outline (largest first) is spliced in at its vertex nearest to the polygon built so far: the walk
    goes out along the bridge, around the component and back, which encloses no extra area.
    """
    order = sorted(outlines, key=lambda o: -abs(_signed_area(o)))
    poly = order[0]
    sign = np.sign(_signed_area(poly))
    for part in order[1:]:
        if np.sign(_signed_area(part)) != sign:  # same winding, so the areas add up
            part = part[::-1]
        dist = ((poly[:, None, :] - part[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
        poly = np.concatenate([poly[: i + 1], part[j:], part[: j + 1], poly[i:]])
    return poly


def _signed_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0


def _visibility(
    cam: Camera, uv: np.ndarray, z: np.ndarray, tol: np.ndarray, depth: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """V flags: 0 outside the frame (or behind the camera), 1 occluded, 2 visible.

    Visible = the pixel shows the avatar (``mask``) and its surface lies within ``tol`` in front of the point.
    """
    x = np.floor(uv[:, 0])
    y = np.floor(uv[:, 1])
    inside = (z > 0) & (x >= 0) & (x < cam.width) & (y >= 0) & (y < cam.height)
    v = np.zeros(len(z), dtype=np.int64)
    xi = np.clip(x, 0, cam.width - 1).astype(np.int64)
    yi = np.clip(y, 0, cam.height - 1).astype(np.int64)
    surface = depth[yi, xi]
    seen = (surface >= z - tol) & mask[yi, xi]
    v[inside] = np.where(seen[inside], 2, 1)
    return v


def _clip_int(value: float) -> int:
    return int(max(-1e9, min(1e9, math.floor(value))))


def keypoint_table(
    cam: Camera, points: np.ndarray, tol: np.ndarray, depth: np.ndarray, mask: np.ndarray, names: tuple[str, ...]
) -> tuple[dict[str, dict[str, Any]], np.ndarray, np.ndarray]:
    """Per named 3D point: ``{"x", "y", "v", "z", "x_global", "y_global", "z_global"}``; also the int pixels and v."""
    uv, z = cam.project(points)
    v = _visibility(cam, uv, z, tol, depth, mask)
    xy = np.floor(np.clip(uv, -1e9, 1e9)).astype(np.int64)
    xs, ys, vs = xy[:, 0].tolist(), xy[:, 1].tolist(), v.tolist()
    zs = np.round(z, 6).tolist()
    gx, gy, gz = np.round(points, 6).T.tolist()
    table = {
        name: {"x": xs[i], "y": ys[i], "v": vs[i], "z": zs[i], "x_global": gx[i], "y_global": gy[i], "z_global": gz[i]}
        for i, name in enumerate(names)
    }
    return table, xy, v


def coco_keypoints(armature: dict[str, dict[str, Any]], vertex: dict[str, dict[str, Any]]) -> tuple[list[int], int]:
    """The 17 COCO ``[x, y, v]`` triplets (from armature joints and vertex keypoints) and ``num_keypoints``."""
    flat: list[int] = []
    for name in COCO_KEYPOINTS:
        kind, src = COCO_SOURCES.get(name, ("joint", name))
        entry = vertex[src] if kind == "vertex" else armature[src]
        flat += [entry["x"], entry["y"], entry["v"]]
    return flat, sum(1 for i in range(2, len(flat), 3) if flat[i] > 0)


def cuboid(cam: Camera, points: np.ndarray) -> list[dict[str, Any]]:
    """The 8 corners of the world-axis-aligned box around ``points``, as ``{"x", "y", "z"}`` (pixels, depth)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    corners = []
    for z in (hi[2], lo[2]):
        corners += [(lo[0], hi[1], z), (hi[0], hi[1], z), (hi[0], lo[1], z), (lo[0], lo[1], z)]
    uv, depth = cam.project(np.array(corners))
    return [{"x": _clip_int(uv[i, 0]), "y": _clip_int(uv[i, 1]), "z": r6(depth[i])} for i in range(8)]


def quaternions(root_rotation: np.ndarray, local_rotations: np.ndarray) -> dict[str, list[float]]:
    """``root`` (world) + the 55 joints relative to their parent, as w, x, y, z."""
    q = np.round(matrix_to_quaternion(np.concatenate([root_rotation[None], local_rotations])), 6).tolist()
    return dict(zip(("root", *JOINT_NAMES), q))


def frame_metrics(clean: np.ndarray, noisy: np.ndarray, mask: np.ndarray, noise: bool) -> dict[str, float | None]:
    """Image metrics: mean luma of image / avatar / a 10 px ring around it, contrasts and SNR."""
    weights = np.array([0.299, 0.587, 0.114])
    mean_rgb = np.array(cv2.mean(noisy)[:3])
    out: dict[str, float | None] = {"mean_color_contrast": None, "mean_brightness_contrast": None,
                                    "mean_image_brightness": r6(mean_rgb @ weights), "mean_avatar_brightness": None,
                                    "mean_avatar_halo_brightness": None, "snr": None}  # fmt: skip
    if mask.any():
        ys, xs = np.nonzero(mask)
        y0, y1 = max(0, ys.min() - 11), min(mask.shape[0], ys.max() + 12)
        x0, x1 = max(0, xs.min() - 11), min(mask.shape[1], xs.max() + 12)
        sub = mask[y0:y1, x0:x1].astype(np.uint8)
        ring = cv2.dilate(sub, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
        ring[sub > 0] = 0
        region = np.ascontiguousarray(noisy[y0:y1, x0:x1])
        avatar_rgb = np.array(cv2.mean(region, sub)[:3])
        out["mean_avatar_brightness"] = r6(float(avatar_rgb @ weights))
        if ring.any():
            ring_rgb = np.array(cv2.mean(region, ring)[:3])
            out["mean_avatar_halo_brightness"] = r6(float(ring_rgb @ weights))
            out["mean_brightness_contrast"] = r6(abs(float((ring_rgb - avatar_rgb) @ weights)))
            out["mean_color_contrast"] = r6(float(np.linalg.norm(ring_rgb - avatar_rgb)))
    if noise:
        diff = noisy.astype(np.int16) - clean.astype(np.int16)
        std = float(diff.std(dtype=np.float64))
        out["snr"] = r6(float(np.mean(cv2.mean(clean)[:3])) / std) if std > 0 else None
    return out
