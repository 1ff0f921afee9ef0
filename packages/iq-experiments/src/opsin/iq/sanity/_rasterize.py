"""``Rasterize``: GeoJSON polygons to per-image class masks (``<images>_mask/<file name>_mask``)."""

from __future__ import annotations

import math
import os

import numpy as np
import shapely
import tifffile

from opsin.core import get_logger
from opsin.iq.datasets.ds_tools import find_image_folder, list_images
from opsin.iq.io import ImageMeta, read_image
from opsin.iq.sanity._geojson import read_geojson

__all__ = ["Rasterize", "rasterize_image"]

logger = get_logger(__name__)

BACKGROUND = 255


def rasterize_image(meta: ImageMeta, shape: tuple[int, int], polygons: list[tuple[object, int]]) -> np.ndarray:
    """Burn ``(geometry, class_id)`` pairs into a uint8 mask (255 background, later polygons win).

    Pixel centres ``(col + 0.5, row + 0.5)`` go through the image's affine (pixel coordinates without one).
    """
    h, w = shape
    mask = np.full((h, w), BACKGROUND, dtype=np.uint8)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    aff = meta.affine()
    if aff is None:
        gx, gy = cols, rows
    else:
        a, b, c, d, e, f = aff
        gx, gy = a * cols + b * rows + c, d * cols + e * rows + f
    for geom, cls in polygons:
        if geom is None or geom.is_empty:  # type: ignore[attr-defined]
            continue
        minx, miny, maxx, maxy = geom.bounds  # type: ignore[attr-defined]
        sel = (gx >= minx) & (gx <= maxx) & (gy >= miny) & (gy <= maxy)
        if not sel.any():
            continue
        inside = shapely.contains_xy(geom, gx[sel], gy[sel])
        idx = np.nonzero(sel)
        mask[idx[0][inside], idx[1][inside]] = np.uint8(cls)
    return mask


class Rasterize:
    """Masks from GeoJSON annotations for every image of a dataset's image folder.

    Args:
        geojson_fn: the GeoJSON file (features with ``image_filename``, ``class_id``, ``geometry``).
        data_input: the image folder; default: the single image folder next to ``geojson_fn``.

    Constructing it writes ``<images>_mask/<file name>_mask`` at once, as the original did (so mask-based
    statistics and ``DSModifier_dir`` find the folder right after ``Rasterize(path)``): uint8 TIFFs of the image's
    size carrying its georeferencing tags, 255 = background, ``class_id`` inside polygons. Geometries are taken to be
    in the image's CRS (no reprojection). :meth:`run` writes them again (after the annotations changed).

    Attributes:
        mask_dir: the mask folder.
        mask_paths: the masks written.
    """

    def __init__(self, geojson_fn: str, data_input: str | None = None) -> None:
        self.geojson_fn = os.fspath(geojson_fn)
        self.data_input = data_input or find_image_folder(os.path.dirname(self.geojson_fn) or ".")
        self.mask_dir = os.path.normpath(self.data_input) + "_mask"
        self.mask_paths: list[str] = self.run()

    def run(self) -> list[str]:
        """Write the masks; returns their paths."""
        df = read_geojson(self.geojson_fn)
        os.makedirs(self.mask_dir, exist_ok=True)
        written = []
        for name in list_images(self.data_input):
            img, meta = read_image(os.path.join(self.data_input, name))
            polys = []
            if "image_filename" in df.columns:
                for _, row in df[df["image_filename"] == name].iterrows():
                    cls = row.get("class_id")
                    if cls is None or (isinstance(cls, float) and math.isnan(cls)):
                        continue
                    polys.append((row.get("geometry"), int(cls)))
            mask = rasterize_image(meta, img.shape[:2], polys)
            out = os.path.join(self.mask_dir, f"{name}_mask")
            extratags = [(code, dt, cnt, val, True) for code, (dt, cnt, val) in sorted(meta.tags.items())]
            tifffile.imwrite(out, mask, photometric="minisblack", extratags=extratags, metadata=None)
            written.append(out)
        logger.info("rasterized %d masks into %s", len(written), self.mask_dir)
        self.mask_paths = written
        return written
