"""The REST routes of the original contract and our additions: all of ``/api/`` but schema, health and results."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from opsin.synth.errors import UnknownGeneratorError
from opsin.synth.server._batches import (
    BatchIn,
    body_hash,
    check_body,
    create_batch,
    prepare_batch,
    run_idempotent,
    valid_idempotency_key,
)
from opsin.synth.server._context import CurrentUser, get_context
from opsin.synth.server._responses import NOT_FOUND, ServiceHTTPError, StrictJSONResponse
from opsin.synth.server._serialize import batch_detail, batch_summary, isoformat, job_object, result_url
from opsin.synth.server._worker import FlagFileCancelEvent
from opsin.synth.server.accounting import account_summary, settle_job, usage_counts
from opsin.synth.server.models import IN_PROGRESS_STATES, Batch, Job, JobStatus
from opsin.synth.server.signing import signed_result_url

__all__ = ["router"]

router = APIRouter(prefix="/api")

StartTime = Annotated[str | None, Query(description="Inclusive lower bound, ISO 8601 (naive = UTC).")]
EndTime = Annotated[str | None, Query(description="Inclusive upper bound, ISO 8601 (naive = UTC).")]
BatchFilter = Annotated[uuid.UUID | None, Query(description="Only jobs of this batch.")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="1-255 printable ASCII characters; replays return the first result."),
]


def _parse_time(name: str, value: str | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ServiceHTTPError(400, f"Query parameter `{name}` ({value[:64]!r}) is not an ISO 8601 time.") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _describe(request: Request, name: str) -> dict[str, Any]:
    return dict(get_context(request).generator(name).describe())


def _owned_batch(session: Session, batch_id: uuid.UUID, owner_id: str) -> Batch:
    batch = session.scalars(select(Batch).where(Batch.id == str(batch_id), Batch.owner_id == owner_id)).first()
    if batch is None:
        raise ServiceHTTPError(404, NOT_FOUND)
    return batch


def _batch_jobs(session: Session, batch_id: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.batch_id == batch_id).order_by(Job.position)).all())


@router.get("/jobs/", summary="List generators")
def list_generators(request: Request, user: CurrentUser) -> list[dict[str, Any]]:
    """Every available generator: name, version, description and whether it renders previews."""
    out: list[dict[str, Any]] = []
    for name in get_context(request).generators():
        info = _describe(request, name)
        out.append({key: info[key] for key in ("name", "version", "description", "options") if key in info})
    return out


@router.get("/jobs/{generator}/", summary="Describe one generator")
def describe_generator(generator: str, request: Request, user: CurrentUser) -> dict[str, Any]:
    """The generator's description with its parameter schema; 404 for an unknown name."""
    try:
        return _describe(request, generator)
    except UnknownGeneratorError:
        raise ServiceHTTPError(404, f"Unknown generator `{generator[:200]}`.") from None


@router.post("/batch/", status_code=201, summary="Submit a batch")
def submit_batch(
    body: BatchIn,
    request: Request,
    user: CurrentUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Validate, reserve the estimated samples and queue the jobs; answers the batch detail (201).

    With an `Idempotency-Key`, a replay of the same body answers the stored response with `Idempotent-Replayed:
    true`; another body under the same key answers 409.
    """
    ctx = get_context(request)
    base = ctx.public_base(request)

    def work(session: Session | None) -> tuple[int, Any]:
        assert session is not None
        prepared = prepare_batch(body, ctx.settings, session, user.id, ctx.generator)
        batch, jobs = create_batch(session, prepared, user.id)
        return 201, batch_detail(batch, jobs, base, ctx.settings.secret_key, ctx.settings.result_url_ttl_s)

    if idempotency_key is None:
        with ctx.db.write() as session:
            status, payload = work(session)
        replayed = False
    else:
        if not valid_idempotency_key(idempotency_key):
            raise ServiceHTTPError(400, "Header `Idempotency-Key` must be 1-255 printable ASCII characters.")
        check_body(body, ctx.settings)  # hashing needs a body that serialises: validate its shape first
        status, payload, replayed = run_idempotent(
            ctx.db, user.id, idempotency_key, body_hash(body), ctx.settings.idempotency_ttl_s, work
        )
    if ctx.dispatcher is not None and not replayed:
        ctx.dispatcher.wake()
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return StrictJSONResponse(payload, status_code=status, headers=headers)


@router.post("/batch/estimate/", summary="Estimate a batch")
def estimate_batch(body: BatchIn, request: Request, user: CurrentUser) -> list[int]:
    """Exact samples (frames) per job, without charging or checking the balance (previews: 1 each)."""
    ctx = get_context(request)
    with ctx.db.read() as session:
        prepared = prepare_batch(body, ctx.settings, session, user.id, ctx.generator)
    return [job.estimate for job in prepared.jobs]


@router.get("/batch/", summary="List batches")
def list_batches(
    request: Request, user: CurrentUser, start_time: StartTime = None, end_time: EndTime = None
) -> list[dict[str, Any]]:
    """The user's batches created within the (inclusive) window, oldest first."""
    ctx = get_context(request)
    start, end = _parse_time("start_time", start_time), _parse_time("end_time", end_time)
    in_progress = func.sum(case((Job.status.in_(IN_PROGRESS_STATES), 1), else_=0))
    query = (
        select(Batch, func.count(Job.id), in_progress)
        .join(Job, Job.batch_id == Batch.id)
        .where(Batch.owner_id == user.id)
        .group_by(Batch.id)
        .order_by(Batch.created, Batch.id)
    )
    if start is not None:
        query = query.where(Batch.created >= start)
    if end is not None:
        query = query.where(Batch.created <= end)
    with ctx.db.read() as session:
        rows = session.execute(query).all()
    return [
        {
            "id": batch.id,
            "name": batch.name,
            "created": isoformat(batch.created),
            "generator": batch.generator,
            "is_preview": bool(batch.is_preview),
            "num_jobs": int(count),
            "num_in_progress": int(running or 0),
        }
        for batch, count, running in rows
    ]


@router.get("/batch/{batch_id}/", summary="Batch detail")
def get_batch(batch_id: uuid.UUID, request: Request, user: CurrentUser) -> Any:
    """The batch with every job object, fresh result URLs included; 404 for unknown or foreign ids."""
    ctx = get_context(request)
    with ctx.db.read() as session:
        batch = _owned_batch(session, batch_id, user.id)
        jobs = _batch_jobs(session, batch.id)
    body = batch_detail(batch, jobs, ctx.public_base(request), ctx.settings.secret_key, ctx.settings.result_url_ttl_s)
    return StrictJSONResponse(body)


@router.get("/batch/{batch_id}/summary/", summary="Batch summary")
async def get_batch_summary(batch_id: uuid.UUID, request: Request, user: CurrentUser) -> Any:
    """Per job: id, generator, in_progress, result_url (fresh) and status.

    This is the endpoint clients poll: the job rows come from a cache that every committed write of this process
    invalidates, so repeated polls between state changes cost no query (result URLs are still signed afresh).
    """
    ctx = get_context(request)
    rows = ctx.summary_rows(str(batch_id), user.id)
    if not rows:  # a batch always has jobs: no rows means unknown or foreign
        raise ServiceHTTPError(404, NOT_FOUND)
    base, secret, ttl = ctx.public_base(request), ctx.settings.secret_key, ctx.settings.result_url_ttl_s
    body = {
        "id": str(batch_id),
        "job_runs": [
            {
                "id": job_id,
                "name": generator,
                "in_progress": status in IN_PROGRESS_STATES,
                "result_url": signed_result_url(base, secret, job_id, ttl)
                if status == JobStatus.SUCCEEDED and result_path
                else None,
                "status": status,
            }
            for job_id, generator, status, result_path in rows
        ],
    }
    return StrictJSONResponse(body)


@router.post("/batch/{batch_id}/cancel/", summary="Cancel a batch")
def cancel_batch(batch_id: uuid.UUID, request: Request, user: CurrentUser) -> Any:
    """Cancel queued jobs (reservation returned) and signal running ones; finished jobs stay. Answers the summary."""
    ctx = get_context(request)
    to_signal: list[str] = []
    with ctx.db.write() as session:
        batch = _owned_batch(session, batch_id, user.id)
        for job in _batch_jobs(session, batch.id):
            if job.status == JobStatus.QUEUED:
                settle_job(
                    session,
                    job.id,
                    new_status=JobStatus.CANCELLED,
                    actual_samples=0,
                    expected=(JobStatus.QUEUED,),
                )
            elif job.status == JobStatus.RUNNING:
                session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == JobStatus.RUNNING)
                    .values(cancel_requested=True)
                    .execution_options(synchronize_session=False)
                )
                to_signal.append(job.id)
    if ctx.dispatcher is not None and to_signal:
        ctx.dispatcher.request_cancel(to_signal)
    elif to_signal:  # the dispatcher runs in another API process: its workers watch these flag files
        for job_id in to_signal:
            FlagFileCancelEvent(ctx.settings.cancel_dir / job_id).set()
    with ctx.db.read() as session:
        jobs = _batch_jobs(session, batch.id)
    body = batch_summary(batch, jobs, ctx.public_base(request), ctx.settings.secret_key, ctx.settings.result_url_ttl_s)
    return StrictJSONResponse(body)


def _list_jobs(request: Request, user_id: str, is_preview: bool, batch_id: uuid.UUID | None) -> Any:
    ctx = get_context(request)
    query = select(Job).where(Job.owner_id == user_id, Job.is_preview.is_(is_preview))
    if batch_id is not None:
        query = query.where(Job.batch_id == str(batch_id))
    with ctx.db.read() as session:
        jobs = session.scalars(query.order_by(Job.created, Job.position)).all()
    base, secret, ttl = ctx.public_base(request), ctx.settings.secret_key, ctx.settings.result_url_ttl_s
    return StrictJSONResponse([job_object(job, result_url(job, base, secret, ttl)) for job in jobs])


def _one_job(request: Request, user_id: str, is_preview: bool, job_id: uuid.UUID) -> Any:
    ctx = get_context(request)
    with ctx.db.read() as session:
        job = session.scalars(
            select(Job).where(Job.id == str(job_id), Job.owner_id == user_id, Job.is_preview.is_(is_preview))
        ).first()
    if job is None:
        raise ServiceHTTPError(404, NOT_FOUND)
    url = result_url(job, ctx.public_base(request), ctx.settings.secret_key, ctx.settings.result_url_ttl_s)
    return StrictJSONResponse(job_object(job, url))


@router.get("/job_runs/counts/", summary="Usage counts")
def usage(request: Request, user: CurrentUser, start_time: StartTime = None, end_time: EndTime = None) -> Any:
    """Frames rendered per generator by jobs completed within the window (absent bounds: unbounded)."""
    ctx = get_context(request)
    start, end = _parse_time("start_time", start_time), _parse_time("end_time", end_time)
    with ctx.db.read() as session:
        counts = usage_counts(session, user.id, start, end)
    return {"start_time": isoformat(start), "end_time": isoformat(end), "counts_by_generator": counts}


@router.get("/job_runs/", summary="List video jobs")
def list_job_runs(request: Request, user: CurrentUser, batch_id: BatchFilter = None) -> Any:
    """The user's standard (video) jobs, optionally of one batch."""
    return _list_jobs(request, user.id, False, batch_id)


@router.get("/job_runs/{job_id}/", summary="One video job")
def get_job_run(job_id: uuid.UUID, request: Request, user: CurrentUser) -> Any:
    """One standard (video) job; a preview id answers 404."""
    return _one_job(request, user.id, False, job_id)


@router.get("/job_previews/", summary="List preview jobs")
def list_job_previews(request: Request, user: CurrentUser, batch_id: BatchFilter = None) -> Any:
    """The user's preview jobs, optionally of one batch."""
    return _list_jobs(request, user.id, True, batch_id)


@router.get("/job_previews/{job_id}/", summary="One preview job")
def get_job_preview(job_id: uuid.UUID, request: Request, user: CurrentUser) -> Any:
    """One preview job; a video id answers 404."""
    return _one_job(request, user.id, True, job_id)


@router.get("/account/", summary="Account")
def account(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Username, balance, samples reserved by unfinished jobs, samples rendered in total."""
    with get_context(request).db.read() as session:
        return account_summary(session, user)
