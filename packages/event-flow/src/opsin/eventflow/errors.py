"""Errors raised by opsin-event-flow.

Every error of this package derives from :class:`EventFlowError`, itself an :class:`opsin.core.OpsinError`; the
concrete errors also derive from the builtin they really are, so ``except ValueError`` keeps working::

    OpsinError (opsin.core)
    └── EventFlowError
        ├── FormatError (ValueError)   an unreadable, corrupt or truncated file (names the file and byte offset)
        └── ConfigError (ValueError)   an invalid argument, shape, preprocessing name or data layout
"""

from __future__ import annotations

from opsin.core.errors import OpsinError

__all__ = ["ConfigError", "EventFlowError", "FormatError"]


class EventFlowError(OpsinError):
    """Base class of every opsin-event-flow error."""


class FormatError(EventFlowError, ValueError):
    """A file cannot be decoded: unknown layout, corrupt words or a truncated body.

    Attributes:
        path: the file that failed to decode.
        offset: the byte offset where decoding failed, or ``None`` when the library below does not say.
    """

    def __init__(self, path: object, offset: int | None, reason: str) -> None:
        # Only a decoder knows the offset; for a file read whole by another library the reason stands alone.
        message = f"{path}: {reason}" + (f" at byte offset {offset}" if offset is not None else "")
        super().__init__(message)
        self.path = str(path)
        self.offset = offset
        self.reason = reason


class ConfigError(EventFlowError, ValueError):
    """An argument, a shape or a data layout is invalid for the requested operation."""
