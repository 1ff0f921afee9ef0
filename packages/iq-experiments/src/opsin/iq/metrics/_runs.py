"""Finding the images a metric should measure: a folder, or the training dataset of an experiment run."""

from __future__ import annotations

import os
import re
from typing import Any

from opsin.iq.datasets.ds_tools import find_image_folder, is_image_file
from opsin.iq.errors import DSNotFound

__all__ = ["image_files", "resolve_dataset_images"]


def image_files(path: str, ext: str = "tif") -> list[str]:
    """Sorted image files of ``path`` with extension ``ext`` (``"*"``: every image extension).

    ``path`` may be an image file, an image folder or a dataset folder (its single image folder is used).

    Raises:
        DSNotFound: the path does not exist.
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        msg = f"image folder {path} does not exist"
        raise DSNotFound(msg)
    names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)) and is_image_file(n))
    if not names:
        subdirs = [n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))]
        if subdirs:
            return image_files(find_image_folder(path), ext)
    wanted = ext.lower().lstrip(".")
    if wanted not in ("*", ""):
        names = [n for n in names if n.lower().rsplit(".", 1)[-1] == wanted]
    return [os.path.join(path, n) for n in names]


def resolve_dataset_images(experiment_info: Any, predictions: str, gt_path: str) -> str:
    """The training dataset of the run whose ``output_pred_path`` is ``predictions``.

    Uses the run's ``train_ds_path`` when an ``experiment_info`` with ``runs`` is given; falls back to
    ``dirname(dirname(gt_path))/<run name without _N>``.

    Raises:
        DSNotFound: no dataset can be found.
    """
    runs = getattr(experiment_info, "runs", None) or {}
    for run_name, run in runs.items():
        if run.get("output_pred_path") == predictions:
            path = run.get("train_ds_path")
            if path and os.path.isdir(path):
                return str(path)
            base = re.sub(r"_\d+$", "", str(run_name))
            fallback = os.path.join(os.path.dirname(os.path.dirname(gt_path)), base)
            if os.path.isdir(fallback):
                return fallback
    msg = f"no dataset found for predictions {predictions} (ground truth {gt_path})"
    raise DSNotFound(msg)
