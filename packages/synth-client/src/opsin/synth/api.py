"""One function per REST endpoint, each returning the raw ``httpx.Response``.

These are the thin layer under :class:`~opsin.synth.Session` and :class:`~opsin.synth.Batch`; they never raise for
an HTTP status (callers decide), only for transport failures after the bounded retries of ``_http.request``. Each
takes ``server=None`` (then ``OPSIN_SYNTH_SERVER``, else :data:`DEFAULT_SERVER`) and an optional ``client`` (any
``httpx.Client``, e.g. a FastAPI ``TestClient``; a temporary one is made otherwise).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx

from opsin.synth._http import DEFAULT_SERVER, auth_headers, client_scope, request, resolve_server, url_for

__all__ = [
    "DEFAULT_SERVER",
    "get_account",
    "get_all_generator_data",
    "get_batch",
    "get_batch_list",
    "get_batch_summary",
    "get_job_preview",
    "get_job_previews",
    "get_job_run",
    "get_job_runs",
    "get_single_generator_data",
    "get_usage_datetime_range",
    "post_batch",
    "post_batch_cancel",
    "post_batch_estimate",
]


def _get(
    token: str,
    path: str,
    server: str | None,
    client: httpx.Client | None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    with client_scope(client) as http:
        return request(http, "GET", url_for(resolve_server(server), path), headers=auth_headers(token), params=params)


def get_all_generator_data(
    token: str, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/jobs/``: every generator (name, version, description, options)."""
    return _get(token, "api/jobs/", server, client)


def get_single_generator_data(
    token: str, generator: str, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/jobs/{generator}/``: the generator's description with its parameter schema."""
    return _get(token, f"api/jobs/{generator}/", server, client)


def post_batch(
    token: str,
    body: Mapping[str, Any],
    server: str | None = None,
    *,
    idempotency_key: str | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """``POST /api/batch/``: submit a batch body.

    With an ``idempotency_key`` the request is retried on transport errors, 502/503/504 and the service's 409
    "still being processed" answer, always with the same key, so a retry never creates a second batch. Without a
    key nothing is retried (a lost response could otherwise submit twice).
    """
    headers = auth_headers(token)
    retries = 0
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
        retries = 3

    def still_running(response: httpx.Response) -> bool:
        return response.status_code == 409 and "still being processed" in response.text

    with client_scope(client) as http:
        return request(
            http,
            "POST",
            url_for(resolve_server(server), "api/batch/"),
            headers=headers,
            json=dict(body),
            retries=retries,
            retry_if=still_running,
            backoff_s=0.5,
        )


def post_batch_estimate(
    token: str, body: Mapping[str, Any], server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``POST /api/batch/estimate/``: samples per job, no charge (safe to retry)."""
    with client_scope(client) as http:
        return request(
            http, "POST", url_for(resolve_server(server), "api/batch/estimate/"), headers=auth_headers(token), json=body
        )


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.astimezone()  # naive = local time
    return value.isoformat()


def get_batch_list(
    token: str,
    start_time: dt.datetime | None = None,
    end_time: dt.datetime | None = None,
    server: str | None = None,
    *,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """``GET /api/batch/?start_time=&end_time=``: the user's batches in the window, oldest first."""
    params = {k: v for k, v in (("start_time", _iso(start_time)), ("end_time", _iso(end_time))) if v is not None}
    return _get(token, "api/batch/", server, client, params)


def get_batch(
    token: str, batch_id: str, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/batch/{id}/``: the batch with every job object."""
    return _get(token, f"api/batch/{batch_id}/", server, client)


def get_batch_summary(
    token: str, batch_id: str, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/batch/{id}/summary/``: per job id, in_progress, result_url, status."""
    return _get(token, f"api/batch/{batch_id}/summary/", server, client)


def post_batch_cancel(
    token: str, batch_id: str, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``POST /api/batch/{id}/cancel/`` (addition): cancel queued and running jobs; answers the summary."""
    with client_scope(client) as http:
        return request(
            http, "POST", url_for(resolve_server(server), f"api/batch/{batch_id}/cancel/"), headers=auth_headers(token)
        )


def get_job_runs(
    token: str, batch_id: str | None = None, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/job_runs/[?batch_id=]``: the user's video jobs."""
    return _get(token, "api/job_runs/", server, client, {"batch_id": batch_id} if batch_id else None)


def get_job_run(
    token: str, job_id: str, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/job_runs/{id}/``: one video job (a preview id answers 404)."""
    return _get(token, f"api/job_runs/{job_id}/", server, client)


def get_job_previews(
    token: str, batch_id: str | None = None, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/job_previews/[?batch_id=]``: the user's preview jobs."""
    return _get(token, "api/job_previews/", server, client, {"batch_id": batch_id} if batch_id else None)


def get_job_preview(
    token: str, job_id: str, server: str | None = None, *, client: httpx.Client | None = None
) -> httpx.Response:
    """``GET /api/job_previews/{id}/``: one preview job (a video id answers 404)."""
    return _get(token, f"api/job_previews/{job_id}/", server, client)


def get_usage_datetime_range(
    token: str,
    start_time: dt.datetime | None = None,
    end_time: dt.datetime | None = None,
    server: str | None = None,
    *,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """``GET /api/job_runs/counts/``: frames rendered per generator by jobs completed in the window.

    Naive datetimes are read in the local time zone; absent bounds are unbounded.

    Raises:
        ValueError: ``end_time`` is before ``start_time``.
    """
    start, end = _iso(start_time), _iso(end_time)
    if start_time is not None and end_time is not None:
        aware_start = dt.datetime.fromisoformat(start) if start else None
        aware_end = dt.datetime.fromisoformat(end) if end else None
        if aware_start is not None and aware_end is not None and aware_end < aware_start:
            msg = f"end_time ({end}) is before start_time ({start})"
            raise ValueError(msg)
    params = {k: v for k, v in (("start_time", start), ("end_time", end)) if v is not None}
    return _get(token, "api/job_runs/counts/", server, client, params)


def get_account(token: str, server: str | None = None, *, client: httpx.Client | None = None) -> httpx.Response:
    """``GET /api/account/`` (addition): username, balance, reserved and rendered samples."""
    return _get(token, "api/account/", server, client)
