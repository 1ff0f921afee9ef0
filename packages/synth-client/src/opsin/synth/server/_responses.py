"""JSON responses and the error type the service's routes raise (rendered as ``{"detail": ..., **extra}``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from opsin.synth.errors import ServiceHTTPError

__all__ = ["NOT_FOUND", "ServiceHTTPError", "StrictJSONResponse", "error_response"]

NOT_FOUND = "Not found."


class StrictJSONResponse(JSONResponse):
    """JSON with ASCII escapes (lone surrogates from user input cannot break the encoding) and no NaN."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A ``StrictJSONResponse`` error body."""
    return StrictJSONResponse({"detail": detail, **extra}, status_code=status_code, headers=headers)
