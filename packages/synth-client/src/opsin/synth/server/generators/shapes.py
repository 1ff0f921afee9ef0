"""``shapes-v0.1.0``: top-down detection scenes whose job folder is a ready COCO dataset for ``opsin.iq``.

Each image shows a seeded textured ground with objects (cars, trucks, buildings, trees, pools) drawn as filled, shaded
polygons with drop shadows, sized from real dimensions and the ground sampling distance ``gsd_m`` (metres per pixel).
Outputs: ``images/NNNNNN.png``, ``annotations.json`` (COCO with ``file_name`` relative to ``images/``, polygon
segmentation, ``area`` = polygon area), ``annotations.geojson`` (pixel-space polygons), ``video_preview.png``,
``timing.json`` and ``job.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from opsin.core import rng
from opsin.synth.server.generators._base import (
    CancelEvent,
    Generator,
    ParamSpec,
    check_cancelled,
    write_job_json,
)
from opsin.synth.server.generators._png import encode_rgb_png

__all__ = ["CLASSES", "ShapesGenerator", "polygon_area"]

CLASSES = ("CAR", "TRUCK", "BUILDING", "TREE", "POOL")
# class -> (length range m, width range m, height m for the shadow, base colour RGB 0..1)
_SIZES = {
    "CAR": ((4.3, 4.7), (1.75, 1.85), 1.5, (0.7, 0.1, 0.1)),
    "TRUCK": ((7.5, 9.0), (2.4, 2.6), 3.5, (0.85, 0.85, 0.8)),
    "BUILDING": ((10.0, 25.0), (8.0, 20.0), 8.0, (0.6, 0.55, 0.5)),
    "TREE": ((3.0, 8.0), (0.0, 0.0), 6.0, (0.1, 0.35, 0.1)),
    "POOL": ((6.0, 12.0), (3.0, 6.0), 0.0, (0.2, 0.6, 0.85)),
}
_GROUNDS = {"GRASS": (0.25, 0.45, 0.18), "ASPHALT": (0.3, 0.3, 0.32), "SAND": (0.8, 0.72, 0.5),
            "CONCRETE": (0.62, 0.62, 0.6)}  # fmt: skip
_SUN = np.array([0.6, 0.35])  # shadow direction in the image (pixels per metre of height, x right, y down)


def polygon_area(xy: np.ndarray) -> float:
    """Shoelace area of a closed polygon given as ``(N, 2)`` vertices."""
    x, y = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _clip_polygon(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a convex or simple polygon to the image rectangle ``[0, W] x [0, H]``."""
    out = poly
    for axis, bound, keep_less in ((0, 0.0, False), (0, width, True), (1, 0.0, False), (1, height, True)):
        if len(out) == 0:
            break
        src, out_list = out, []
        for i in range(len(src)):
            cur, prev = src[i], src[i - 1]
            cur_in = cur[axis] <= bound if keep_less else cur[axis] >= bound
            prev_in = prev[axis] <= bound if keep_less else prev[axis] >= bound
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out_list.append(prev + t * (cur - prev))
            if cur_in:
                out_list.append(cur)
        out = np.array(out_list).reshape(-1, 2)
    return out


def _parse_classes(text: str) -> list[str]:
    return [c.strip().upper() for c in str(text).split("+") if c.strip()]


class ShapesGenerator(Generator):
    """Top-down detection scenes for the image-quality package (``num_images`` images per job)."""

    name = "shapes-v0.1.0"
    version = "0.1.0"
    description = "Top-down detection scenes (cars, trucks, buildings, trees, pools) as a ready COCO dataset."
    supports_preview = True
    params = (
        ParamSpec("num_images", "int", 20, {"min": 1, "max": 500}, "Number of images (previews: 1)."),
        ParamSpec("image_width", "int", 256, {"min": 64, "max": 1024}, "Image width in pixels."),
        ParamSpec("image_height", "int", 256, {"min": 64, "max": 1024}, "Image height in pixels."),
        ParamSpec("ground", "str", "GRASS", {"choices": list(_GROUNDS)}, "Ground material."),
        ParamSpec("num_objects", "int", 10, {"min": 0, "max": 100}, "Objects per image (fewer if they do not fit)."),
        ParamSpec("classes", "str", "+".join(CLASSES), None, "'+'-joined subset of CAR, TRUCK, BUILDING, TREE, POOL."),
        ParamSpec("gsd_m", "float", 0.5, {"min": 0.1, "max": 2.0}, "Ground sampling distance (metres per pixel)."),
        ParamSpec("blur_sigma", "float", 0.0, {"min": 0.0, "max": 3.0}, "Gaussian blur of the image (pixels)."),
        ParamSpec("noise_std", "float", 0.0, {"min": 0.0, "max": 20.0}, "Gaussian noise (grey levels)."),
        ParamSpec("state", "uuid", None, None, "Id of an earlier job whose seed this job reuses."),
    )

    def check(self, params: Mapping[str, Any]) -> list[str]:
        """``classes`` must be a non-empty ``+``-joined subset of the known classes without repeats."""
        names = _parse_classes(str(params.get("classes", "")))
        problems = []
        unknown = [n for n in names if n not in CLASSES]
        if not names:
            problems.append("`classes` must name at least one of " + ", ".join(CLASSES))
        if unknown:
            problems.append(
                f"`classes` ({params.get('classes')}) has unknown classes {unknown}; known: {list(CLASSES)}"
            )
        if len(set(names)) != len(names):
            problems.append(f"`classes` ({params.get('classes')}) repeats a class")
        return problems

    def estimate(self, params: Mapping[str, Any], is_preview: bool) -> int:
        """``num_images`` (1 for a preview)."""
        return 1 if is_preview else int(params.get("num_images", 20))

    def render(
        self, params: dict[str, Any], is_preview: bool, seed: int, out_dir: Path, cancel_event: CancelEvent | None
    ) -> int:
        """Render the job into ``out_dir`` (see the module docstring for the files)."""
        num = self.estimate(params, is_preview)
        classes = [c for c in CLASSES if c in _parse_classes(str(params["classes"]))] or list(CLASSES)
        (out_dir / "images").mkdir(exist_ok=True)
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        features: list[dict[str, Any]] = []
        frame_render: list[float] = []
        what = f"{self.name} job in {out_dir}"
        for k in range(num):
            check_cancelled(cancel_event, what, k)
            t0 = time.perf_counter()
            rgb, objects = _render_scene(params, seed, k, classes)
            file_name = f"{k:06d}.png"
            data = encode_rgb_png(rgb, level=1)
            (out_dir / "images" / file_name).write_bytes(data)
            if k == 0:
                (out_dir / "video_preview.png").write_bytes(data)
            images.append({"id": k, "file_name": file_name, "width": rgb.shape[1], "height": rgb.shape[0]})
            for cls, poly in objects:
                x0, y0 = poly.min(axis=0)
                x1, y1 = poly.max(axis=0)
                flat = np.round(poly.reshape(-1), 4).tolist()
                ann_id = len(annotations) + 1
                annotations.append({
                    "id": ann_id,
                    "image_id": k,
                    "category_id": CLASSES.index(cls) + 1,
                    "bbox": [round(float(v), 4) for v in (x0, y0, x1 - x0, y1 - y0)],
                    "segmentation": [flat],
                    "area": round(polygon_area(np.round(poly, 4)), 4),
                    "iscrowd": 0,
                })  # fmt: skip
                ring = [*np.round(poly, 4).tolist(), np.round(poly[0], 4).tolist()]
                features.append({
                    "type": "Feature",
                    "properties": {"image_filename": file_name, "class_id": CLASSES.index(cls) + 1, "class": cls},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                })  # fmt: skip
            frame_render.append(time.perf_counter() - t0)
        coco = {
            "info": {"description": f"{self.name} synthetic top-down scenes", "generator": self.name, "seed": seed},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": c.lower(), "supercategory": "object"} for i, c in enumerate(CLASSES)],
        }
        (out_dir / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
        geojson = {"type": "FeatureCollection", "features": features}
        (out_dir / "annotations.geojson").write_text(json.dumps(geojson), encoding="utf-8")
        timing = {"frame_render": frame_render, "num_frames": num}
        (out_dir / "timing.json").write_text(json.dumps(timing, indent=4), encoding="utf-8")
        write_job_json(out_dir, self.name, params)
        return num


def _ground(params: Mapping[str, Any], gen: np.random.Generator, width: int, height: int) -> np.ndarray:
    import cv2

    base = np.array(_GROUNDS[str(params["ground"])], dtype=np.float32)
    tex = np.zeros((height, width), np.float32)
    for cells, weight in ((4, 0.5), (16, 0.3), (64, 0.2)):
        small = gen.uniform(-1, 1, size=(cells, cells)).astype(np.float32)
        tex += weight * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = gen.uniform(-1, 1, size=(height, width)).astype(np.float32)
    img = base[None, None, :] * (1.0 + 0.12 * tex + 0.05 * grain)[..., None]
    return np.asarray(img, dtype=np.float32)


def _object_polygon(cls: str, gen: np.random.Generator, gsd: float, centre: np.ndarray) -> tuple[np.ndarray, float]:
    (l0, l1), (w0, w1), height, _ = _SIZES[cls]
    length = float(gen.uniform(l0, l1)) / gsd
    heading = float(gen.uniform(0, 2 * math.pi))
    if cls == "TREE":
        ang = np.linspace(0, 2 * math.pi, 16, endpoint=False) + heading
        local = np.stack([np.cos(ang), np.sin(ang)], axis=1) * (length / 2)
    else:
        width = float(gen.uniform(w0, w1)) / gsd
        local = np.array(
            [[-length / 2, -width / 2], [length / 2, -width / 2], [length / 2, width / 2], [-length / 2, width / 2]]
        )
        c, s = math.cos(heading), math.sin(heading)
        local = local @ np.array([[c, s], [-s, c]])
    return centre + local, height / gsd


def _render_scene(
    params: Mapping[str, Any], seed: int, k: int, classes: list[str]
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Render image ``k`` of the job; returns RGB uint8 and the (class, clipped polygon) of each kept object."""
    import cv2

    width, height = int(params["image_width"]), int(params["image_height"])
    gsd = float(params["gsd_m"])
    gen = rng(seed, f"shapes/{k}")
    img = _ground(params, gen, width, height)
    placed: list[tuple[str, np.ndarray, float, np.ndarray]] = []
    for _ in range(int(params["num_objects"])):
        for _try in range(20):
            cls = classes[int(gen.integers(0, len(classes)))]
            centre = gen.uniform([0, 0], [width, height])
            poly, _height_px = _object_polygon(cls, gen, gsd, centre)
            radius = float(np.max(np.linalg.norm(poly - centre, axis=1)))
            if all(np.linalg.norm(centre - c) > radius + r + 1.0 for _, _, r, c in placed):
                placed.append((cls, poly, radius, centre))
                break
    kept: list[tuple[str, np.ndarray]] = []
    scale = 16.0  # fillPoly sub-pixel precision: 4 fractional bits
    shadow = np.zeros((height, width), np.float32)
    for cls, poly, _, _ in placed:
        shadow_len = _SIZES[cls][2] / gsd * 0.35
        if shadow_len > 0:
            pts = np.round((poly + _SUN * shadow_len) * scale).astype(np.int32)
            cv2.fillPoly(shadow, [pts], 1.0, lineType=cv2.LINE_AA, shift=4)
    img *= (1.0 - 0.45 * shadow)[..., None]
    for cls, poly, _, centre in placed:
        colour = np.array(_SIZES[cls][3], dtype=np.float32) * float(gen.uniform(0.8, 1.2))
        pts = np.round(poly * scale).astype(np.int32)
        cv2.fillPoly(img, [pts], colour.tolist(), lineType=cv2.LINE_AA, shift=4)
        # shading: a lighter half towards the sun side
        half = np.array([centre, *poly[: max(2, len(poly) // 2)]])
        lit = np.round(half * scale).astype(np.int32)
        cv2.fillPoly(img, [lit], np.clip(colour * 1.15, 0, 1).tolist(), lineType=cv2.LINE_AA, shift=4)
        clipped = _clip_polygon(poly, float(width), float(height))
        if len(clipped) >= 3 and polygon_area(clipped) >= 4.0:
            kept.append((cls, clipped))
    blur = float(params["blur_sigma"])
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    out = img * 255.0
    noise = float(params["noise_std"])
    if noise > 0:
        out = out + gen.standard_normal(out.shape, dtype=np.float32) * noise
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), kept
