"""Small I/O helpers: HDF5 opening with typed errors, atomic HDF5 creation, and atomic streaming writers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import h5py

from opsin.core import atomic_path, commit_temp_file
from opsin.eventflow.errors import FormatError

__all__ = ["AtomicStreamWriter", "atomic_h5", "create_group", "open_h5"]


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


class AtomicStreamWriter:
    """Base of writers that stream into a temporary sibling of ``path`` and rename it into place when closed.

    Subclasses open ``self._fh`` on ``self._tmp`` (from :func:`opsin.core.temp_sibling`) and may override
    :meth:`_flush` to push their data to disk before the rename. Leaving a ``with`` block through an exception
    aborts: ``path`` keeps its old content (or stays absent).
    """

    path: Path
    _tmp: Path
    _fh: Any

    def _flush(self) -> None:
        """Make the handle's data durable before it is closed (default: nothing beyond ``close()``)."""

    def close(self) -> None:
        """Finish the file and rename it onto ``path``."""
        if self._fh is None:
            return
        self._flush()
        self._fh.close()
        self._fh = None
        commit_temp_file(self._tmp, self.path)

    def abort(self) -> None:
        """Discard the temporary file; nothing is written to ``path``."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
