"""HDF5 event files: ``/CD/events`` (x, y, p, t compound sorted by t) with a ``/CD/indexes`` time index.

``/CD/indexes`` entry k is (first event index with t >= k * 2000 us, k * 2000); there are floor(t_last / 2000) + 2
entries. Files written by Prophesee tools use the same names but compress events with the ECF filter plugin; the
reader opens both and rebuilds the index itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opsin.eventflow._events import EVENT_CD, EXT_TRIGGER, as_event_cd
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io._h5util import atomic_h5, create_group, open_h5
from opsin.eventflow.io._reader import EventReader

__all__ = ["INDEX_DT_US", "H5EventsReader", "read_h5_events", "write_h5_events"]

INDEX_DT_US = 2000
_INDEX = np.dtype([("id", "<u8"), ("ts", "<i8")])
_READ_BLOCK = 1 << 20


def _generator() -> str:
    from opsin.eventflow import __version__

    return f"opsin-event-flow {__version__}"


def write_h5_events(
    path: str | Path, events: np.ndarray, height: int, width: int, ext_trigger: np.ndarray | None = None
) -> Path:
    """Writes events to an HDF5 event file atomically.

    Args:
        path: the output ``.h5`` file.
        events: events sorted by t (any x, y, p, t structured array; never modified).
        height: sensor height (root attribute ``geometry`` = "WxH").
        width: sensor width.
        ext_trigger: optional trigger events (p, t, id) stored under ``/EXT_TRIGGER/events``.

    Returns:
        The path written.

    Raises:
        ConfigError: unsorted or negative timestamps.
    """
    ev = np.zeros(len(events), dtype=EVENT_CD)  # zeroed padding bytes: identical events give identical files
    ev[:] = as_event_cd(events)
    t = ev["t"]
    if ev.size and (t[0] < 0 or (np.diff(t) < 0).any()):
        message = f"{path}: events must be sorted by t with t >= 0"
        raise ConfigError(message)
    t_last = int(t[-1]) if ev.size else 0
    k = t_last // INDEX_DT_US + 2
    index = np.empty(k, dtype=_INDEX)
    index["ts"] = np.arange(k, dtype=np.int64) * INDEX_DT_US
    index["id"] = np.searchsorted(t, index["ts"], side="left")
    with atomic_h5(path) as fh:
        fh.attrs["geometry"] = f"{int(width)}x{int(height)}"
        fh.attrs["version"] = "1.0"
        fh.attrs["generator"] = _generator()
        grp = create_group(fh, "CD")
        grp.create_dataset(
            "events", data=ev, chunks=(16384,), maxshape=(None,), compression="gzip", compression_opts=4, shuffle=True
        )
        grp.create_dataset("indexes", data=index)
        if ext_trigger is not None:
            trig = np.asarray(ext_trigger).astype(EXT_TRIGGER)
            create_group(fh, "EXT_TRIGGER").create_dataset("events", data=trig, maxshape=(None,))
    return Path(path)


class H5EventsReader(EventReader):
    """Reader of HDF5 event files (ours or Prophesee's), seeking through a searchsorted time index.

    Args:
        path: the ``.h5`` / ``.hdf5`` file with ``/CD/events``.

    Raises:
        FormatError: not an HDF5 file, no ``/CD/events``, or data h5py cannot decode (e.g. the ECF plugin is missing).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self._fh = open_h5(path)
        if "CD" not in self._fh or "events" not in self._fh["CD"]:
            self._fh.close()
            raise FormatError(path, None, "no /CD/events dataset: not an HDF5 event file")
        self._ds = self._fh["CD"]["events"]
        names = self._ds.dtype.names or ()
        if not {"x", "y", "p", "t"} <= set(names):
            self._fh.close()
            raise FormatError(path, None, f"/CD/events has fields {names}, expected x, y, p, t")
        self._n = int(self._ds.shape[0])
        geometry = self._fh.attrs.get("geometry", "")
        if isinstance(geometry, bytes):
            geometry = geometry.decode()
        height = width = -1
        if geometry and "x" in str(geometry):
            w_s, h_s = str(geometry).lower().split("x")[:2]
            width, height = int(w_s), int(h_s)
        self._index_ts, self._index_id = self._build_index(path)
        if height < 0 or width < 0:
            ev = self._slice(0, self._n)
            height = int(ev["y"].max()) + 1 if ev.size else 0
            width = int(ev["x"].max()) + 1 if ev.size else 0
        super().__init__(path, height, width)

    def _read_t(self, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(self._ds.fields("t")[start:stop], dtype=np.int64)
        except OSError as exc:
            message = f"h5py cannot decode /CD/events (compressed with a filter that is not installed, e.g. ECF: {exc})"
            raise FormatError(self.path if hasattr(self, "path") else "?", None, message) from exc

    def _build_index(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        self.path = path
        ts_list = []
        for a in range(0, self._n, _READ_BLOCK):
            ts_list.append(self._read_t(a, min(a + _READ_BLOCK, self._n)))
        t = np.concatenate(ts_list) if ts_list else np.zeros(0, np.int64)
        if t.size > 1 and (np.diff(t) < 0).any():
            i = int(np.flatnonzero(np.diff(t) < 0)[0]) + 1
            raise FormatError(path, None, f"/CD/events is not sorted by t (event {i})")
        k = (int(t[-1]) if t.size else 0) // INDEX_DT_US + 2
        ts = np.arange(k, dtype=np.int64) * INDEX_DT_US
        return ts, np.searchsorted(t, ts, side="left").astype(np.int64)

    def _count(self) -> int:
        return self._n

    def _time_at(self, index: int) -> int:
        return int(self._read_t(index, index + 1)[0])

    def _search(self, ts: int) -> int:
        if ts <= 0:
            return 0
        k = ts // INDEX_DT_US
        if k + 1 >= self._index_ts.size:
            return self._n
        lo, hi = int(self._index_id[k]), int(self._index_id[k + 1])
        return lo + int(np.searchsorted(self._read_t(lo, hi), ts, side="left"))

    def _slice(self, start: int, stop: int) -> np.ndarray:
        stop = max(start, stop)
        try:
            raw = self._ds[start:stop]
        except OSError as exc:
            message = f"h5py cannot decode /CD/events (compressed with a filter that is not installed, e.g. ECF: {exc})"
            raise FormatError(self.path, None, message) from exc
        return as_event_cd(raw).astype(EVENT_CD, copy=False)

    def close(self) -> None:
        """Closes the HDF5 file."""
        self._fh.close()


def read_h5_events(path: str | Path, start_ts: int | None = None, end_ts: int | None = None) -> np.ndarray:
    """Reads the events of an HDF5 event file, optionally only those of ``[start_ts, end_ts)``."""
    with H5EventsReader(path) as reader:
        return reader.read_range(start_ts, end_ts)
