"""Logging setup: libraries log through named loggers, applications decide where the records go."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["configure_logging", "get_logger"]

_ROOT = "opsin"
# Marks the handler configure_logging installed so a second call replaces it instead of stacking another one.
_HANDLER_ATTR = "_opsin_handler"
# Attributes every LogRecord carries; anything else was passed through `extra=` and belongs in the JSON line.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

logging.getLogger(_ROOT).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """Return the logger for ``name``.

    Library modules call ``get_logger(__name__)``; records propagate to the root logger, so they appear wherever
    the application configured logging (or nowhere, by default: libraries never print).

    Args:
        name: dotted logger name, usually the module's ``__name__``.

    Returns:
        The standard-library logger of that name.
    """
    return logging.getLogger(name)


class _JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object per line (for log shippers)."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: int | str = "INFO", json: bool = False) -> logging.Handler:
    """Send log records to standard error, as plain text or JSON lines.

    Meant for applications and command-line entry points, not libraries. Calling it again replaces the handler
    installed by the previous call rather than adding a second one.

    Args:
        level: minimum level, as a name (``"DEBUG"``) or a number.
        json: emit one JSON object per line instead of human-readable text.

    Returns:
        The handler that was installed on the root logger.

    Raises:
        ValueError: ``level`` is not a known level name.
    """
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            msg = f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            raise ValueError(msg)
        level = resolved
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_ATTR, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_ATTR, True)
    if json:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
