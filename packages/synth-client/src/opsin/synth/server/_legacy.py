"""The original client's per-job endpoints, ``POST /api/jobs/run/`` and ``POST /api/jobs/preview/``.

Older analysis code submits one job per request. Each request is a one-job batch in every respect that matters:
the same validation (400), reservation and settlement (402 when the balance is short), and ``Idempotency-Key``
replays. With ``batch_id`` the job joins that batch of the same user (same generator and job type); without it, the
job gets a batch of its own.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsin.synth.server._batches import (
    BatchIn,
    JobRunIn,
    check_body,
    create_batch,
    prepare_batch,
    run_idempotent,
    valid_idempotency_key,
)
from opsin.synth.server._context import CurrentUser, get_context
from opsin.synth.server._responses import NOT_FOUND, ServiceHTTPError, StrictJSONResponse
from opsin.synth.server.models import Batch

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["legacy"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="1-255 printable ASCII characters; replays return the first result."),
]


class LegacyJobIn(BaseModel):
    """Body of the per-job endpoints of the original client."""

    name: str = Field(description="Generator name, e.g. `visionfit-v0.4.0`.")
    param_values: dict[str, Any] = Field(default_factory=dict, description="Parameters; omitted ones take defaults.")
    batch_id: uuid.UUID | None = Field(None, description="Add the job to this batch of yours (optional).")


class LegacyJobOut(BaseModel):
    """The created job's id and its batch."""

    id: str
    batch_id: str


def _digest(body: LegacyJobIn, is_preview: bool) -> str:
    canonical = json.dumps(
        {"preview": is_preview, **body.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _submit_one(request: Request, user: Any, body: LegacyJobIn, is_preview: bool, key: str | None) -> Any:
    ctx = get_context(request)
    as_batch = BatchIn(
        name="", job_runs=[JobRunIn(name=body.name, is_preview=is_preview, param_values=body.param_values)]
    )
    check_body(as_batch, ctx.settings)

    def work(session: Session | None) -> tuple[int, Any]:
        assert session is not None
        into = None
        if body.batch_id is not None:
            into = session.scalars(
                select(Batch).where(Batch.id == str(body.batch_id), Batch.owner_id == user.id)
            ).first()
            if into is None:
                raise ServiceHTTPError(404, NOT_FOUND)
            if into.generator != body.name or bool(into.is_preview) != is_preview:
                kind = "previews" if into.is_preview else "videos"
                msg = f"Batch {into.id} holds {kind} of `{into.generator}`; this job does not fit in it."
                raise ServiceHTTPError(400, msg)
        prepared = prepare_batch(as_batch, ctx.settings, session, user.id, ctx.generator)
        batch, jobs = create_batch(session, prepared, user.id, into=into)
        return 201, {"id": jobs[0].id, "batch_id": batch.id}

    if key is None:
        with ctx.db.write() as session:
            status, payload = work(session)
        replayed = False
    else:
        if not valid_idempotency_key(key):
            raise ServiceHTTPError(400, "Header `Idempotency-Key` must be 1-255 printable ASCII characters.")
        status, payload, replayed = run_idempotent(
            ctx.db, user.id, key, _digest(body, is_preview), ctx.settings.idempotency_ttl_s, work
        )
    if ctx.dispatcher is not None and not replayed:
        ctx.dispatcher.wake()
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return StrictJSONResponse(payload, status_code=status, headers=headers)


@router.post("/jobs/run/", status_code=201, summary="Submit one video job (legacy)", response_model=LegacyJobOut)
def submit_job_run(
    body: LegacyJobIn, request: Request, user: CurrentUser, idempotency_key: IdempotencyKeyHeader = None
) -> Any:
    """One standard (video) job, as a one-job batch or added to `batch_id`."""
    return _submit_one(request, user, body, False, idempotency_key)


@router.post("/jobs/preview/", status_code=201, summary="Submit one preview job (legacy)", response_model=LegacyJobOut)
def submit_job_preview(
    body: LegacyJobIn, request: Request, user: CurrentUser, idempotency_key: IdempotencyKeyHeader = None
) -> Any:
    """One preview job, as a one-job batch or added to `batch_id`."""
    return _submit_one(request, user, body, True, idempotency_key)
