"""HTTP plumbing of the client: server URLs, headers, explicit timeouts and bounded retries.

Every request the client makes goes through :func:`request`, which retries transport errors and the gateway
statuses 502/503/504 a bounded number of times with exponential backoff, so a flaky proxy never turns into an
endless loop, and a dead server fails within ``connect timeout x attempts``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin

import httpx

from opsin.core import get_logger

if TYPE_CHECKING:
    from opsin.synth.errors import ApiError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "api_error",
    "DEFAULT_SERVER",
    "READ_TIMEOUT_S",
    "RETRY_STATUSES",
    "USER_AGENT",
    "auth_headers",
    "client_scope",
    "error_detail",
    "make_client",
    "normalize_server",
    "request",
    "resolve_server",
    "url_for",
]

E = TypeVar("E", bound="ApiError")

_log = get_logger("opsin.synth")

DEFAULT_SERVER = os.environ.get("OPSIN_SYNTH_SERVER") or "http://127.0.0.1:8000/"
"""Server used when none is given: ``OPSIN_SYNTH_SERVER`` at import time, else the local service's default."""

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
RETRY_STATUSES = frozenset({502, 503, 504})
DEFAULT_RETRIES = 3


def _version() -> str:
    from opsin.synth import __version__

    return __version__


USER_AGENT = f"opsin-synth-client/{_version()}"


def normalize_server(server: str) -> str:
    """Return ``server`` with exactly one trailing slash (so relative API paths join under it)."""
    text = str(server).strip()
    if not text:
        msg = "server URL is empty"
        raise ValueError(msg)
    return text.rstrip("/") + "/"


def resolve_server(server: str | None) -> str:
    """Return the normalised server: ``server`` when given, else ``OPSIN_SYNTH_SERVER``, else :data:`DEFAULT_SERVER`.

    The environment is read at call time, so a variable set after import (a notebook cell, a test) is honoured.
    """
    if server is None:
        server = os.environ.get("OPSIN_SYNTH_SERVER") or DEFAULT_SERVER
    return normalize_server(server)


def url_for(server: str, path: str) -> str:
    """Join an API ``path`` (``"api/batch/"``) or an absolute/relative result URL to ``server``."""
    return urljoin(normalize_server(server), path.lstrip("/") if not path.startswith(("http://", "https://")) else path)


def auth_headers(token: str) -> dict[str, str]:
    """The ``Authorization: Token <token>`` header of every authenticated call."""
    return {"Authorization": f"Token {token}"}


def make_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` with the client's User-Agent and 10 s connect / 60 s read timeouts.

    Args:
        **kwargs: further ``httpx.Client`` options (they win over the defaults).
    """
    kwargs.setdefault("timeout", httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
    headers = {"User-Agent": USER_AGENT, **dict(kwargs.pop("headers", {}) or {})}
    kwargs.setdefault("follow_redirects", False)
    return httpx.Client(headers=headers, **kwargs)


class client_scope:  # noqa: N801 - used like a function returning a context manager
    """Use ``client`` when given (left open), else a fresh :func:`make_client` closed on exit."""

    def __init__(self, client: httpx.Client | None) -> None:
        self._given = client
        self._own: httpx.Client | None = None

    def __enter__(self) -> httpx.Client:
        if self._given is not None:
            return self._given
        self._own = make_client()
        return self._own

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    retries: int = DEFAULT_RETRIES,
    retry_statuses: Iterable[int] = RETRY_STATUSES,
    retry_if: Callable[[httpx.Response], bool] | None = None,
    backoff_s: float = 0.25,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request, retrying transport errors and ``retry_statuses`` up to ``retries`` extra times.

    Args:
        client: the HTTP client.
        method: HTTP method.
        url: absolute URL.
        retries: extra attempts after the first (0 = no retry).
        retry_statuses: statuses that are retried (default 502, 503, 504).
        retry_if: further predicate on a response that asks for a retry (e.g. a 409 "still processing").
        backoff_s: first wait between attempts; doubled after each, capped at 4 s.
        headers: request headers.
        **kwargs: passed to ``client.request`` (``json``, ``params``...).

    Returns:
        The last response (whatever its status).

    Raises:
        httpx.TransportError: the last attempt failed without a response.
    """
    statuses = frozenset(retry_statuses)
    attempt = 0
    while True:
        try:
            response = client.request(method, url, headers=dict(headers or {}), **kwargs)
        except httpx.TransportError as exc:
            if attempt >= retries:
                raise
            _log.warning("%s %s failed (%s); retry %d/%d", method, url, exc, attempt + 1, retries)
        else:
            wants_retry = response.status_code in statuses or (retry_if is not None and retry_if(response))
            if not wants_retry or attempt >= retries:
                return response
            _log.warning("%s %s answered %d; retry %d/%d", method, url, response.status_code, attempt + 1, retries)
        time.sleep(min(4.0, backoff_s * (2**attempt)))
        attempt += 1


def error_detail(response: httpx.Response) -> tuple[str, Any]:
    """Return ``(detail text, decoded body)`` of an error response (``detail`` of a JSON body, else the text)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, Mapping) and "detail" in body:
        detail = body["detail"]
        return (detail if isinstance(detail, str) else str(detail)), body
    text = body if isinstance(body, str) else str(body)
    return text[:500], body


def api_error(cls: type[E], what: str, response: httpx.Response, server: str, **extra: Any) -> E:
    """The one translation of an error response into an exception: ``cls`` carrying status, request and detail.

    Args:
        cls: an :class:`~opsin.synth.errors.ApiError` subclass.
        what: the operation, e.g. ``"Reading batch <id>"``.
        response: the error response.
        server: the service URL (named in the message).
        **extra: further constructor arguments of ``cls`` (e.g. ``required``/``available``).
    """
    detail, body = error_detail(response)
    request = response.request
    message = f"{what} failed on {server}: HTTP {response.status_code}: {detail}"
    return cls(
        message,
        status_code=response.status_code,
        method=request.method,
        url=str(request.url),
        detail=detail,
        body=body,
        **extra,
    )
