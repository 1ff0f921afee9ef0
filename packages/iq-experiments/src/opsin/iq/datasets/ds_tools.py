"""Dataset-folder conventions: finding the image folder, annotation files and masks, listing images.

A dataset is a folder holding exactly one image sub-folder and optionally one COCO ``*.json``, one ``*.geojson``
and a ``<images>_mask/`` folder. Folders that are hidden, end in ``_mask`` or contain ``stats`` are never image
folders.
"""

from __future__ import annotations

import hashlib
import json
import os

from opsin.core import get_logger
from opsin.iq.errors import DSLayoutError
from opsin.iq.io import IMAGE_EXTENSIONS

__all__ = [
    "dataset_fingerprint",
    "find_annotation_file",
    "find_image_folder",
    "format_param_value",
    "image_folder_candidates",
    "is_image_file",
    "list_images",
]

logger = get_logger(__name__)


def is_image_file(name: str) -> bool:
    """Tell whether a file name has one of the recognised image extensions (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def image_folder_candidates(data_path: str) -> list[str]:
    """Sub-folders of ``data_path`` that may be its image folder (not hidden, not ``*_mask``, not ``*stats*``)."""
    names = []
    for entry in sorted(os.listdir(data_path)):
        if entry.startswith(".") or entry.endswith("_mask") or "stats" in entry:
            continue
        if os.path.isdir(os.path.join(data_path, entry)):
            names.append(entry)
    return names


def find_image_folder(data_path: str) -> str:
    """Return the dataset's single image folder (joined to ``data_path`` as given).

    Args:
        data_path: the dataset folder.

    Returns:
        ``os.path.join(data_path, <folder>)``.

    Raises:
        DSLayoutError: no candidate folder, or several.
    """
    names = image_folder_candidates(data_path)
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        msg = (
            f"dataset {data_path}: expected exactly one image sub-folder (not hidden, not '*_mask', not '*stats*'), "
            f"found {found}; pass data_input= to choose one"
        )
        raise DSLayoutError(msg)
    return os.path.join(data_path, names[0])


def _is_coco_file(path: str) -> bool:
    """Tell whether a JSON file holds a COCO object (``images`` and ``annotations`` at the top level)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "images" in data and "annotations" in data


def find_annotation_file(data_path: str, ext: str) -> str | None:
    """Return the only ``*<ext>`` file at the top of ``data_path``, or None when there is none.

    When several ``*.json`` files sit there, the one that is a COCO object wins, so dataset folders that carry
    sidecar metadata (a synth service job folder holds ``job.json`` and ``timing.json`` beside
    ``annotations.json``) stay valid datasets.

    Args:
        data_path: the dataset folder.
        ext: ``".json"`` or ``".geojson"``.

    Returns:
        The path joined to ``data_path``, or None.

    Raises:
        DSLayoutError: several files match.
    """
    names = [
        n
        for n in sorted(os.listdir(data_path))
        if not n.startswith(".") and n.lower().endswith(ext) and os.path.isfile(os.path.join(data_path, n))
    ]
    if len(names) > 1 and ext == ".json":
        coco = [n for n in names if _is_coco_file(os.path.join(data_path, n))]
        if len(coco) == 1:
            return os.path.join(data_path, coco[0])
    if len(names) > 1:
        msg = f"dataset {data_path}: found several {ext} annotation files ({', '.join(names)}); pass one explicitly"
        raise DSLayoutError(msg)
    return os.path.join(data_path, names[0]) if names else None


def list_images(folder: str, *, warn: bool = True) -> list[str]:
    """List the image file names of a folder, sorted; other files are skipped with a warning.

    Args:
        folder: the image folder.
        warn: log a warning per skipped file.

    Returns:
        Sorted file names (not paths).
    """
    names = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or name.startswith("."):
            continue
        if is_image_file(name):
            names.append(name)
        elif warn:
            logger.warning("skipping %s: not an image file (%s)", path, ", ".join(IMAGE_EXTENSIONS))
    return names


def dataset_fingerprint(paths: list[str], root: str) -> str:
    """SHA-256 over the sorted relative paths, sizes and modification times of files (folders are walked).

    Args:
        paths: files and folders to include (missing ones are ignored).
        root: paths are made relative to this folder.

    Returns:
        The hex digest.
    """
    entries: list[tuple[str, int, int]] = []
    for p in paths:
        if not p or not os.path.exists(p):
            continue
        files = [p]
        if os.path.isdir(p):
            files = [os.path.join(d, f) for d, _sub, fs in os.walk(p) for f in fs]
        for f in files:
            st = os.stat(f)
            entries.append((os.path.relpath(f, root).replace(os.sep, "/"), st.st_size, st.st_mtime_ns))
    entries.sort()
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def format_param_value(value: object) -> str:
    """Render a parameter value for a modifier name.

    Integers as ``str``; floats as ``repr(float(format(v, ".12g")))`` (``2.0`` -> ``"2.0"``, ``0.3*2`` -> ``"0.6"``);
    anything else with ``str``.
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(float(format(value, ".12g")))
    return str(value)
