"""Synthetic stand-ins for the iquaflow test datasets, built by the suite itself so it runs on any clone.

They have the real fixtures' layout, names and kinds of data (COCO JPEGs with 130 annotations over 10 images, 10
single-band uint16 GeoTIFFs in EPSG:32616 at 0.5 m with 15 GeoJSON polygons, 2 RGB TIFFs with an empty annotation
file, a detections file), so every behaviour can be tested without ``shared/fixtures``; the numbers the original's
tests assert on the real images stay in the real-fixture layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import tifffile

__all__ = ["GEO_ORIGINS", "build_all", "build_coco", "build_geo", "build_inria"]

N_IMAGES = 10
N_PER_IMAGE = 13  # 130 annotations, as the real COCO fixture
N_CATEGORIES = 80
N_USED_CATEGORIES = 26
PIXEL_M = 0.5
GEO_SIZE = 90
#: Top-left UTM corners (x, y) of the GeoTIFF tiles; files are named ``sample_geotiff_<x>_<y>.tif``.
GEO_ORIGINS = [(733601 + 45 * (i % 5), 3725139 - 45 * (i // 5)) for i in range(N_IMAGES)]
# uint16 GeoKeyDirectory for "WGS 84 / UTM zone 16N": projected model, pixel-is-area, EPSG:32616, metres
_GEOKEYS = (1, 1, 0, 5, 1024, 0, 1, 1, 1025, 0, 1, 1, 1026, 34737, 22, 0, 3072, 0, 1, 32616, 3076, 0, 1, 9001)
_GEOASCII = "WGS 84 / UTM zone 16N|"


def _edges_image(rng: np.random.Generator, h: int, w: int, boxes: list[list[int]]) -> np.ndarray:
    """A smooth, slightly noisy background with rectangles: flat ones (straight blurred edges for the sharpness
    metric) and finely textured ones (high spatial frequencies for resampling and compression to remove)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = rng.uniform(60, 110) + 0.1 * xx + 0.05 * yy
    img = np.repeat(img[..., None], 3, axis=2) + rng.uniform(-8, 8, 3)
    for k, (x, y, bw, bh) in enumerate(boxes):
        if k < 3:
            img[y : y + bh, x : x + bw, :] = rng.uniform(150, 220) + rng.uniform(-5, 5, 3)
        else:
            checker = (yy[y : y + bh, x : x + bw] + xx[y : y + bh, x : x + bw]) % 2 * 2 - 1
            img[y : y + bh, x : x + bw, :] = (rng.uniform(90, 140) + 40 * checker)[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 0.7) + rng.normal(0.0, 1.5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def build_coco(root: Path, seed: int = 0) -> Path:
    """``root/ds_coco_dataset`` (``images/*.jpg`` + ``coco_annotations.json``) and ``root/coco_detect.json``."""
    rng = np.random.default_rng([seed, 1])
    ds = root / "ds_coco_dataset"
    (ds / "images").mkdir(parents=True)
    images, annotations = [], []
    for i in range(N_IMAGES):
        h, w = int(rng.integers(96, 161)), int(rng.integers(128, 201))
        boxes = []
        for _ in range(N_PER_IMAGE):
            bw, bh = int(rng.integers(8, w // 3)), int(rng.integers(8, h // 3))
            boxes.append([int(rng.integers(2, w - bw - 2)), int(rng.integers(2, h - bh - 2)), bw, bh])
        name = f"{100000 + 7919 * i:012d}.jpg"
        cv2.imwrite(str(ds / "images" / name), _edges_image(rng, h, w, boxes[:8]), [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
        for x, y, bw, bh in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(1 + len(annotations) % N_USED_CATEGORIES),
                    "bbox": [float(x), float(y), float(bw), float(bh)],
                    "area": float(bw * bh),
                    "iscrowd": 0,
                    "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]],
                }
            )
    categories = [{"id": c, "name": f"class_{c:02d}", "supercategory": "thing"} for c in range(1, N_CATEGORIES + 1)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (ds / "coco_annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    detections = [dict(a, score=round(0.5 + 0.5 * ((a["id"] * 37) % 100) / 100, 3)) for a in annotations]
    (root / "coco_detect.json").write_text(json.dumps(detections), encoding="utf-8")
    return ds


def _polygon(x0: float, y0: float, cx: float, cy: float, rx: float, ry: float) -> list[list[float]]:
    """A closed pentagon around pixel centre (cx, cy) of a tile, in UTM metres."""
    pts = []
    for k in range(5):
        a = 2 * np.pi * k / 5
        px, py = cx + rx * np.cos(a), cy + ry * np.sin(a)
        pts.append([x0 + px * PIXEL_M, y0 - py * PIXEL_M])
    return [*pts, pts[0]]


def build_geo(root: Path, seed: int = 0) -> Path:
    """``root/ds_geo_dataset``: 10 georeferenced uint16 tiles and ``annots.geojson`` (15 polygons, class 0)."""
    rng = np.random.default_rng([seed, 2])
    ds = root / "ds_geo_dataset"
    (ds / "images").mkdir(parents=True)
    features = []
    for i, (x0, y0) in enumerate(GEO_ORIGINS):
        name = f"sample_geotiff_{x0}_{y0}.tif"
        img = rng.normal(300.0, 25.0, (GEO_SIZE, GEO_SIZE))
        for _ in range(2 if i < 5 else 1):  # 15 polygons over 10 tiles
            cx, cy = rng.uniform(25, 65, 2)
            rx, ry = rng.uniform(6, 18, 2)
            ring = _polygon(x0, y0, cx, cy, rx, ry)
            features.append(
                {
                    "type": "Feature",
                    "properties": {"image_filename": name, "class_id": 0},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
            yy, xx = np.mgrid[0:GEO_SIZE, 0:GEO_SIZE]
            img[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 0.6] += 700.0
        tifffile.imwrite(
            ds / "images" / name,
            np.clip(np.rint(img), 0, 65535).astype(np.uint16),
            photometric="minisblack",
            extratags=[
                (33550, 12, 3, (PIXEL_M, PIXEL_M, 0.0), True),
                (33922, 12, 6, (0.0, 0.0, 0.0, float(x0), float(y0), 0.0), True),
                (34735, 3, len(_GEOKEYS), _GEOKEYS, True),
                (34737, 2, 0, _GEOASCII, True),
                (42113, 2, 0, "0", True),
            ],
            metadata=None,
        )
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32616"}}
    geojson = {"type": "FeatureCollection", "crs": crs, "features": features}
    (ds / "annots.geojson").write_text(json.dumps(geojson), encoding="utf-8")
    return ds


def build_inria(root: Path, seed: int = 0) -> Path:
    """``root/ds_inria_dataset``: 2 RGB uint8 TIFFs without CRS and an empty ``annotations.json``."""
    rng = np.random.default_rng([seed, 3])
    ds = root / "ds_inria_dataset"
    (ds / "images").mkdir(parents=True)
    for name in ("bellingham1+1024.tif", "bellingham9+1024.tif"):
        img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        tifffile.imwrite(ds / "images" / name, img, photometric="rgb", metadata=None)
    (ds / "annotations.json").write_bytes(b"")
    return ds


def build_all(root: Path) -> Path:
    """Build the three datasets and ``coco_detect.json`` under ``root`` (created); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    build_coco(root)
    build_geo(root)
    build_inria(root)
    return root
