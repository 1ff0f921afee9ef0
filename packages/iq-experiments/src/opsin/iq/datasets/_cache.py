"""Build-once storage of modified datasets: manifest, lock file and a fresh staging folder.

The finished staging folder is moved into place with :func:`opsin.core.replace_dir` (re-exported here).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

from opsin.core import atomic_write_text, dumps_json, replace_dir

__all__ = [
    "MANIFEST_NAME",
    "cache_disabled",
    "dataset_lock",
    "json_equal",
    "read_manifest",
    "replace_dir",
    "temp_sibling",
    "write_manifest",
]

#: Hidden manifest file written into every modified dataset.
MANIFEST_NAME = ".opsin-iq-modifier.json"


def cache_disabled() -> bool:
    """True when ``OPSIN_IQ_NO_CACHE`` is set to a true value."""
    return os.environ.get("OPSIN_IQ_NO_CACHE", "").strip().lower() in {"1", "true", "yes"}


def read_manifest(folder: str) -> dict[str, Any] | None:
    """Read a modified dataset's manifest, or None when absent or unreadable."""
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(folder: str, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically."""
    atomic_write_text(os.path.join(folder, MANIFEST_NAME), dumps_json(manifest, indent=2, sort_keys=True))


@contextlib.contextmanager
def dataset_lock(target: str) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a hidden ``.<name>.lock`` sibling) for the duration of a build."""
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    lock_path = os.path.join(parent, "." + os.path.basename(target) + ".lock")
    with open(lock_path, "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: single-process builds only
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def temp_sibling(target: str) -> str:
    """A fresh hidden temporary folder next to ``target``."""
    parent = os.path.dirname(os.path.abspath(target))
    path = os.path.join(parent, f".{os.path.basename(target)}.tmp-{uuid.uuid4().hex[:12]}")
    os.makedirs(path)
    return path


def json_equal(a: Any, b: Any) -> bool:
    """Compare two values after a JSON round trip (tuples vs lists, numpy scalars)."""
    return bool(json.loads(dumps_json(a, sort_keys=True)) == json.loads(dumps_json(b, sort_keys=True)))
