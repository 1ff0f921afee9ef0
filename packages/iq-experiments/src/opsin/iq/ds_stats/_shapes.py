"""Shape measurements of annotation polygons (shapely)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "area_pol",
    "calc_bbox",
    "calc_centroid",
    "calc_minrotrect",
    "calc_rectangle_stats",
    "compute_compactness",
    "dataframe_basic_stats",
]


def _ok(geom: Any) -> bool:
    return geom is not None and not (isinstance(geom, float) and math.isnan(geom)) and not geom.is_empty


def calc_minrotrect(geom: Any) -> Any:
    """Minimum rotated rectangle of a geometry (None for a missing one)."""
    return geom.minimum_rotated_rectangle if _ok(geom) else None


def calc_bbox(geom: Any) -> Any:
    """Axis-aligned bounding box polygon (None for a missing geometry)."""
    return geom.envelope if _ok(geom) else None


def area_pol(geom: Any) -> float | None:
    """Area (None for a missing geometry)."""
    return float(geom.area) if _ok(geom) else None


def compute_compactness(geom: Any) -> float | None:
    """``4 pi A / P^2`` (1 for a disc); None for a missing or degenerate geometry."""
    if not _ok(geom) or geom.length == 0:
        return None
    return float(4.0 * math.pi * geom.area / geom.length**2)


def calc_rectangle_stats(rect: Any) -> list[float | None]:
    """``[long side, short side, angle of the long side in degrees]`` of a rectangle polygon."""
    if not _ok(rect) or rect.geom_type != "Polygon":
        return [None, None, None]
    xy = np.asarray(rect.exterior.coords)[:4]
    if len(xy) < 3:
        return [None, None, None]
    e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    long_edge = e1 if l1 >= l2 else e2
    angle = math.degrees(math.atan2(float(long_edge[1]), float(long_edge[0]))) % 180.0
    return [max(l1, l2), min(l1, l2), angle]


def calc_centroid(geom: Any) -> tuple[float, float] | tuple[None, None]:
    """Centroid ``(x, y)``; ``(None, None)`` for a missing geometry."""
    if not _ok(geom):
        return (None, None)
    c = geom.centroid
    return (float(c.x), float(c.y))


def dataframe_basic_stats(df: pd.DataFrame, field: str) -> list[dict[str, float | None]]:
    """``[{"min": v}, {"mean": v}, {"max": v}]`` of a column (Nones when absent or empty)."""
    if field not in df.columns:
        return [{"min": None}, {"mean": None}, {"max": None}]
    col = pd.to_numeric(df[field], errors="coerce").dropna()
    if col.empty:
        return [{"min": None}, {"mean": None}, {"max": None}]
    return [{"min": float(col.min())}, {"mean": float(col.mean())}, {"max": float(col.max())}]
