"""``DSWrapper``: a dataset folder and what was found in it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from opsin.iq.datasets.ds_tools import find_annotation_file, find_image_folder
from opsin.iq.errors import DSAnnotationsNotFoundError, DSNotFoundError

if TYPE_CHECKING:
    from opsin.iq.datasets._modifier_base import DSModifier

__all__ = ["DSWrapper"]


class DSWrapper:
    """A dataset: its folder, its image folder, its annotations and a parameter dict for experiment logging.

    Args:
        data_path: the dataset folder. When given, the image folder and the annotation files are discovered.
        data_input: the image folder (required without ``data_path``; chooses among several folders otherwise).
        json_annotations: a COCO json file; default: the only ``*.json`` in ``data_path``.
        geojson_annotations: a GeoJSON file; default: the only ``*.geojson`` in ``data_path``.
        mask_annotations_dir: a raster-mask folder; default ``<data_input>_mask`` when it exists.
        ds_modifier: the modifier that produced this dataset (its parameters are added to ``params``).

    Raises:
        DSNotFoundError: ``data_path`` or ``data_input`` does not exist.
        DSLayoutError: the image folder or an annotation file is ambiguous.
        DSAnnotationsNotFoundError: without ``data_path``, no annotation file exists.

    Attributes:
        data_path: the dataset folder (the image folder's parent when ``data_path`` was not given).
        data_input: the image folder.
        parent_folder: the folder that holds ``data_path``.
        json_annotations: the COCO json file, or ``None``.
        geojson_annotations: the GeoJSON file, or ``None``.
        mask_annotations_dir: the raster-mask folder, or ``""`` when there is none.
        ds_name: the dataset folder's name.
        params: the parameters logged for this dataset (``ds_name`` plus the modifier's).
        ds_modifier_applied: the modifier that produced this dataset, or ``None``.
    """

    def __init__(
        self,
        data_path: str = "",
        data_input: str = "",
        json_annotations: str = "",
        geojson_annotations: str = "",
        mask_annotations_dir: str = "",
        ds_modifier: DSModifier | None = None,
    ) -> None:
        data_path = os.fspath(data_path)
        data_input = os.fspath(data_input)
        if data_path:
            if not os.path.isdir(data_path):
                msg = f"dataset folder {data_path} does not exist"
                raise DSNotFoundError(msg)
            if not data_input:
                data_input = find_image_folder(data_path)
            elif not os.path.isdir(data_input):
                msg = f"image folder {data_input} does not exist"
                raise DSNotFoundError(msg)
            json_found = json_annotations or find_annotation_file(data_path, ".json")
            geojson_found = geojson_annotations or find_annotation_file(data_path, ".geojson")
        else:
            if not data_input or not os.path.isdir(data_input):
                msg = f"image folder {data_input or '(data_input not given)'} does not exist"
                raise DSNotFoundError(msg)
            json_ok = bool(json_annotations) and os.path.isfile(json_annotations)
            geojson_ok = bool(geojson_annotations) and os.path.isfile(geojson_annotations)
            if not (json_ok or geojson_ok):
                given = json_annotations or geojson_annotations or "(none given)"
                msg = (
                    f"dataset with images {data_input}: without data_path an existing json or geojson annotation "
                    f"file is required, got {given}"
                )
                raise DSAnnotationsNotFoundError(msg)
            data_path = os.path.dirname(data_input)
            json_found = json_annotations if json_ok else None
            geojson_found = geojson_annotations if geojson_ok else None
        self.data_path: str = data_path
        self.data_input: str = data_input
        self.parent_folder: str = os.path.dirname(data_path)
        self.json_annotations: str | None = json_found or None
        self.geojson_annotations: str | None = geojson_found or None
        if not mask_annotations_dir and os.path.isdir(data_input.rstrip("/\\") + "_mask"):
            mask_annotations_dir = data_input.rstrip("/\\") + "_mask"
        self.mask_annotations_dir: str = mask_annotations_dir
        self.ds_name: str = os.path.basename(os.path.normpath(data_path))
        self.params: dict[str, Any] = {"ds_name": self.ds_name}
        self.ds_modifier_applied = ds_modifier
        if ds_modifier is not None:
            self.params.update(ds_modifier.log_parameters())

    def __repr__(self) -> str:
        return f"DSWrapper(data_path={self.data_path!r}, data_input={self.data_input!r})"

    def log_parameters(self) -> dict[str, Any]:
        """Return a copy of the parameters logged for this dataset."""
        return dict(self.params)

    def set_log_parameters(self, parameters: dict[str, Any]) -> None:
        """Add or replace logged parameters."""
        self.params.update(parameters)

    def modify(self, ds_modifier: DSModifier) -> DSWrapper:
        """Apply a modifier and return the wrapper of the modified copy."""
        return ds_modifier.modify_ds_wrapper(self)

    def get_annotations(self) -> list[str]:
        """The annotation files present: json first, then geojson."""
        return [p for p in (self.json_annotations, self.geojson_annotations) if p]
