"""``DsStats``: dataset statistics (image sizes, classes, coverage, shapes) written as JSON and PNG plots."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from opsin.core import atomic_write_text, dumps_json, get_logger
from opsin.iq.datasets._wrapper import DSWrapper
from opsin.iq.datasets.ds_tools import list_images
from opsin.iq.ds_stats import _notebook, _shapes
from opsin.iq.errors import AnnotationFormatError, ImageReadError
from opsin.iq.io import read_image
from opsin.iq.sanity._geojson import read_geojson

__all__ = ["DsStats"]

logger = get_logger(__name__)

_GEO_FIELDS = (
    "area",
    "rarea",
    "rhigh",
    "rwidth",
    "rangle",
    "bbx_area",
    "bbx_high",
    "bbx_width",
    "bbx_angle",
    "compactness",
    "x",
    "y",
)


def _save(fig: Figure, path: str, show: bool) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    if show:
        try:
            from IPython.display import display
        except ImportError:
            return
        display(fig)


def _histo(values: list[float], key: str) -> dict[str, Any]:
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64)) if values else (np.zeros(10), np.zeros(11))
    return {"bin_edges": [float(e) for e in edges], "ar_counts": [int(c) for c in counts], key: list(values)}


class DsStats:
    """Statistics of a dataset's images and annotations.

    Args:
        data_path: the dataset folder (instead of ``ds_wrapper``).
        output_path: where ``stats.json`` and ``images/*.png`` go; default ``<data_path>/stats``.
        ds_wrapper: the dataset.

    Attributes:
        annotfns: sorted ``*.json`` / ``*.geojson`` files of the dataset folder.
        mask_subdir_lst: sub-folders ending in ``_mask``.
        unreadable_images: ``[(path, reason), ...]`` found by the last :meth:`perform_stats`.
    """

    def __init__(self, data_path: str = "", output_path: str = "", ds_wrapper: DSWrapper | None = None) -> None:
        self.ds_wrapper = ds_wrapper if ds_wrapper is not None else DSWrapper(data_path=data_path)
        self.data_path = self.ds_wrapper.data_path
        self.output_path = output_path or os.path.join(self.data_path, "stats")
        self.output_img_path = os.path.join(self.output_path, "images")
        self.unreadable_images: list[tuple[str, str]] = []
        os.makedirs(self.output_img_path, exist_ok=True)
        names = sorted(os.listdir(self.data_path))
        self.annotfns = [
            os.path.join(self.data_path, n)
            for n in names
            if not n.startswith(".") and n.lower().endswith((".json", ".geojson"))
        ]
        self.mask_subdir_lst = [
            os.path.join(self.data_path, n)
            for n in names
            if n.endswith("_mask") and os.path.isdir(os.path.join(self.data_path, n))
        ]

    # -- COCO -------------------------------------------------------------------------------------------------------
    @staticmethod
    def mask_stats(gt: dict[str, Any]) -> list[list[Any]]:
        """Mean area fraction per category: ``[names, values]`` with ``background`` first.

        Per image, the summed annotation ``area`` (or polygon area) of a category over the image area; averaged
        by dividing by the number of images + 1 (kept from the original for compatible numbers). Categories come in
        order of first appearance (images in file order); ``background`` is 1 minus each class in turn.
        """
        cats = {c["id"]: c.get("name", str(c["id"])) for c in gt.get("categories", [])}
        order: list[Any] = []
        sums: dict[Any, float] = {}
        for im in gt.get("images", []):
            area_img = float(im.get("height", 0)) * float(im.get("width", 0))
            per: dict[Any, float] = {}
            for an in gt.get("annotations", []):
                if an.get("image_id") != im.get("id"):
                    continue
                cid = an.get("category_id")
                if cid not in order:
                    order.append(cid)
                per[cid] = per.get(cid, 0.0) + float(an.get("area") or _poly_area(an.get("segmentation")))
            for cid, a in per.items():
                sums[cid] = sums.get(cid, 0.0) + (a / area_img if area_img > 0 else 0.0)
        n = len(gt.get("images", [])) + 1
        values = [sums.get(c, 0.0) / n for c in order]
        names = [cats.get(c, str(c)) for c in order]
        # subtract class by class, as the original did: the same floats to the last bit (a sum first differs)
        background = 1.0
        for value in values:
            background -= value
        return [["background", *names], [background, *values]]

    def _coco_stats(self, fn: str, show: bool) -> list[dict[str, Any]]:
        try:
            with open(fn, encoding="utf-8") as fh:
                gt = json.load(fh)
        except ValueError as exc:
            msg = f"annotation file {fn} is not valid JSON: {exc}"
            raise AnnotationFormatError(msg) from exc
        if not isinstance(gt, dict) or not isinstance(gt.get("images"), list):
            logger.warning("skipping %s: not a COCO annotation file", fn)
            return []
        base = os.path.splitext(os.path.basename(fn))[0]
        imgs, anns = gt["images"], gt.get("annotations", [])
        out: list[dict[str, Any]] = []
        heights = [float(i.get("height", 0)) for i in imgs]
        widths = [float(i.get("width", 0)) for i in imgs]
        out.append(
            {
                "file": fn,
                "obj": "images",
                "stats": {
                    "mean_height": float(np.mean(heights)) if heights else None,
                    "mean_width": float(np.mean(widths)) if widths else None,
                },
            }
        )
        cats = {c["id"]: c.get("name", str(c["id"])) for c in gt.get("categories", [])}
        counts: dict[Any, int] = {}
        for an in anns:
            counts[an.get("category_id")] = counts.get(an.get("category_id"), 0) + 1
        ids = sorted(counts)
        out.append(
            {
                "file": fn,
                "obj": "class_histo",
                "stats": {
                    "cat_ids": ids,
                    "cat_names": [cats.get(i, str(i)) for i in ids],
                    "cat_tags_count": [counts[i] for i in ids],
                },
            }
        )
        fig = Figure(figsize=(10, 4))
        ax = fig.add_subplot()
        ax.bar([cats.get(i, str(i)) for i in ids], [counts[i] for i in ids])
        ax.tick_params(axis="x", rotation=90)
        ax.set_title("annotations per class")
        _save(fig, os.path.join(self.output_img_path, f"{base}_class_histo.png"), show)
        names, values = self.mask_stats(gt)
        out.append({"file": fn, "obj": "area_coverage_by_class", "stats": dict(zip(names, values, strict=True))})
        fig = Figure(figsize=(10, 4))
        ax = fig.add_subplot()
        ax.bar(names, values)
        ax.tick_params(axis="x", rotation=90)
        ax.set_title("mean area fraction per class")
        _save(fig, os.path.join(self.output_img_path, f"{base}_class_area_histo.png"), show)
        bbs = [an["bbox"] for an in anns if isinstance(an.get("bbox"), list) and len(an["bbox"]) == 4]
        series = [
            (
                "bbox_aspect_ratio_histo",
                "aspect_ratios",
                [b[2] / b[3] for b in bbs if b[3] > 0],
                "bbox_aspect_ratio_histo",
            ),
            ("bbox_area_histo", "areas", [b[2] * b[3] for b in bbs], "bbox_area_histo"),
            (
                "images_aspect_ratio_histo",
                "aspect_ratios",
                [w / h for w, h in zip(widths, heights, strict=True) if h > 0],
                "imgs_aspect_ratio_histo",
            ),
            ("images_area_histo", "areas", [w * h for w, h in zip(widths, heights, strict=True)], "imgs_area_histo"),
        ]
        for obj, key, vals, png in series:
            out.append({"file": fn, "obj": obj, "stats": _histo(vals, key)})
            fig = Figure(figsize=(6, 4))
            ax = fig.add_subplot()
            ax.hist(vals, bins=10)
            ax.set_title(obj)
            _save(fig, os.path.join(self.output_img_path, f"{base}_{png}.png"), show)
        return out

    # -- GeoJSON ----------------------------------------------------------------------------------------------------
    @staticmethod
    def geo_table(df: pd.DataFrame) -> pd.DataFrame:
        """Add the shape columns (``area, rarea, rhigh, rwidth, rangle, bbx_*, compactness, x, y``) to a table."""
        df = df.copy()
        geoms = df["geometry"] if "geometry" in df.columns else pd.Series([None] * len(df), index=df.index)
        df["area"] = [_shapes.area_pol(g) for g in geoms]
        rects = [_shapes.calc_minrotrect(g) for g in geoms]
        rstats = [_shapes.calc_rectangle_stats(r) for r in rects]
        df["rarea"] = [_shapes.area_pol(r) for r in rects]
        df["rhigh"], df["rwidth"], df["rangle"] = ([s[i] for s in rstats] for i in range(3))
        boxes = [_shapes.calc_bbox(g) for g in geoms]
        bstats = [_shapes.calc_rectangle_stats(b) for b in boxes]
        df["bbx_area"] = [_shapes.area_pol(b) for b in boxes]
        df["bbx_high"], df["bbx_width"], df["bbx_angle"] = ([s[i] for s in bstats] for i in range(3))
        df["compactness"] = [_shapes.compute_compactness(g) for g in geoms]
        cents = [_shapes.calc_centroid(g) for g in geoms]
        df["x"], df["y"] = [c[0] for c in cents], [c[1] for c in cents]
        return df

    def _geojson_stats(self, fn: str, show: bool) -> list[dict[str, Any]]:
        df = self.geo_table(read_geojson(fn))
        base = os.path.splitext(os.path.basename(fn))[0]
        folder = self.ds_wrapper.data_input
        heights, widths = [], []
        for name in list_images(folder, warn=False):
            arr, _ = read_image(os.path.join(folder, name))
            heights.append(arr.shape[0])
            widths.append(arr.shape[1])
        out = [
            {
                "file": fn,
                "obj": "images",
                "stats": {
                    "mean_height": float(np.mean(heights)) if heights else None,
                    "mean_width": float(np.mean(widths)) if widths else None,
                },
            },
            {"file": fn, "obj": "geojson", "stats": {f: _shapes.dataframe_basic_stats(df, f) for f in _GEO_FIELDS}},
        ]
        for hi, wi, png in (("rhigh", "rwidth", "rotrect_high_width"), ("bbx_high", "bbx_width", "bbx_high_width")):
            fig = Figure(figsize=(5, 5))
            ax = fig.add_subplot()
            ax.scatter(pd.to_numeric(df[wi]), pd.to_numeric(df[hi]), s=8)
            ax.set_xlabel(wi)
            ax.set_ylabel(hi)
            _save(fig, os.path.join(self.output_img_path, f"{base}_{png}.png"), show)
        for field in ("area", "compactness"):
            fig = Figure(figsize=(6, 4))
            ax = fig.add_subplot()
            ax.hist(pd.to_numeric(df[field]).dropna(), bins=10)
            ax.set_title(field)
            _save(fig, os.path.join(self.output_img_path, f"{base}_{field}_histo.png"), show)
        fig = Figure(figsize=(5, 5))
        ax = fig.add_subplot(projection="polar")
        angles = np.deg2rad(pd.to_numeric(df["rangle"]).dropna().to_numpy(dtype=np.float64))
        ax.hist(angles, bins=36, range=(0, np.pi))
        _save(fig, os.path.join(self.output_img_path, "rangle_polarhist.png"), show)
        return out

    # -- masks ------------------------------------------------------------------------------------------------------
    def _mask_stats(self, mask_dir: str, show: bool) -> dict[str, Any]:
        counts: dict[int, int] = {}
        total = 0
        for name in sorted(os.listdir(mask_dir)):
            try:
                arr, _ = read_image(os.path.join(mask_dir, name))
            except OSError:
                logger.warning("skipping unreadable mask %s", os.path.join(mask_dir, name))
                continue
            vals, cnt = np.unique(arr, return_counts=True)
            for v, c in zip(vals.tolist(), cnt.tolist(), strict=True):
                counts[int(v)] = counts.get(int(v), 0) + int(c)
            total += int(arr.size)
        stats = {v: 100.0 * c / total for v, c in sorted(counts.items())} if total else {}
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot()
        ax.bar([str(k) for k in stats], list(stats.values()))
        ax.set_title("% of pixels per mask value")
        _save(fig, os.path.join(self.output_img_path, f"{os.path.basename(mask_dir)}_class_area_histo.png"), show)
        return {"mask_dir": mask_dir, "obj": "area_coverage_by_class", "stats": stats}

    def perform_stats(self, show_plots: bool = True) -> list[dict[str, Any]]:
        """Compute every statistic, write ``<output>/stats.json`` and the PNG plots.

        Args:
            show_plots: also display the plots (in a notebook).

        Returns:
            The list of statistics records (masks, then COCO files, then GeoJSON files).
        """
        self.unreadable_images = self.find_unreadable_images()
        out: list[dict[str, Any]] = [self._mask_stats(d, show_plots) for d in self.mask_subdir_lst]
        for fn in self.annotfns:
            if fn.lower().endswith(".geojson"):
                continue
            if os.path.getsize(fn) == 0:
                logger.warning("skipping empty annotation file %s", fn)
                continue
            out += self._coco_stats(fn, show_plots)
        for fn in self.annotfns:
            if fn.lower().endswith(".geojson"):
                out += self._geojson_stats(fn, show_plots)
        if self.unreadable_images:
            files = dict(self.unreadable_images)
            out.append({"file": self.ds_wrapper.data_input, "obj": "unreadable_images", "stats": files})
        atomic_write_text(os.path.join(self.output_path, "stats.json"), dumps_json(out, indent=2))
        return out

    def find_unreadable_images(self) -> list[tuple[str, str]]:
        """Decode every image of the dataset's image folder; ``[(path, reason), ...]`` for those that fail.

        Each failure is also logged as a warning. :meth:`perform_stats` calls this and adds an
        ``unreadable_images`` record (``{path: reason}``) to its result when any image fails.
        """
        folder = self.ds_wrapper.data_input
        bad: list[tuple[str, str]] = []
        for name in list_images(folder, warn=False):
            path = os.path.join(folder, name)
            try:
                read_image(path)
            except ImageReadError as exc:
                logger.warning("%s", exc)
                bad.append((path, str(exc)))
        return bad

    # -- compatibility helpers ----------------------------------------------------------------------------------------
    _calc_minrotrect = staticmethod(_shapes.calc_minrotrect)
    _calc_bbox = staticmethod(_shapes.calc_bbox)
    _area_pol = staticmethod(_shapes.area_pol)
    _compute_compactness = staticmethod(_shapes.compute_compactness)
    _calc_rectangle_stats = staticmethod(_shapes.calc_rectangle_stats)
    _calc_centroid = staticmethod(_shapes.calc_centroid)
    _dataframe_basic_stats = staticmethod(_shapes.dataframe_basic_stats)
    notebook_imgs_preview = staticmethod(_notebook.notebook_imgs_preview)
    notebook_annots_summary = staticmethod(_notebook.notebook_annots_summary)


def _poly_area(seg: Any) -> float:
    if not isinstance(seg, list):
        return 0.0
    total = 0.0
    for poly in seg:
        if isinstance(poly, list) and len(poly) >= 6:
            xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            x, y = xy[:, 0], xy[:, 1]
            total += 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    return total
