"""JSON responses and the error type the service's routes raise (rendered as ``{"detail": ..., **extra}``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["NOT_FOUND", "ServiceHTTPError", "StrictJSONResponse", "error_response"]

NOT_FOUND = "Not found."


class StrictJSONResponse(JSONResponse):
    """JSON with ASCII escapes (lone surrogates from user input cannot break the encoding) and no NaN."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class ServiceHTTPError(Exception):
    """An HTTP error answered with ``{"detail": detail, **extra}``.

    Args:
        status_code: HTTP status.
        detail: human-readable text (names the thing and the reason).
        headers: extra response headers.
        **extra: additional JSON fields (e.g. per-job ``errors``, ``required``/``available``).
    """

    def __init__(self, status_code: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"detail": self.detail, **self.extra}


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A ``StrictJSONResponse`` error body."""
    return StrictJSONResponse({"detail": detail, **extra}, status_code=status_code, headers=headers)
