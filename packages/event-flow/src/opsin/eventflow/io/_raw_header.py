"""Header of Prophesee RAW files (EVT 2.0 and EVT 3.0): ``%`` lines ended by ``% end``."""

from __future__ import annotations

import re
from pathlib import Path

from opsin.eventflow.errors import FormatError

__all__ = ["RawHeader", "parse_raw_header"]


class RawHeader:
    """The parsed header of a RAW file.

    Attributes:
        fields: ``key -> value`` of the header lines (``"evt" -> "2.0"``, ``"format" -> "EVT2;height=480;..."``).
        evt: the declared format, ``"2.0"``, ``"3.0"`` or ``""`` when absent.
        height: sensor height, or -1 when the header does not say.
        width: sensor width, or -1 when the header does not say.
        data_offset: byte offset of the first data word.
    """

    def __init__(self, fields: dict[str, str], data_offset: int) -> None:
        self.fields = fields
        self.data_offset = data_offset
        fmt = fields.get("format", "")
        evt = fields.get("evt", "")
        if not evt and fmt:
            name = fmt.split(";")[0].strip().upper()
            evt = {"EVT2": "2.0", "EVT3": "3.0", "EVT21": "2.1"}.get(name, "")
        self.evt = evt
        self.height = -1
        self.width = -1
        match_h = re.search(r"height=(\d+)", fmt)
        match_w = re.search(r"width=(\d+)", fmt)
        if match_h and match_w:
            self.height, self.width = int(match_h.group(1)), int(match_w.group(1))
        elif "geometry" in fields:
            match = re.match(r"\s*(\d+)\s*x\s*(\d+)", fields["geometry"])
            if match:
                self.width, self.height = int(match.group(1)), int(match.group(2))


def parse_raw_header(path: str | Path, data: bytes | memoryview) -> RawHeader:
    """Parses the ``%`` header at the start of ``data`` (the bytes of ``path``).

    The header ends after a ``% end`` line, or (older files) before the first line that does not start with ``%``.

    Raises:
        FormatError: a header line is not terminated (truncated header).
    """
    fields: dict[str, str] = {}
    offset = 0
    raw = bytes(data[: 1 << 16]) if len(data) > (1 << 16) else bytes(data)
    while offset < len(raw) and raw[offset : offset + 1] == b"%":
        end = raw.find(b"\n", offset)
        if end < 0:
            if len(raw) < len(data):
                raw = bytes(data)
                end = raw.find(b"\n", offset)
            if end < 0:
                raise FormatError(path, offset, "RAW header line without a line end (truncated header)")
        text = raw[offset + 1 : end].decode("latin-1").strip()
        offset = end + 1
        if text == "end":
            break
        key, _, value = text.partition(" ")
        if key:
            fields[key] = value.strip()
    return RawHeader(fields, offset)
