r"""Prophesee DAT files of CD events: memory-mapped reader with time seeking, and a writer.

Layout (little-endian): latin-1 header lines ``% key value\\n``, then two bytes (event type, event size), then 8-byte
records ``uint32 t`` + ``uint32 word`` with x = bits 0-13, y = bits 14-27 and p = bit 28 of the word. Timestamps
wrap after 2**32 us; the reader unwraps them (it adds 2**32 at each decrease larger than 2**31).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from opsin.core import temp_sibling
from opsin.eventflow._events import EVENT_CD, as_event_cd
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io._h5util import AtomicStreamWriter
from opsin.eventflow.io._reader import EventReader

__all__ = ["EV_TYPE_2D", "EV_TYPE_CD", "DatReader", "DatWriter", "parse_dat_header", "read_dat", "write_dat"]

EV_TYPE_2D = 0
EV_TYPE_CD = 12
_KNOWN_TYPES = {0: "Event2D", 12: "EventCD", 14: "ExtTrigger", 40: "OpticalFlow"}
_RECORD = np.dtype([("t", "<u4"), ("w", "<u4")])
_RECORD_SIZE = 8
_WRAP = 1 << 32
_HALF = 1 << 31
_MAX_SIZE = 1 << 14  # x and y are 14-bit fields
_SCAN_BLOCK = 1 << 20
_DECODE_BLOCK = 1 << 16  # records per vectorised step: the temporaries stay in the L2 cache


def parse_dat_header(path: str | Path) -> tuple[dict[str, str], int, int]:
    """Parses the header of a DAT file.

    Args:
        path: the DAT file.

    Returns:
        ``(header, ev_type, data_offset)``: the header lines as a dict (``"Height" -> "480"``; the first line is kept
        under ``"_title"``), the event type byte, and the byte offset of the first record.

    Raises:
        FormatError: the event type is not a CD type, the event size is not 8, or the file ends inside the header.
    """
    header: dict[str, str] = {}
    offset = 0
    n_lines = 0
    with open(path, "rb") as fh:
        while True:
            first = fh.peek(1)[:1] if hasattr(fh, "peek") else b""
            if first != b"%":
                break
            line = fh.readline()
            if not line.endswith(b"\n"):
                raise FormatError(path, offset, "header line without a line end (truncated header)")
            text = line[1:].decode("latin-1").strip()
            key, _, value = text.partition(" ")
            if n_lines == 0 and key not in ("Height", "Width", "Version", "Date"):
                header["_title"] = text
            elif key:
                header[key] = value.strip()
            offset += len(line)
            n_lines += 1
        if n_lines == 0:
            return header, EV_TYPE_2D, 0
        pair = fh.read(2)
    if len(pair) < 2:
        raise FormatError(path, offset, "file ends before the event type and size bytes")
    ev_type, ev_size = pair[0], pair[1]
    if ev_type not in (EV_TYPE_2D, EV_TYPE_CD):
        name = _KNOWN_TYPES.get(ev_type, "unknown")
        raise FormatError(path, offset, f"event type {ev_type} ({name}) is not a CD type (0 or 12)")
    if ev_size != 8:
        raise FormatError(path, offset + 1, f"event size {ev_size} is not 8 bytes")
    return header, ev_type, offset + 2


def _declared_size(path: Path, header: dict[str, str], key: str) -> int:
    """The header's Height or Width, or -1 when absent; refuses values a 14-bit coordinate cannot address."""
    if key not in header:
        return -1
    value = header[key]
    if not value.isdigit() or not 0 < int(value) <= _MAX_SIZE:
        raise FormatError(path, 0, f"header line '% {key} {value}' is not a sensor size in 1..{_MAX_SIZE}")
    return int(value)


def _decode_records(records: np.ndarray, out: np.ndarray, loops: int = 0) -> None:
    """Decodes DAT records into :data:`EVENT_CD` events, unwrapping timestamps on the way.

    Args:
        records: ``(n, 2)`` uint32 array of (t, word) records.
        out: ``n`` :data:`EVENT_CD` events, written in place (every byte, padding included).
        loops: wraps of the 32-bit clock before the first record; a decrease of more than 2**31 us between two
            records of ``records`` adds one.
    """
    n = records.shape[0]
    # The event record seen as uint32 columns: x | y << 16, then p (its padding is zeroed), then t as one int64.
    o32 = out.view(np.uint32).reshape(n, 4)
    o64 = out.view(np.int64).reshape(n, 2)
    block = min(n, _DECODE_BLOCK)
    tmp_a = np.empty(block, np.uint32)
    tmp_b = np.empty(block, np.uint32)
    previous = -1
    for a in range(0, n, _DECODE_BLOCK):
        b = min(a + _DECODE_BLOCK, n)
        w = records[a:b, 1]
        ta, tb = tmp_a[: b - a], tmp_b[: b - a]
        np.bitwise_and(w, 0x3FFF, out=ta)
        np.left_shift(w, 2, out=tb)  # y (bits 14-27) moves to bits 16-29
        np.bitwise_and(tb, 0x3FFF0000, out=tb)
        np.bitwise_or(ta, tb, out=o32[a:b, 0])
        np.right_shift(w, 28, out=ta)
        np.bitwise_and(ta, 1, out=o32[a:b, 1])
        stamps = records[a:b, 0]
        t = o64[a:b, 1]
        np.copyto(t, stamps, casting="safe")
        down = np.flatnonzero(np.less(stamps[1:], stamps[:-1])) + 1
        wraps = [int(i) for i in down[t[down - 1] - t[down] > _HALF]] if down.size else []
        if previous - int(stamps[0]) > _HALF:
            wraps.insert(0, 0)
        previous = int(stamps[-1])
        if loops:
            t += loops * _WRAP
        for i in wraps:
            t[i:] += _WRAP
            loops += 1


class DatReader(EventReader):
    """Memory-mapped reader of a DAT file of CD events, with unwrapped 64-bit timestamps.

    Args:
        path: the ``*_td.dat`` / ``*_cd.dat`` file.

    Attributes:
        header: the parsed header lines.
        ev_type: 0 (Event2D) or 12 (EventCD).
        data_offset: byte offset of the first record.

    Raises:
        FormatError: unknown event type, wrong record size, a sensor size out of range, a body that is not a
            whole number of records, or a file without a header whose records are not events (e.g. a text file).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        header, ev_type, data_offset = parse_dat_header(path)
        height = _declared_size(path, header, "Height")
        width = _declared_size(path, header, "Width")
        size = path.stat().st_size
        body = size - data_offset
        remainder = body % _RECORD_SIZE
        if remainder:
            bad = data_offset + body - remainder
            message = f"truncated record: {remainder} trailing bytes after {body // 8} whole 8-byte records"
            raise FormatError(path, bad, message)
        count = body // _RECORD_SIZE
        self.header = header
        self.ev_type = ev_type
        self.data_offset = data_offset
        self._n = count
        self._rec = self._map(path, data_offset, count)
        self._tcol = self._rec[:, 0]
        self._wraps: tuple[list[int], int] | None = None  # found on the first seek: a full read does not need it
        if not header:
            self._check_headerless(path)
        if height < 0 or width < 0:
            max_x, max_y = self._max_coords()
            height = height if height >= 0 else max_y + 1
            width = width if width >= 0 else max_x + 1
        super().__init__(path, height, width)

    @staticmethod
    def _map(path: Path, offset: int, count: int) -> np.ndarray:
        if not count:
            return np.zeros((0, 2), np.uint32)
        # A plain ndarray view of the map: ufuncs on np.memmap slices pay for the subclass on every call.
        return np.memmap(path, dtype="<u4", mode="r", offset=offset, shape=(count, 2)).view(np.ndarray)

    @property
    def _seg_starts(self) -> list[int]:
        if self._wraps is None:
            self._wraps = self._find_wraps()
        return self._wraps[0]

    def _find_wraps(self) -> tuple[list[int], int]:
        """Segment starts (a decrease of more than 2**31 us is a wrap) and the first other decrease (-1 if none)."""
        starts = [0]
        first_unsorted = -1
        t = self._tcol
        for a in range(1, self._n, _SCAN_BLOCK):
            b = min(a + _SCAN_BLOCK, self._n)
            down = np.flatnonzero(np.less(t[a:b], t[a - 1 : b - 1])) + a
            if not down.size:
                continue
            drop = t[down - 1].astype(np.int64) - t[down]
            starts.extend(int(i) for i in down[drop > _HALF])
            if first_unsorted < 0 and (drop <= _HALF).any():
                first_unsorted = int(down[drop <= _HALF][0])
        return starts, first_unsorted

    def _check_headerless(self, path: Path) -> None:
        # Without a header any bytes parse as records: refuse what no camera writes (unused high bits, time
        # going backwards), so that e.g. a text file fails here instead of as a 16000-pixel-wide sensor.
        for a in range(0, self._n, _SCAN_BLOCK):
            spare = np.flatnonzero(self._rec[a : a + _SCAN_BLOCK, 1] >> 29)
            if spare.size:
                i = a + int(spare[0])
                reason = f"not a DAT file: no '%' header and record {i} sets the unused bits 29-31"
                raise FormatError(path, 8 * i + 4, reason)
        self._wraps = self._find_wraps()
        if self._wraps[1] >= 0:
            i = self._wraps[1]
            reason = f"not a DAT file: no '%' header and time goes backwards at record {i}"
            raise FormatError(path, 8 * i, reason)

    def _max_coords(self) -> tuple[int, int]:
        max_x = max_y = 0
        for a in range(0, self._n, _SCAN_BLOCK):
            w = self._rec[a : a + _SCAN_BLOCK, 1]
            max_x = max(max_x, int((w & 0x3FFF).max()))
            max_y = max(max_y, int((w & 0x0FFFC000).max()) >> 14)
        return max_x, max_y

    def _count(self) -> int:
        return self._n

    def _segment(self, index: int) -> int:
        return bisect.bisect_right(self._seg_starts, index) - 1

    def _time_at(self, index: int) -> int:
        return int(self._tcol[index]) + self._segment(index) * _WRAP

    def _search(self, ts: int) -> int:
        starts = [*self._seg_starts, self._n]
        for k in range(len(starts) - 1):
            lo, hi = starts[k], starts[k + 1]
            if lo >= hi:
                continue
            local = ts - k * _WRAP
            if int(self._tcol[hi - 1]) >= local:
                if local <= int(self._tcol[lo]):
                    return lo
                return lo + int(np.searchsorted(self._tcol[lo:hi], local, side="left"))
        return self._n

    def _slice(self, start: int, stop: int) -> np.ndarray:
        stop = max(start, stop)
        out = np.empty(stop - start, dtype=EVENT_CD)
        loops = self._segment(start) if start else 0
        _decode_records(self._rec[start:stop], out, loops)
        return out

    def close(self) -> None:
        """Drops the memory map."""
        self._rec = np.zeros((0, 2), np.uint32)
        self._tcol = self._rec[:, 0]
        self._n = 0
        self._wraps = ([0], -1)


def read_dat(path: str | Path, start_ts: int | None = None, end_ts: int | None = None) -> np.ndarray:
    """Reads the events of a DAT file, optionally those of ``[start_ts, end_ts)`` only.

    Args:
        path: the DAT file.
        start_ts: first timestamp kept (us), or None for the beginning.
        end_ts: first timestamp excluded (us), or None for the end.

    Returns:
        :data:`EVENT_CD` events with unwrapped timestamps.
    """
    with DatReader(path) as reader:
        return reader.read_range(start_ts, end_ts)


def _format_date(date: _dt.datetime | str | None) -> str:
    if date is None:
        return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(date, str):
        return date
    return date.strftime("%Y-%m-%d %H:%M:%S")


class DatWriter(AtomicStreamWriter):
    """Streams CD events into a DAT file, written atomically (temporary file renamed on :meth:`close`).

    Args:
        path: the output file.
        height: sensor height written in the header.
        width: sensor width written in the header.
        ev_type: 0 (Event2D) or 12 (EventCD).
        date: the header's date (UTC now by default; pin it for byte-identical files).
        wrap: if True, timestamps >= 2**32 are stored modulo 2**32 as a camera does (consecutive events must then be
            less than 2**31 us apart); if False (default) they are refused.

    Raises:
        ConfigError: unsupported event type.
    """

    def __init__(
        self,
        path: str | Path,
        height: int,
        width: int,
        ev_type: int = EV_TYPE_2D,
        date: _dt.datetime | str | None = None,
        wrap: bool = False,
    ) -> None:
        if ev_type not in (EV_TYPE_2D, EV_TYPE_CD):
            message = f"DAT ev_type must be 0 (Event2D) or 12 (EventCD), got {ev_type}"
            raise ConfigError(message)
        self.path = Path(path)
        self.height = int(height)
        self.width = int(width)
        self.wrap = wrap
        self._last_t = 0
        self._count = 0
        self._tmp = temp_sibling(self.path)
        self._fh: BinaryIO | None = open(self._tmp, "wb")  # noqa: SIM115 - closed by close()
        kind = "Event2D" if ev_type == EV_TYPE_2D else "EventCD"
        lines = [
            f"% Data file containing {kind} events.",
            "% Version 2",
            f"% Date {_format_date(date)}",
            f"% Height {self.height}",
            f"% Width {self.width}",
        ]
        self._fh.write(("\n".join(lines) + "\n").encode("latin-1"))
        self._fh.write(bytes([ev_type, 8]))

    def write(self, events: np.ndarray) -> None:
        """Appends events (sorted by t, continuing after the previous call); the input is not modified.

        Raises:
            ConfigError: unsorted or negative timestamps, out-of-range coordinates or timestamps.
        """
        if self._fh is None:
            message = f"{self.path}: DatWriter is closed"
            raise ConfigError(message)
        ev = as_event_cd(events)
        if ev.size == 0:
            return
        t = ev["t"].astype(np.int64)
        steps = np.diff(t, prepend=np.int64(self._last_t))
        if (steps < 0).any() or t[0] < 0:
            i = int(np.flatnonzero(steps < 0)[0]) if (steps < 0).any() else 0
            message = f"{self.path}: events must be sorted with t >= 0 (event {self._count + i} has t={t[i]})"
            raise ConfigError(message)
        if not self.wrap and t[-1] >= _WRAP:
            message = f"{self.path}: t={t[-1]} does not fit 32 bits (pass wrap=True to store it modulo 2**32)"
            raise ConfigError(message)
        if self.wrap:
            stored = t & 0xFFFFFFFF
            prev = np.concatenate([[self._last_t & 0xFFFFFFFF], stored[:-1]])
            d = stored - prev
            recovered = np.where(d < -_HALF, d + _WRAP, d)
            first_ok = self._count > 0 or t[0] < _WRAP
            if not first_ok or (recovered != steps).any():
                message = (
                    f"{self.path}: timestamps must start below 2**32 and advance by less than 2**31 us "
                    "between events to be unwrapped on reading"
                )
                raise ConfigError(message)
        if int(ev["x"].max()) >= 1 << 14 or int(ev["y"].max()) >= 1 << 14:
            message = f"{self.path}: coordinates must be < 16384 to fit the 14-bit DAT fields"
            raise ConfigError(message)
        rec = np.empty(ev.shape[0], dtype=_RECORD)
        rec["t"] = (t & 0xFFFFFFFF).astype(np.uint32)
        word = ev["x"].astype(np.uint32) | (ev["y"].astype(np.uint32) << 14) | (ev["p"].astype(np.uint32) << 28)
        rec["w"] = word
        self._fh.write(rec.tobytes())
        self._last_t = int(t[-1])
        self._count += int(ev.shape[0])

    def _flush(self) -> None:
        """Flush and fsync, so the renamed file is complete on disk."""
        assert self._fh is not None  # close() only flushes an open handle
        self._fh.flush()
        os.fsync(self._fh.fileno())


def write_dat(
    path: str | Path,
    events: np.ndarray,
    height: int,
    width: int,
    ev_type: int = EV_TYPE_2D,
    date: _dt.datetime | str | None = None,
    wrap: bool = False,
) -> Path:
    """Writes CD events to a DAT file atomically; see :class:`DatWriter` for the arguments.

    Returns:
        The path written.
    """
    with DatWriter(path, height, width, ev_type=ev_type, date=date, wrap=wrap) as writer:
        writer.write(events)
    return Path(path)
