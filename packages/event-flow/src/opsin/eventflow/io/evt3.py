"""EVT 3.0 RAW files: vectorised reader.

Body: little-endian uint16 words, type = w >> 12. ADDR_Y (0x0): y = bits 0-10. ADDR_X (0x2): x = bits 0-10,
p = bit 11, one event. VECT_BASE_X (0x3): base_x = bits 0-10, p = bit 11. VECT_12 (0x4) / VECT_8 (0x5): one event
per set bit i of the low 12 / 8 bits at base_x + i, then base_x advances by 12 / 8. TIME_LOW (0x6): t = base + low
12 bits. TIME_HIGH (0x8): base = bits 0-11 << 12, t = base. EXT_TRIGGER (0xA): value = bit 0, id = bits 8-11.
CONTINUED (0x7, 0xF), IMU (0xD), OTHERS (0xE) and 0xB/0xC are skipped. Time wraps after 2**24 us.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from opsin.eventflow._events import EXT_TRIGGER
from opsin.eventflow.errors import FormatError
from opsin.eventflow.io._raw_body import EventBuffer, RawBody, TimeBaseUnwrapper

__all__ = ["read_evt3"]

#: Words per vectorised step: large enough to hide Python's per-call cost, small enough that the temporaries stay
#: in the cache and are reused by the allocator.
BLOCK_WORDS = 1 << 16

_PERIOD = 1 << 24
_LOOP_THRESHOLD = (_PERIOD - 4096) - 40960
_ADDR_Y, _ADDR_X, _VECT_BASE_X, _VECT_12, _VECT_8, _TIME_LOW, _TIME_HIGH, _EXT_TRIGGER = 0, 2, 3, 4, 5, 6, 8, 0xA
_TYPE_OK = np.ones(16, dtype=bool)
_TYPE_OK[[0x1, 0x9]] = False  # the only types EVT 3.0 leaves undefined
_EVENT_TYPES = np.uint8((1 << _ADDR_X) | (1 << _VECT_12) | (1 << _VECT_8))  # bit k set: type k emits events
_NO_ROW = np.uint32(0xFFFFFFFF)  # no ADDR_Y word seen yet
_NO_BASE_X = -(1 << 40)  # no VECT_BASE_X word seen yet (stays negative after any run of vectors)


def _forward_fill(mask: np.ndarray, values: np.ndarray, initial: object, dtype: type) -> np.ndarray:
    """``out[0] = initial``; ``out[j + 1]`` = the value of the last masked entry at or before ``j`` (else initial).

    ``values`` holds one value per True of ``mask``, in order.
    """
    seq: np.ndarray = np.empty(values.size + 1, dtype=dtype)
    seq[0] = initial
    seq[1:] = values
    rank = np.empty(mask.size + 1, dtype=np.intp)
    rank[0] = 0
    np.cumsum(mask, out=rank[1:])
    return seq[rank]


class _Evt3Decoder:
    """Decodes EVT 3.0 words block by block; the row, time, vector base and wrap count carry over.

    Within a block the words that emit events (ADDR_X, VECT_12, VECT_8) are set apart from the state words (every
    other type), and the state (row, time, vector base) is forward-filled over the state words only. The k-th
    event word, at position i, follows exactly i - k state words, which indexes its row and vector base without a
    per-word loop. The time changes only at TIME_LOW and TIME_HIGH words, so the time column is one np.repeat over
    those long segments. Vectors expand through np.unpackbits, in word order then bit order.
    """

    def __init__(self, path: Path, data_offset: int) -> None:
        self.path = path
        self.data_offset = data_offset
        self.unwrap = TimeBaseUnwrapper(_PERIOD, _LOOP_THRESHOLD)
        self.base = -1  # TIME_HIGH base in force, -1 before the first
        self.t = -1  # time in force, -1 before the first TIME_HIGH
        self.y = _NO_ROW
        self.base_x = _NO_BASE_X
        self.base_p = 0
        self.last_t = -1
        self.in_order = True
        self.triggers: list[np.ndarray] = []

    def _check_types(self, words: np.ndarray, other: np.ndarray, kinds: np.ndarray, first_word: int) -> None:
        bad = np.flatnonzero(~_TYPE_OK[kinds])
        if bad.size:
            i = int(other[bad[0]])
            word = int(words[i])
            message = f"word 0x{word:04x} has type 0x{word >> 12:x}, undefined in EVT 3.0 (corrupt data)"
            raise FormatError(self.path, self.data_offset + 2 * (first_word + i), message)

    def _triggers(self, kinds: np.ndarray, ow: np.ndarray, t_ext: np.ndarray) -> None:
        is_trig = kinds == _EXT_TRIGGER
        if is_trig.any():
            t_trig = t_ext[1:][is_trig]
            timed = t_trig >= 0
            tw = ow[is_trig][timed]
            trig = np.empty(tw.size, dtype=EXT_TRIGGER)
            trig["p"] = tw & 1
            trig["id"] = (tw >> 8) & 0xF
            trig["t"] = t_trig[timed]
            self.triggers.append(trig)

    def block(self, words: np.ndarray, first_word: int, buffer: EventBuffer) -> None:
        """Decodes ``words`` (the body from word ``first_word`` on) and appends its CD events to ``buffer``."""
        n = words.size
        types = (words >> 12).astype(np.uint8)  # (cheaper than shifting the strided high bytes)
        emits = (np.right_shift(_EVENT_TYPES, types) & 1).view(bool)
        ev = np.flatnonzero(emits)
        other = np.flatnonzero(~emits)
        kinds = types[other]
        self._check_types(words, other, kinds, first_word)
        ow = words[other]
        complete = self.t >= 0 and self.y != _NO_ROW

        # Index 0 of every *_ext array is the state at the block start, index j + 1 the state after state word j:
        # the state of run j + 1, the event words between state words j and j + 1.
        is_th = kinds == _TIME_HIGH
        bases = self.unwrap((ow[is_th] & 0xFFF).astype(np.int64) << 12)
        base_after = np.concatenate(([self.base], bases))[np.cumsum(is_th)]
        is_tl = kinds == _TIME_LOW
        t_value = base_after.copy()
        t_value[is_tl] += ow[is_tl] & 0xFFF
        t_value[base_after < 0] = -1  # no TIME_HIGH yet: no time
        defines_t = is_th | is_tl
        t_ext = _forward_fill(defines_t, t_value[defines_t], self.t, np.int64)
        started = base_after >= 0  # words before the first TIME_HIGH are dropped, state words included
        is_y = (kinds == _ADDR_Y) & started
        y_ext = _forward_fill(is_y, ow[is_y] & 0x7FF, self.y, np.uint32)
        self.base = int(base_after[-1]) if base_after.size else self.base
        self.t = int(t_ext[-1])
        self.y = y_ext[-1]
        self._triggers(kinds, ow, t_ext)

        per_run = np.diff(other, prepend=-1, append=n) - 1  # event words of each run
        first_ev = 0
        if not complete:  # near the stream start: runs without a time or a row are dropped (always a prefix)
            untimed = (t_ext < 0) | (y_ext == _NO_ROW)
            j0 = int(np.argmin(untimed)) if not untimed.all() else untimed.size
            first_ev = int(per_run[:j0].sum())
            per_run[:j0] = 0
            ev = ev[first_ev:]
        ew = words[ev]

        vec = np.flatnonzero(ew >= _VECT_12 << 12)
        is_bx = (kinds == _VECT_BASE_X) & started
        if vec.size or is_bx.any():
            vw = ew[vec]
            is12 = vw < _VECT_8 << 12
            covered = np.zeros(vec.size + 1, dtype=np.int64)  # columns covered by the vectors before each one
            np.cumsum(np.where(is12, 12, 8), out=covered[1:])
            # Each VECT_BASE_X is stored as its value minus the columns covered before it, so that the base of a
            # vector is the value in force plus the columns covered before that vector.
            vpos = ev[vec]
            bxw = ow[is_bx]
            offset = (bxw & 0x7FF).astype(np.int64) - covered[np.searchsorted(vpos, other[is_bx])]
            off_ext = _forward_fill(is_bx, offset, self.base_x, np.int64)
            p_ext = _forward_fill(is_bx, (bxw >> 11) & 1, self.base_p, np.uint16)
            self.base_x = int(off_ext[-1]) + int(covered[-1])
            self.base_p = int(p_ext[-1])
        total = int(per_run.sum())
        if vec.size:
            run = vpos - (vec + first_ev)
            base_x = off_ext[run] + covered[:-1]
            masks = (vw & np.where(is12, 0xFFF, 0xFF)).astype("<u2")
            masks[base_x < 0] = 0  # vectors before the first VECT_BASE_X have no base: dropped
            bits = np.unpackbits(masks.view(np.uint8).reshape(-1, 2), axis=1, bitorder="little")
            hit = np.flatnonzero(bits.view(bool))  # (the bool fast path of nonzero)
            row = hit >> 4
            per_vec = np.bincount(row, minlength=vec.size)
            extra = per_vec - 1  # events beyond the one a single-event word gives
            per_run += np.bincount(run, weights=extra, minlength=per_run.size).astype(per_run.dtype)
            total += int(extra.sum())

        out = buffer.claim(total)
        if not total:
            return
        # x | y << 16 | p << 32 is the first 8 bytes of an event, t the last 8: two strided writes per event.
        head = out.view(np.uint64).reshape(total, 2)[:, 0]
        t = out.view(np.int64).reshape(total, 2)[:, 1]
        # The time changes only at TIME_HIGH / TIME_LOW words: one repeat over those (long) segments.
        changes = np.flatnonzero(defines_t) + 1  # the runs where a new time starts
        before = np.zeros(per_run.size + 1, dtype=np.intp)
        np.cumsum(per_run, out=before[1:])
        seg_events = np.diff(before[changes], prepend=0, append=total)
        seg_t = t_ext[np.concatenate(([0], changes))]
        used = seg_t[seg_events > 0]
        if used[0] < self.last_t or (used[1:] < used[:-1]).any():
            self.in_order = False
        self.last_t = int(used[-1])
        np.copyto(t, np.repeat(seg_t, seg_events))
        xp = ew.astype(np.uint64)  # x | p << 32 of each event word
        p_bit = xp & 0x800
        p_bit <<= 21
        xp &= 0x7FF
        xp |= p_bit
        # The row of each event word: its run is the number of state words before it.
        y16 = y_ext.astype(np.uint64) << 16
        row_of_word = y16[ev - np.arange(first_ev, first_ev + ev.size)]
        if not vec.size:
            np.bitwise_or(xp, row_of_word, out=head)
            return
        # Vectors: one event per set bit, x = base_x + bit, in word order then bit order.
        xp[vec] = (base_x.astype(np.uint64) & 0xFFFF) | (p_ext[run].astype(np.uint64) << 32)
        xp |= row_of_word
        counts = np.ones(ew.size, dtype=np.intp)
        counts[vec] = per_vec
        xp = np.repeat(xp, counts)
        first_slot = vec + np.cumsum(extra) - extra
        rank = np.arange(hit.size) - (np.cumsum(per_vec) - per_vec)[row]
        xp[first_slot[row] + rank] += (hit & 15).astype(np.uint64)
        np.copyto(head, xp)


def read_evt3(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Decodes an EVT 3.0 RAW file.

    The body is memory-mapped and decoded in blocks of vectorised steps, straight into the returned array.

    Args:
        path: the ``.raw`` file.

    Returns:
        ``(events, meta)`` as :func:`~opsin.eventflow.io.evt2.read_evt2`: :data:`EVENT_CD` events (stably sorted by
        t) and ``height``, ``width``, ``header``, ``data_offset``, ``ext_trigger``.

    Raises:
        FormatError: another format or an impossible sensor size in the header, an odd number of body bytes, or a
            word type EVT 3.0 does not define (0x1, 0x9).
    """
    path = Path(path)
    body = RawBody(path, "3.0", "<u2")
    header = body.header
    decoder = _Evt3Decoder(path, header.data_offset)
    buffer = EventBuffer(body.count)
    for first, words in body.blocks(BLOCK_WORDS):
        decoder.block(words, first, buffer)
    events = buffer.result()
    if not decoder.in_order:
        events = events[np.argsort(events["t"], kind="stable")]
    height, width = header.height, header.width
    if (height < 0 or width < 0) and events.size:
        height, width = int(events["y"].max()) + 1, int(events["x"].max()) + 1
    triggers = np.concatenate(decoder.triggers) if decoder.triggers else np.empty(0, dtype=EXT_TRIGGER)
    meta = {
        "height": height,
        "width": width,
        "header": header.fields,
        "data_offset": header.data_offset,
        "ext_trigger": triggers,
    }
    return events, meta
