"""What the vectorised RAW decoders share: the checked body read by blocks, a growable event buffer, time bases.

The decoders walk the body in blocks of words, carrying the decoder state (time base, wrap count, ...) from one
block to the next, and write each block's events straight into one :data:`EVENT_CD` array.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from opsin.eventflow._events import EVENT_CD
from opsin.eventflow.errors import FormatError
from opsin.eventflow.io._raw_header import parse_raw_header

__all__ = ["EventBuffer", "RawBody", "TimeBaseUnwrapper", "packed_columns"]

_HEAD_BYTES = 1 << 16
_MAX_SIZE = 1 << 11  # EVT 2.0 and 3.0 carry 11-bit coordinates


class RawBody:
    """The checked header of a RAW file and its body, read block by block into one reused buffer.

    Reading into a reused buffer keeps memory bounded and costs no page faults per call, unlike a fresh map.

    Args:
        path: the ``.raw`` file.
        evt: the format the caller decodes (``"2.0"`` or ``"3.0"``); a header declaring another one is refused.
        word_dtype: ``"<u4"`` (EVT 2.0) or ``"<u2"`` (EVT 3.0).

    Attributes:
        header: the parsed header.
        count: the number of words in the body.

    Raises:
        FormatError: another format in the header, a sensor size outside 1..2048, or a body that is not a whole
            number of words.
    """

    def __init__(self, path: str | Path, evt: str, word_dtype: str) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(word_dtype)
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
        try:
            header = parse_raw_header(self.path, head)
        except FormatError:
            if size <= len(head):
                raise
            header = parse_raw_header(self.path, self.path.read_bytes())  # a header longer than usual
        if header.evt and header.evt != evt:
            raise FormatError(self.path, 0, f"header declares evt {header.evt}, not {evt}")
        declared = (header.height, header.width)
        if declared != (-1, -1) and not all(0 < v <= _MAX_SIZE for v in declared):
            reason = f"header declares a {header.width}x{header.height} sensor; EVT coordinates allow 1..{_MAX_SIZE}"
            raise FormatError(self.path, 0, reason)
        itemsize = self.dtype.itemsize
        body = size - header.data_offset
        if body % itemsize:
            bad = header.data_offset + body - body % itemsize
            words = f"{body // itemsize} {8 * itemsize}-bit words"
            reason = f"truncated word: {body % itemsize} trailing bytes after {words}"
            raise FormatError(self.path, bad, reason)
        self.header = header
        self.count = body // itemsize

    def blocks(self, block_words: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yields ``(first_word, words)`` for consecutive blocks; ``words`` is overwritten by the next block.

        Raises:
            FormatError: the file shrank while being read.
        """
        if not self.count:
            return
        buffer = np.empty(min(block_words, self.count), dtype=self.dtype)
        with open(self.path, "rb") as fh:
            fh.seek(self.header.data_offset)
            for first in range(0, self.count, block_words):
                words = buffer[: min(block_words, self.count - first)]
                if fh.readinto(words.data.cast("B")) != words.nbytes:
                    offset = self.header.data_offset + first * self.dtype.itemsize
                    raise FormatError(self.path, offset, "the file ended early (it changed while being read)")
                yield first, words


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
        """The events written so far (the buffer is not used afterwards).

        A nearly full buffer is returned as a view (keeping at most 1/8 unused); a shrink or copy would give the
        allocator memory back only for the next read to fault it in again.
        """
        array = self._array
        del self._array
        if self.size == array.shape[0]:
            return array
        if 8 * (array.shape[0] - self.size) <= array.shape[0]:
            return array[: self.size]
        return array[: self.size].copy()


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
        previous, self.previous = self.previous, int(raw[-1])
        drops = raw[1:] - raw[:-1] <= -self.threshold
        first_drop = previous >= 0 and previous - int(raw[0]) >= self.threshold
        if not first_drop and not drops.any():  # the usual case: no loop in this block
            return raw + self.loops * self.period if self.loops else raw
        loops = np.empty(raw.size, dtype=np.int64)
        loops[0] = self.loops + first_drop
        np.cumsum(drops, out=loops[1:])
        loops[1:] += loops[0]
        self.loops = int(loops[-1])
        return raw + loops * self.period
