"""Seeds that are the same everywhere, and independent random streams per named aspect."""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["derive_seed", "rng"]

_MASK63 = (1 << 63) - 1


def _encode(part: Any, out: bytearray) -> None:
    """Append an unambiguous, type-tagged encoding of ``part`` (never Python's salted ``hash``)."""
    if part is None:
        out += b"N"
    elif isinstance(part, bool):
        out += b"B1" if part else b"B0"
    elif isinstance(part, int) or (type(part).__name__.startswith(("int", "uint")) and hasattr(part, "__index__")):
        data = str(int(part)).encode()
        out += b"I" + struct.pack("<Q", len(data)) + data
    elif isinstance(part, float) or type(part).__name__.startswith("float"):
        out += b"F" + struct.pack("<d", float(part))
    elif isinstance(part, str):
        data = part.encode("utf-8")
        out += b"S" + struct.pack("<Q", len(data)) + data
    elif isinstance(part, bytes | bytearray | memoryview):
        data = bytes(part)
        out += b"Y" + struct.pack("<Q", len(data)) + data
    elif isinstance(part, tuple | list):
        out += b"T" + struct.pack("<Q", len(part))
        for item in part:
            _encode(item, out)
    else:
        msg = f"derive_seed cannot encode {type(part).__name__} values ({part!r}); use str, int, float, bytes, tuples"
        raise TypeError(msg)


def derive_seed(*parts: Any) -> int:
    """Derive a 63-bit seed from any mix of strings, integers, floats, bytes, ``None`` and tuples of them.

    The value depends only on the parts (type-tagged, length-prefixed, hashed with BLAKE2b), so it is identical
    across processes, machines, platforms and ``PYTHONHASHSEED`` values: ``derive_seed("job", 7)`` is a constant.

    Args:
        *parts: the identity of what is being seeded.

    Returns:
        An integer in ``[0, 2**63)``.
    """
    buf = bytearray()
    _encode(parts, buf)
    digest = hashlib.blake2b(bytes(buf), digest_size=8, person=b"opsin-seed").digest()
    return int.from_bytes(digest, "little") & _MASK63


def rng(seed: int, stream: str) -> np.random.Generator:
    """Return a NumPy generator for one named aspect of a seeded computation.

    Streams of the same seed are statistically independent, and adding a stream (or drawing more from one) never
    changes the numbers another stream produces, so overriding one aspect does not reshuffle the others.

    Args:
        seed: the computation's seed (e.g. from :func:`derive_seed`).
        stream: the aspect's name, e.g. ``"motion"``.

    Returns:
        A fresh ``numpy.random.Generator`` (PCG64).
    """
    import numpy as np  # numpy is needed only by callers that draw numbers

    return np.random.Generator(np.random.PCG64(derive_seed(int(seed), "stream", stream)))
