"""What the vectorised RAW decoders share: the checked, memory-mapped body, a growable event buffer, time bases.

The decoders walk the body in blocks of words, carrying the decoder state (time base, wrap count, ...) from one
block to the next, and write each block's events straight into one :data:`EVENT_CD` array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opsin.eventflow._events import EVENT_CD
from opsin.eventflow.errors import FormatError
from opsin.eventflow.io._raw_header import RawHeader, parse_raw_header

__all__ = ["BLOCK_WORDS", "EventBuffer", "TimeBaseUnwrapper", "map_raw_body", "packed_columns"]

#: Words decoded per vectorised step: large enough to hide Python's per-call cost, small enough for the cache.
BLOCK_WORDS = 1 << 18
_MAX_SIZE = 1 << 11  # EVT 2.0 and 3.0 carry 11-bit coordinates


def map_raw_body(path: str | Path, evt: str, word_dtype: str) -> tuple[RawHeader, np.ndarray]:
    """Parses and checks the header of a RAW file, then maps its body as little-endian words.

    Args:
        path: the ``.raw`` file.
        evt: the format the caller decodes (``"2.0"`` or ``"3.0"``); a header declaring another one is refused.
        word_dtype: ``"<u4"`` (EVT 2.0) or ``"<u2"`` (EVT 3.0).

    Returns:
        ``(header, words)``; ``words`` is a read-only memory map (an empty array for an empty body).

    Raises:
        FormatError: another format in the header, a sensor size outside 1..2048, or a body that is not a whole
            number of words.
    """
    path = Path(path)
    size = path.stat().st_size
    data = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    header = parse_raw_header(path, data)
    if header.evt and header.evt != evt:
        raise FormatError(path, 0, f"header declares evt {header.evt}, not {evt}")
    declared = (header.height, header.width)
    if declared != (-1, -1) and not all(0 < v <= _MAX_SIZE for v in declared):
        reason = f"header declares a {header.width}x{header.height} sensor; EVT coordinates allow 1..{_MAX_SIZE}"
        raise FormatError(path, 0, reason)
    itemsize = np.dtype(word_dtype).itemsize
    body = size - header.data_offset
    if body % itemsize:
        bad = header.data_offset + body - body % itemsize
        extra = body % itemsize
        bits = 8 * itemsize
        raise FormatError(
            path, bad, f"truncated word: {extra} trailing bytes after {body // itemsize} {bits}-bit words"
        )
    count = body // itemsize
    if not count:
        return header, np.zeros(0, word_dtype)
    words = np.memmap(path, dtype=word_dtype, mode="r", offset=header.data_offset, shape=(count,))
    return header, words.view(np.ndarray)


def packed_columns(events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of an :data:`EVENT_CD` array that are written in three passes instead of four field assignments.

    Returns:
        ``(xy, p, t)``: uint32 ``x | y << 16``, uint32 ``p`` (the two padding bytes after p come with it, so writing
        it zeroes them), and int64 ``t``.
    """
    n = events.shape[0]
    as32 = events.view(np.uint32).reshape(n, 4)
    return as32[:, 0], as32[:, 1], events.view(np.int64).reshape(n, 2)[:, 1]


class EventBuffer:
    """A growable :data:`EVENT_CD` array filled block by block.

    Args:
        capacity: the initial number of events (an upper bound avoids any copy).
    """

    def __init__(self, capacity: int) -> None:
        self._array = np.empty(max(int(capacity), 0), dtype=EVENT_CD)
        self.size = 0

    def claim(self, n: int) -> np.ndarray:
        """The next ``n`` slots, to be written before the next call (growing the array when needed)."""
        end = self.size + n
        if end > self._array.shape[0]:
            bigger = np.empty(max(end, self._array.shape[0] * 3 // 2), dtype=EVENT_CD)
            bigger[: self.size] = self._array[: self.size]
            self._array = bigger
        out = self._array[self.size : end]
        self.size = end
        return out

    def result(self) -> np.ndarray:
        """The events written so far (the buffer is not used afterwards)."""
        array = self._array
        del self._array
        if array.shape[0] == self.size:
            return array
        try:
            # Shrinking in place gives the unused tail back without copying the events.
            array.resize(self.size, refcheck=True)
        except ValueError:  # still referenced somewhere: copy instead
            return array[: self.size].copy()
        return array


class TimeBaseUnwrapper:
    """Turns the successive time bases of a stream into monotonic microseconds, across blocks.

    A loop of the counter is counted when a base is below the previous one by at least ``threshold``.

    Args:
        period: the counter period in us.
        threshold: the drop that counts as a loop.
    """

    def __init__(self, period: int, threshold: int) -> None:
        self.period = period
        self.threshold = threshold
        self.previous = -1  # last raw base seen, -1 before the first
        self.loops = 0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Unwraps the raw bases (int64, in stream order) that follow those of earlier calls."""
        if not raw.size:
            return raw
        steps = np.diff(raw, prepend=raw[0] if self.previous < 0 else self.previous)
        loops = np.cumsum(steps <= -self.threshold) + self.loops
        self.previous = int(raw[-1])
        self.loops = int(loops[-1])
        return raw + loops * self.period
