"""Sanity checks and repairs of annotations (COCO, GeoJSON) and rasterisation of GeoJSON into masks."""

from opsin.iq.sanity._check import VALID_IMAGE_TYPES, SanityCheck, clean_list
from opsin.iq.sanity._geojson import REQUIRED_FIELDS, read_geojson, write_geojson
from opsin.iq.sanity._rasterize import Rasterize

__all__ = [
    "REQUIRED_FIELDS",
    "Rasterize",
    "SanityCheck",
    "VALID_IMAGE_TYPES",
    "clean_list",
    "read_geojson",
    "write_geojson",
]
