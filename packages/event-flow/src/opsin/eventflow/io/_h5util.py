"""Small helpers around h5py: opening with typed errors and atomic creation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import h5py

from opsin.core import atomic_path
from opsin.eventflow.errors import FormatError

__all__ = ["atomic_h5", "create_group", "open_h5"]


def create_group(parent: h5py.Group, name: str) -> h5py.Group:
    """Creates a group without modification times, so that identical content gives identical bytes."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def open_h5(path: str | Path) -> h5py.File:
    """Opens an HDF5 file for reading, turning h5py's errors into :class:`FormatError`."""
    path = Path(path)
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as exc:
        size = path.stat().st_size if path.exists() else 0
        message = f"not a readable HDF5 file ({size} bytes; truncated or corrupt: {exc})"
        raise FormatError(path, None, message) from exc


@contextlib.contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """Creates an HDF5 file in a temporary sibling and renames it onto ``path`` when the block succeeds."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        yield fh
