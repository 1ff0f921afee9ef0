"""GeoJSON files as plain pandas DataFrames (property columns + a ``geometry`` column of shapely objects)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pandas as pd
from shapely.geometry import mapping, shape

from opsin.core import atomic_write_text, dumps_json
from opsin.iq.errors import AnnotationFormatError

__all__ = ["REQUIRED_FIELDS", "read_geojson", "write_geojson"]

#: Columns a GeoJSON annotation table must have.
REQUIRED_FIELDS: list[str] = ["image_filename", "class_id", "geometry"]


def read_geojson(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a GeoJSON FeatureCollection into a DataFrame (``crs`` member in ``df.attrs["crs"]``).

    Missing geometries become None; geometries shapely cannot build also become None (reported by the sanity
    check as missing).

    Raises:
        AnnotationFormatError: not JSON, or not a FeatureCollection (names the file).
    """
    spath = os.fspath(path)
    try:
        with open(spath, encoding="utf-8") as fh:
            data = json.load(fh)
    except ValueError as exc:
        msg = f"GeoJSON file {spath} is not valid JSON: {exc}"
        raise AnnotationFormatError(msg) from exc
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        msg = f"GeoJSON file {spath} is not a FeatureCollection (no 'features' list)"
        raise AnnotationFormatError(msg)
    rows = []
    for feat in data["features"]:
        props = dict((feat or {}).get("properties") or {})
        geom = (feat or {}).get("geometry")
        try:
            props["geometry"] = shape(geom) if geom else None
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            props["geometry"] = None
        rows.append(props)
    df = pd.DataFrame(rows)
    if "geometry" not in df.columns:
        df["geometry"] = pd.Series(dtype=object)
    if "crs" in data:
        df.attrs["crs"] = data["crs"]
    return df


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            return _clean(value.item())
        except (ValueError, AttributeError):
            return value
    return value


def write_geojson(df: pd.DataFrame, path: str | os.PathLike[str], crs: Any = None) -> None:
    """Write a DataFrame (or GeoDataFrame) as a GeoJSON FeatureCollection.

    The ``crs`` member comes from the argument or ``df.attrs["crs"]``; NaN values are written as ``null``.
    """
    crs = crs if crs is not None else df.attrs.get("crs")
    features = []
    for _, row in df.iterrows():
        geom = row.get("geometry")
        props = {k: _clean(v) for k, v in row.items() if k != "geometry"}
        features.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": mapping(geom) if geom is not None and not _is_nan(geom) else None,
            }
        )
    out: dict[str, Any] = {"type": "FeatureCollection"}
    if crs is not None:
        out["crs"] = crs
    out["features"] = features
    atomic_write_text(os.fspath(path), dumps_json(out))


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)
