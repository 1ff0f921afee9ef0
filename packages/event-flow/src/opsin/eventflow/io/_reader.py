"""A common streaming interface over event files: seek by time, then read by duration or by count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opsin.eventflow._events import EVENT_CD

__all__ = ["ArrayEventReader", "EventReader"]


class EventReader:
    """Streaming access to the events of one recording, sorted by time.

    Subclasses implement :meth:`_count`, :meth:`_time_at` (timestamp of event ``i``), :meth:`_slice` (events
    ``[i, j)`` as :data:`EVENT_CD`) and :meth:`_search` (first index with ``t >= ts``).

    Attributes:
        path: the file read.
        height: sensor height in pixels.
        width: sensor width in pixels.
    """

    def __init__(self, path: str | Path, height: int, width: int) -> None:
        self.path = Path(path)
        self.height = int(height)
        self.width = int(width)
        self._pos = 0
        self._current_time = 0

    # -- to implement -------------------------------------------------------------------------------------------
    def _count(self) -> int:
        raise NotImplementedError

    def _time_at(self, index: int) -> int:
        raise NotImplementedError

    def _slice(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def _search(self, ts: int) -> int:
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------------------------------
    @property
    def event_count(self) -> int:
        """Number of events in the file."""
        return self._count()

    @property
    def duration_us(self) -> int:
        """Timestamp of the last event in microseconds (0 for an empty file)."""
        n = self._count()
        return int(self._time_at(n - 1)) if n else 0

    @property
    def current_time(self) -> int:
        """The time the next :meth:`load_delta_t` starts from, in microseconds."""
        return self._current_time

    def done(self) -> bool:
        """Whether every event has been read."""
        return self._pos >= self._count()

    def reset(self) -> None:
        """Goes back to the first event and time 0."""
        self._pos = 0
        self._current_time = 0

    def seek_time(self, ts: int) -> None:
        """Positions the reader on the first event with ``t >= ts`` (binary search); the current time becomes ``ts``."""
        self._pos = self._search(int(ts))
        self._current_time = int(ts)

    def seek_event(self, index: int) -> None:
        """Positions the reader on event ``index``; the current time becomes that event's timestamp."""
        n = self._count()
        self._pos = max(0, min(int(index), n))
        self._current_time = int(self._time_at(self._pos)) if self._pos < n else self.duration_us

    def load_delta_t(self, delta_t: int) -> np.ndarray:
        """Returns the events of ``[current_time, current_time + delta_t)`` and advances the current time."""
        end_ts = self._current_time + int(delta_t)
        stop = self._search(end_ts)
        stop = max(stop, self._pos)
        out = self._slice(self._pos, stop)
        self._pos = stop
        self._current_time = end_ts
        return out

    def load_n_events(self, n: int) -> np.ndarray:
        """Returns the next ``n`` events (fewer at the end of the file) and advances past them."""
        stop = min(self._pos + int(n), self._count())
        out = self._slice(self._pos, stop)
        self._pos = stop
        if out.size:
            self._current_time = int(out["t"][-1]) + 1
        return out

    def load_all(self) -> np.ndarray:
        """Returns every event of the file (the position is left unchanged)."""
        return self._slice(0, self._count())

    def read_range(self, start_ts: int | None = None, end_ts: int | None = None) -> np.ndarray:
        """Returns the events of ``[start_ts, end_ts)`` (the position is left unchanged).

        Args:
            start_ts: first timestamp kept (us), or None for the beginning.
            end_ts: first timestamp excluded (us), or None for the end.
        """
        lo = self._search(int(start_ts)) if start_ts is not None else 0
        hi = self._search(int(end_ts)) if end_ts is not None else self._count()
        return self._slice(lo, max(lo, hi))

    def close(self) -> None:
        """Releases file handles (a no-op for in-memory readers)."""

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {self.width}x{self.height}, {self._count()} events)"


class ArrayEventReader(EventReader):
    """An :class:`EventReader` over events already decoded in memory (EVT 2.0 / EVT 3.0 files, tests).

    Args:
        path: the file the events came from (for messages).
        events: :data:`EVENT_CD` events sorted by t.
        height: sensor height.
        width: sensor width.
    """

    def __init__(self, path: str | Path, events: np.ndarray, height: int, width: int) -> None:
        super().__init__(path, height, width)
        self._events = events.astype(EVENT_CD, copy=False)
        self._t = np.ascontiguousarray(self._events["t"])

    def _count(self) -> int:
        return int(self._events.shape[0])

    def _time_at(self, index: int) -> int:
        return int(self._t[index])

    def _slice(self, start: int, stop: int) -> np.ndarray:
        return self._events[start:stop].copy()

    def _search(self, ts: int) -> int:
        return int(np.searchsorted(self._t, ts, side="left"))
