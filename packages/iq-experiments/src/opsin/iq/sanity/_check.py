"""``SanityCheck``: find and repair problems in COCO and GeoJSON annotations."""

from __future__ import annotations

import json
import math
import os
import shutil
from typing import Any

import pandas as pd

from opsin.core import atomic_write_text, dumps_json, get_logger
from opsin.iq.datasets._wrapper import DSWrapper
from opsin.iq.datasets.ds_tools import list_images
from opsin.iq.errors import AnnotationFormatError, DSAnnotationsNotFoundError, ImageReadError
from opsin.iq.io import read_image
from opsin.iq.sanity._geojson import read_geojson, write_geojson
from opsin.iq.sanity._rasterize import Rasterize

__all__ = ["VALID_IMAGE_TYPES", "SanityCheck", "clean_list"]

logger = get_logger(__name__)

#: File extensions accepted for images referenced by annotations.
VALID_IMAGE_TYPES: tuple[str, ...] = ("jpg", "jpeg", "png", "tif", "tiff")


def clean_list(lst: list[Any], idxs: list[int]) -> list[Any]:
    """Delete the (unique) indices ``idxs`` from ``lst`` in place, in descending order; returns ``lst``."""
    for i in sorted(set(idxs), reverse=True):
        del lst[i]
    return lst


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


class SanityCheck:
    """Checks and repairs the annotations of a dataset.

    Args:
        data_path: the dataset folder (instead of ``ds_wrapper``).
        output_path: where the repaired annotations (and ``images/`` copies) are written.
        ds_wrapper: the dataset.

    Raises:
        DSAnnotationsNotFoundError: the dataset has no json/geojson annotation file.

    Problems are dicts ``{"err_file", "err_obj" ("images"|"annotations"|"categories"), "err_sbi" (list index),
    "err_code"[, "err_txt"]}``. After :meth:`fix_annotations`, ``report`` lists what was removed or fixed and why.
    """

    def __init__(self, data_path: str = "", output_path: str = "", ds_wrapper: DSWrapper | None = None) -> None:
        self.ds_wrapper = ds_wrapper if ds_wrapper is not None else DSWrapper(data_path=data_path)
        self.data_path = self.ds_wrapper.data_path
        self.output_path = output_path or os.path.join(self.data_path + "_sanity")
        annots = self.ds_wrapper.get_annotations()
        if not annots:
            msg = f"dataset {self.data_path}: no json or geojson annotation file to check"
            raise DSAnnotationsNotFoundError(msg)
        self.annotfn: str = annots[0]
        #: Where :meth:`fix_annotations` writes the repaired annotation file (same name, under ``output_path``).
        self.out_annotfn: str = os.path.join(self.output_path, os.path.basename(self.annotfn))
        self.isgeo = self.annotfn.lower().endswith("geojson")
        self.output_img_path = os.path.join(self.output_path, "images")
        os.makedirs(self.output_img_path, exist_ok=True)
        self.report: list[dict[str, Any]] = []

    # -- loading ----------------------------------------------------------------------------------------------------
    def _load_coco(self) -> dict[str, Any]:
        try:
            with open(self.annotfn, encoding="utf-8") as fh:
                gt = json.load(fh)
        except ValueError as exc:
            msg = f"annotation file {self.annotfn} is not valid JSON: {exc}"
            raise AnnotationFormatError(msg) from exc
        if not isinstance(gt, dict) or not isinstance(gt.get("images"), list):
            found = type(gt).__name__ if not isinstance(gt, dict) else f"keys {sorted(gt)}"
            msg = f"annotation file {self.annotfn} is not COCO: expected an object with an 'images' list, got {found}"
            raise AnnotationFormatError(msg)
        gt.setdefault("annotations", [])
        gt.setdefault("categories", [])
        if not isinstance(gt["annotations"], list) or not isinstance(gt["categories"], list):
            msg = f"annotation file {self.annotfn} is not COCO: 'annotations' and 'categories' must be lists"
            raise AnnotationFormatError(msg)
        return gt

    # -- checks -----------------------------------------------------------------------------------------------------
    @staticmethod
    def err_image_type(im: dict[str, Any]) -> bool:
        """True when the image's ``file_name`` has an extension outside :data:`VALID_IMAGE_TYPES` (empty: False)."""
        name = str(im.get("file_name") or "")
        if not name:
            return False
        return name.rsplit(".", 1)[-1].lower() not in VALID_IMAGE_TYPES or "." not in name

    def check_imgs_dup(self, images: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Flag duplicated images.

        The second occurrence of an image id gives ``ERR_JSON_IMG_ID_DUP``, else of a file name
        ``ERR_JSON_IMG_FNAME_DUP``.
        """
        problems = []
        ids: dict[Any, int] = {}
        names: dict[Any, int] = {}
        for i, im in enumerate(images):
            iid, name = im.get("id"), im.get("file_name")
            if iid in ids:
                problems.append(self._problem("images", i, "ERR_JSON_IMG_ID_DUP", f"id {iid} already at {ids[iid]}"))
            elif name in names:
                txt = f"file_name {name} already at {names[name]}"
                problems.append(self._problem("images", i, "ERR_JSON_IMG_FNAME_DUP", txt))
            ids.setdefault(iid, i)
            names.setdefault(name, i)
        return problems

    @staticmethod
    def check_coco_annotation(an: dict[str, Any]) -> list[str]:
        """Error codes of one COCO annotation (bbox length/type/sign, segmentation type/sign/parity, RLE)."""
        errs: list[str] = []
        bbox = an.get("bbox")
        if not isinstance(bbox, list | tuple) or len(bbox) != 4:
            errs.append("ERR_JSON_ANN_BBOX_LEN")
        if isinstance(bbox, list | tuple):
            if not all(_is_number(v) for v in bbox):
                errs.append("ERR_JSON_ANN_BBOX_TYPE")
            elif any(v < 0 for v in bbox):
                errs.append("ERR_JSON_ANN_BBOX_NEG")
        seg = an.get("segmentation")
        if isinstance(seg, list):
            coords = [v for poly in seg for v in (poly if isinstance(poly, list | tuple) else [poly])]
            if not all(_is_number(v) for v in coords):
                errs.append("ERR_JSON_ANN_SEG_TYPE")
            elif any(v < 0 for v in coords):
                errs.append("ERR_JSON_ANN_SEG_NEG")
            if any(isinstance(p, list | tuple) and len(p) % 2 for p in seg):
                errs.append("ERR_JSON_ANN_SEG_PAR")
        elif isinstance(seg, dict) and "counts" in seg:
            counts = seg["counts"]
            if isinstance(counts, list):
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
                    errs.append("ERR_JSON_ANN_SEG_TYPE")
                elif any(v < 0 for v in counts):
                    errs.append("ERR_JSON_ANN_SEG_NEG")
        return errs

    def _problem(self, obj: str, idx: int, code: str, txt: str | None = None) -> dict[str, Any]:
        p: dict[str, Any] = {"err_file": self.annotfn, "err_obj": obj, "err_sbi": idx, "err_code": code}
        if txt is not None:
            p["err_txt"] = txt
        return p

    def check_annotations(self) -> list[dict[str, Any]]:
        """All annotation problems of the dataset (COCO: images, extensions, annotations; GeoJSON: extensions)."""
        if self.isgeo:
            df = read_geojson(self.annotfn)
            probs = []
            for i, name in enumerate(df.get("image_filename", pd.Series(dtype=object))):
                if not _is_null(name) and self.err_image_type({"file_name": str(name)}):
                    probs.append(self._problem("annotations", i, "ERR_JSON_IMG_FILE_TYPE"))
            return probs
        gt = self._load_coco()
        problems = self.check_imgs_dup(gt["images"])
        for i, im in enumerate(gt["images"]):
            if self.err_image_type(im):
                problems.append(self._problem("images", i, "ERR_JSON_IMG_FILE_TYPE", str(im.get("file_name"))))
        for i, an in enumerate(gt["annotations"]):
            if not isinstance(an, dict):
                problems.append(self._problem("annotations", i, "ERR_JSON_ANN_TYPE"))
                continue
            problems += [self._problem("annotations", i, code) for code in self.check_coco_annotation(an)]
        return problems

    def check_images(self) -> list[dict[str, Any]]:
        """Check the image files.

        Images referenced by the annotations that are missing give ``ERR_IMG_MISSING``; files of the image folder
        that cannot be decoded give ``ERR_IMG_UNREADABLE``.
        """
        folder = self.ds_wrapper.data_input
        problems: list[dict[str, Any]] = []
        if self.isgeo:
            df = read_geojson(self.annotfn)
            names = [(i, str(n)) for i, n in enumerate(df.get("image_filename", [])) if not _is_null(n)]
            obj = "annotations"
        else:
            names = [(i, str(im.get("file_name", ""))) for i, im in enumerate(self._load_coco()["images"])]
            obj = "images"
        seen: set[str] = set()
        for i, name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                problems.append(self._problem(obj, i, "ERR_IMG_MISSING", path))
                continue
            seen.add(name)
        for name in list_images(folder, warn=False):
            try:
                read_image(os.path.join(folder, name))
            except ImageReadError as exc:
                idx = next((i for i, n in names if n == name), -1)
                problems.append(self._problem(obj, idx, "ERR_IMG_UNREADABLE", str(exc)))
        return problems

    # -- fixes ------------------------------------------------------------------------------------------------------
    @staticmethod
    def fix_coco_image_size(imgs: list[dict[str, Any]], imgs_dir: str) -> None:
        """Set ``height``/``width`` of each image entry from the decoded file (in place; missing files skipped)."""
        for im in imgs:
            path = os.path.join(imgs_dir, str(im.get("file_name", "")))
            if os.path.isfile(path):
                arr, _ = read_image(path)
                im["height"], im["width"] = int(arr.shape[0]), int(arr.shape[1])

    def _note(self, action: str, obj: str, idx: int, reason: str) -> None:
        self.report.append({"action": action, "err_obj": obj, "index": idx, "reason": reason})

    def _rm_geo_nan(self, df: pd.DataFrame) -> pd.DataFrame:
        bad = pd.Series(False, index=df.index)
        for col in ("image_filename", "class_id"):
            if col not in df.columns:
                bad |= True
            else:
                bad |= df[col].map(_is_null)
        for i in df.index[bad]:
            self._note("removed", "annotations", int(i), "null or NaN image_filename/class_id")
        return df[~bad]

    def _rm_geo_empty(self, df: pd.DataFrame) -> pd.DataFrame:
        bad = df["geometry"].map(lambda g: g is None or _is_null(g) or bool(g.is_empty))
        for i in df.index[bad]:
            self._note("removed", "annotations", int(i), "missing or empty geometry")
        return df[~bad]

    def _rm_geo_invalid(self, df: pd.DataFrame, try_fix_geoms: bool = True) -> pd.DataFrame:
        df = df.copy()
        if try_fix_geoms:
            for i in df.index:
                g = df.at[i, "geometry"]
                if g is not None and not _is_null(g) and not g.is_valid:
                    fixed = g.buffer(0)
                    if fixed.is_valid and not fixed.is_empty:
                        self._note("fixed", "annotations", int(i), "invalid geometry repaired with buffer(0)")
                    df.at[i, "geometry"] = fixed
        bad = df["geometry"].map(lambda g: g is None or _is_null(g) or not g.is_valid or g.is_empty)
        for i in df.index[bad]:
            self._note("removed", "annotations", int(i), "invalid geometry")
        return df[~bad]

    def fix_annotations(
        self,
        problems: list[dict[str, Any]],
        missing: bool = True,
        empty_geom: bool = True,
        invalid_geom: bool = True,
        try_fix_geoms: bool = True,
        rasterize: bool = False,
        copy_images: bool = False,
    ) -> list[dict[str, Any]]:
        """Remove flagged entries and write the repaired annotation file under ``output_path``.

        Args:
            problems: from :meth:`check_annotations` (and :meth:`check_images`).
            missing: GeoJSON: drop rows with a null/NaN ``image_filename`` or ``class_id``.
            empty_geom: GeoJSON: drop rows with a missing or empty geometry.
            invalid_geom: GeoJSON: drop invalid geometries (after the ``buffer(0)`` repair).
            try_fix_geoms: GeoJSON: repair invalid geometries with ``buffer(0)`` first.
            rasterize: GeoJSON: also rasterize the repaired file into masks.
            copy_images: copy the images still referenced into ``<output_path>/images``.

        Returns:
            The report: ``{"action": "removed"|"fixed", "err_obj", "index", "reason"}`` per change.
        """
        self.report = []
        out_fn = self.out_annotfn
        if self.isgeo:
            df = read_geojson(self.annotfn)
            flagged = sorted(
                {p["err_sbi"] for p in problems if p.get("err_obj") == "annotations" and p["err_sbi"] >= 0}
            )
            for i in flagged:
                codes = [p["err_code"] for p in problems if p.get("err_sbi") == i and p.get("err_obj") == "annotations"]
                self._note("removed", "annotations", int(i), ", ".join(codes))
            df = df.drop(index=[i for i in flagged if i in df.index])
            if missing:
                df = self._rm_geo_nan(df)
            if empty_geom:
                df = self._rm_geo_empty(df)
            if invalid_geom:
                df = self._rm_geo_invalid(df, try_fix_geoms)
            write_geojson(df.reset_index(drop=True), out_fn)
            names = sorted({str(n) for n in df.get("image_filename", [])})
        else:
            gt = self._load_coco()
            for obj in ("images", "annotations", "categories"):
                idxs = sorted({p["err_sbi"] for p in problems if p.get("err_obj") == obj and p["err_sbi"] >= 0})
                for i in idxs:
                    codes = [p["err_code"] for p in problems if p.get("err_obj") == obj and p["err_sbi"] == i]
                    self._note("removed", obj, int(i), ", ".join(codes))
                clean_list(gt[obj], idxs)
            img_ids = {im.get("id") for im in gt["images"]}
            kept = []
            for i, an in enumerate(gt["annotations"]):
                if isinstance(an, dict) and an.get("image_id") in img_ids:
                    kept.append(an)
                else:
                    self._note("removed", "annotations", i, "image_id refers to no remaining image")
            gt["annotations"] = kept
            atomic_write_text(out_fn, dumps_json(gt))
            names = [str(im.get("file_name", "")) for im in gt["images"]]
        if copy_images:
            for name in names:
                src = os.path.join(self.ds_wrapper.data_input, name)
                if os.path.isfile(src):
                    shutil.copy2(src, os.path.join(self.output_img_path, name))
        if rasterize and self.isgeo:
            Rasterize(out_fn, data_input=self.output_img_path if copy_images else self.ds_wrapper.data_input)
        atomic_write_text(os.path.join(self.output_path, "sanity_report.json"), dumps_json(self.report, indent=2))
        for item in self.report:
            logger.info("sanity %s %s[%s]: %s", item["action"], item["err_obj"], item["index"], item["reason"])
        return self.report

    def autofix(
        self, missing: bool = True, empty_geom: bool = True, invalid_geom: bool = True, try_fix_geoms: bool = True
    ) -> list[dict[str, Any]]:
        """:meth:`check_annotations` then :meth:`fix_annotations`; returns the report."""
        return self.fix_annotations(
            self.check_annotations(),
            missing=missing,
            empty_geom=empty_geom,
            invalid_geom=invalid_geom,
            try_fix_geoms=try_fix_geoms,
        )
