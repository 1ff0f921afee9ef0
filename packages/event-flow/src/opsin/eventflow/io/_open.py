"""Dispatch of event files to their reader, by extension and header."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opsin.eventflow.errors import FormatError
from opsin.eventflow.io._raw_header import parse_raw_header
from opsin.eventflow.io._reader import ArrayEventReader, EventReader
from opsin.eventflow.io.dat import DatReader
from opsin.eventflow.io.evt2 import read_evt2
from opsin.eventflow.io.evt3 import read_evt3
from opsin.eventflow.io.h5_events import H5EventsReader

__all__ = ["EVENT_SUFFIXES", "is_event_file", "open_events", "read_raw"]

EVENT_SUFFIXES = (".dat", ".raw", ".h5", ".hdf5")


def read_raw(path: str | Path) -> tuple[np.ndarray, dict[str, object]]:
    """Decodes a RAW file as EVT 2.0 or EVT 3.0 according to its header (EVT 2.0 when it does not say)."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    header = parse_raw_header(path, head)
    if header.evt == "3.0":
        return read_evt3(path)
    if header.evt in ("2.0", ""):
        return read_evt2(path)
    raise FormatError(path, 0, f"RAW format evt {header.evt} is not supported (EVT 2.0 and 3.0 are)")


def is_event_file(path: str | Path) -> bool:
    """Whether ``path`` looks like an event recording (DAT, RAW, or HDF5 with ``/CD/events``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".dat", ".raw"):
        return True
    if suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as fh:
                return "CD" in fh and "events" in fh["CD"]
        except OSError:
            return False
    return False


def open_events(path: str | Path) -> EventReader:
    """Opens an event recording for streaming (seek by time, then read by duration or count).

    Args:
        path: a ``.dat`` file, a ``.raw`` file (EVT 2.0 or 3.0, decoded in memory) or an HDF5 event file.

    Returns:
        An :class:`~opsin.eventflow.io.EventReader`.

    Raises:
        FormatError: unknown extension, or a file its reader cannot decode.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        message = f"{path}: no such event file"
        raise FileNotFoundError(message)
    suffix = path.suffix.lower()
    if suffix == ".dat":
        return DatReader(path)
    if suffix == ".raw":
        events, meta = read_raw(path)
        return ArrayEventReader(path, events, int(meta["height"]), int(meta["width"]))  # type: ignore[call-overload]
    if suffix in (".h5", ".hdf5"):
        return H5EventsReader(path)
    raise FormatError(path, 0, f"unknown event file extension {suffix!r} (expected one of {EVENT_SUFFIXES})")
