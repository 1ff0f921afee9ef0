"""Batch preparation (validation, filling, seeds, estimates), submission with reservation, and idempotency."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import attrs
from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opsin.synth._validation import fill_job_params, validate_job_param_dict
from opsin.synth.errors import UnknownGeneratorError
from opsin.synth.server._responses import ServiceHTTPError
from opsin.synth.server.accounting import reserve_samples
from opsin.synth.server.generators import Generator, get_generator
from opsin.synth.server.models import Batch, Database, IdempotencyKey, Job, JobStatus, new_id, utcnow
from opsin.synth.server.settings import Settings

__all__ = [
    "MAX_NESTING",
    "BatchIn",
    "JobRunIn",
    "PreparedBatch",
    "body_hash",
    "check_body",
    "create_batch",
    "prepare_batch",
    "run_idempotent",
    "seed_for",
]

_ABANDONED_AFTER_S = 120.0
MAX_NESTING = 16
"""Deepest list/object nesting accepted inside ``param_values`` (no generator parameter nests at all)."""
_MAX_ERROR_CHARS = 1000
_MAX_ERRORS_TOTAL = 32 * 1024
_MAX_DETAIL_JOBS = 3


class JobRunIn(BaseModel):
    """One job of a batch body."""

    name: str = Field(description="Generator name, e.g. `visionfit-v0.4.0`; the same for every job of a batch.")
    is_preview: bool = Field(False, description="Render a one-frame preview instead of the full video.")
    param_values: dict[str, Any] = Field(
        default_factory=dict, description="Generator parameters; omitted ones take their defaults."
    )


class BatchIn(BaseModel):
    """Body of `POST /api/batch/` and `POST /api/batch/estimate/`."""

    name: str | None = Field("", description="Batch name (may be empty).")
    job_runs: list[JobRunIn] = Field(description="Jobs in submission order.")


@attrs.frozen
class PreparedJob:
    """A validated job ready to insert."""

    id: str
    params: dict[str, Any]
    estimate: int
    seed: int
    seed_source: str


@attrs.frozen
class PreparedBatch:
    """A validated batch."""

    name: str
    generator: str
    is_preview: bool
    jobs: list[PreparedJob]

    @property
    def total_estimate(self) -> int:
        """Samples the batch will render."""
        return sum(job.estimate for job in self.jobs)


def seed_for(seed_source: str) -> int:
    """Return the seed: the first 8 bytes of SHA-256 of the seed-source job id, as an unsigned big-endian integer."""
    return int.from_bytes(hashlib.sha256(seed_source.encode("ascii")).digest()[:8], "big")


def body_hash(body: BatchIn) -> str:
    """SHA-256 of the canonical JSON form of a batch body."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _string_too_long(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > limit


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _nesting_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored (too deep, or a string with a lone surrogate), else ``None``.

    Iterative, so a hostile 10 000-level list costs a loop, not a ``RecursionError``.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                return "holds a lone UTF-16 surrogate (not valid Unicode text)"
        elif isinstance(item, dict | list):
            if depth >= MAX_NESTING:
                return f"nests lists/objects deeper than {MAX_NESTING} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def check_body(body: BatchIn, settings: Settings) -> None:
    """Cheap structural checks of a batch body, run before anything hashes, stores or validates it.

    Raises:
        ServiceHTTPError: 400 for too many jobs, a name too long or not valid Unicode, or a parameter value that
            nests too deeply or holds a lone surrogate.
    """
    name = body.name or ""
    runs = body.job_runs
    if not runs:
        raise ServiceHTTPError(400, "`job_runs` must hold at least one job.")
    if len(runs) > settings.max_jobs_per_batch:
        msg = f"`job_runs` holds {len(runs)} jobs; at most {settings.max_jobs_per_batch} are allowed per batch."
        raise ServiceHTTPError(400, msg)
    if len(name) > settings.max_name_length:
        msg = f"`name` is {len(name)} characters long; at most {settings.max_name_length} are allowed."
        raise ServiceHTTPError(400, msg)
    if _has_lone_surrogate(name):
        raise ServiceHTTPError(400, "`name` holds a lone UTF-16 surrogate (not valid Unicode text).")
    for index, run in enumerate(runs):
        if _has_lone_surrogate(run.name):
            msg = f"`job_runs[{index}].name` holds a lone UTF-16 surrogate (not valid Unicode text)."
            raise ServiceHTTPError(400, msg)
        for key, value in run.param_values.items():
            problem = _nesting_problem(key) or _nesting_problem(value)
            if problem is not None:
                shown = key.encode("utf-8", "replace").decode("utf-8")[:100]
                msg = f"`job_runs[{index}].param_values`: parameter `{shown}` {problem}."
                raise ServiceHTTPError(400, msg)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 40].rstrip() + "\n... (further violations not shown)\n"


def _error_answer(errors: list[str | None]) -> ServiceHTTPError:
    """One 400 answer for per-job violations, bounded in size and saying each violation once.

    ``errors`` stays aligned to ``job_runs`` (each entry capped, the total bounded); ``detail`` counts the failing
    jobs and quotes only the first few.
    """
    capped: list[str | None] = []
    total = 0
    for error in errors:
        if error is None:
            capped.append(None)
            continue
        text = _cap(error, _MAX_ERROR_CHARS)
        if total + len(text) > _MAX_ERRORS_TOTAL:
            text = "Invalid (not listed: answer size limit)."
        total += len(text)
        capped.append(text)
    failing = [(index, text) for index, text in enumerate(capped) if text is not None]
    quoted = "".join(f"\n\njob param index {i}: {text}" for i, text in failing[:_MAX_DETAIL_JOBS])
    more = len(failing) - _MAX_DETAIL_JOBS
    tail = f"\n\n... and {more} more failing jobs (see `errors`)." if more > 0 else ""
    detail = f"Invalid job parameters in {len(failing)} of {len(errors)} jobs:{quoted}{tail}"
    return ServiceHTTPError(400, detail, errors=capped)


def _resolve_state(session: Session, owner_id: str, state: Any) -> str | None:
    """The seed source of the job named by ``state`` when it is one of the owner's jobs, else ``None``."""
    try:
        state_id = str(uuid.UUID(str(state)))
    except ValueError:
        return None
    row = session.execute(
        select(Job.id, Job.seed_source_job).where(Job.id == state_id, Job.owner_id == owner_id)
    ).first()
    return None if row is None else str(row.seed_source_job)


def prepare_batch(
    body: BatchIn,
    settings: Settings,
    session: Session,
    owner_id: str,
    lookup: Callable[[str], Generator] = get_generator,
) -> PreparedBatch:
    """Validate a batch body and compute each job's full params, seed and estimate.

    The checks: every job's parameters against the generator schema and its cross-parameter rules, one generator and
    one preview flag for the whole batch, and the size limits on jobs, names, parameters and frames.

    Raises:
        ServiceHTTPError: 400 with a ``detail`` naming the offending job index and parameter, and per-job
            ``errors`` aligned to ``job_runs`` when parameters are at fault.
    """
    check_body(body, settings)
    name = body.name or ""
    runs = body.job_runs
    generators = {run.name for run in runs}
    previews = {run.is_preview for run in runs}
    if len(generators) > 1 or len(previews) > 1:
        msg = "All `job_runs` of a batch must share the same generator `name` and `is_preview`."
        raise ServiceHTTPError(400, msg)
    generator_name, is_preview = runs[0].name, runs[0].is_preview
    try:
        generator = lookup(generator_name)
    except UnknownGeneratorError:
        raise ServiceHTTPError(400, f"Unknown generator `{generator_name[:200]}` in `job_runs[0].name`.") from None
    if is_preview and not generator.supports_preview:
        raise ServiceHTTPError(400, f"Previews are not supported for `{generator_name}`.")
    info = generator.parameter_info
    errors: list[str | None] = []
    jobs: list[PreparedJob] = []
    for run in runs:
        given = run.param_values
        error = _check_limits(given, settings)
        if error is None:
            error = validate_job_param_dict(info, given)
        if error is not None:
            errors.append(error)
            continue
        params = fill_job_params(info, given)
        problems = generator.check(params)
        job_id = new_id()
        seed_source = job_id
        if params.get("state") is not None:
            resolved = _resolve_state(session, owner_id, params["state"])
            if resolved is None:
                problems = [*problems, f"Input parameter `state` ({params['state']}) is not a job of this user"]
            else:
                seed_source = resolved
                params["state"] = str(uuid.UUID(str(params["state"])))
        if problems:
            errors.append("\n\nCross-parameter violations:\n" + "".join(f"{line}\n" for line in problems))
            continue
        estimate = int(generator.estimate(params, is_preview))
        if estimate > settings.max_frames_per_job:
            errors.append(
                f"\n\nLimit violations:\nJob needs {estimate} frames, more than the per-job limit of "
                f"{settings.max_frames_per_job}\n"
            )
            continue
        errors.append(None)
        jobs.append(PreparedJob(job_id, params, estimate, seed_for(seed_source), seed_source))
    if any(error is not None for error in errors):
        raise _error_answer(errors)
    return PreparedBatch(name=name, generator=generator_name, is_preview=is_preview, jobs=jobs)


def _check_limits(given: dict[str, Any], settings: Settings) -> str | None:
    lines = []
    if len(given) > settings.max_params_per_job:
        lines.append(f"Job has {len(given)} parameters; at most {settings.max_params_per_job} are allowed")
    lines += [
        f"Input parameter `{key[:100]}` is longer than {settings.max_string_bytes} bytes"
        for key, value in given.items()
        if _string_too_long(value, settings.max_string_bytes) or _string_too_long(key, settings.max_string_bytes)
    ]
    return "\n\nLimit violations:\n" + "".join(f"{line}\n" for line in lines) if lines else None


def create_batch(
    session: Session, prepared: PreparedBatch, owner_id: str, into: Batch | None = None
) -> tuple[Batch, list[Job]]:
    """Reserve the jobs' samples and insert them, in the caller's transaction.

    Args:
        session: the write session.
        prepared: the validated jobs.
        owner_id: their owner.
        into: an existing batch of the owner to append the jobs to (same generator and job type); ``None``
            creates a new batch.

    Raises:
        ServiceHTTPError: 402 when the balance does not cover the estimate (nothing is created).
    """
    required = prepared.total_estimate
    available = reserve_samples(session, owner_id, required)
    if available is not None:
        detail = (
            f"Insufficient samples: this batch needs {required} samples, {available} available. "
            "Ask the admin for more samples, or submit fewer jobs or fewer frames per job."
        )
        raise ServiceHTTPError(402, detail, code="insufficient_samples", required=required, available=available)
    created = utcnow()
    if into is None:
        batch = Batch(
            id=new_id(),
            owner_id=owner_id,
            name=prepared.name,
            generator=prepared.generator,
            is_preview=prepared.is_preview,
            created=created,
        )
        session.add(batch)
        first = 0
    else:
        batch = into
        last = session.scalar(select(func.max(Job.position)).where(Job.batch_id == batch.id))
        first = 0 if last is None else int(last) + 1
    jobs = [
        Job(
            id=job.id,
            batch_id=batch.id,
            owner_id=owner_id,
            position=first + index,
            generator=prepared.generator,
            is_preview=prepared.is_preview,
            params=job.params,
            status=JobStatus.QUEUED,
            seed=str(job.seed),
            seed_source_job=job.seed_source,
            estimated_samples=job.estimate,
            created=created,
        )
        for index, job in enumerate(prepared.jobs)
    ]
    session.add_all(jobs)
    session.flush()
    return batch, jobs


def valid_idempotency_key(key: str) -> bool:
    """1-255 printable ASCII characters."""
    return 1 <= len(key) <= 255 and all(0x20 <= ord(ch) <= 0x7E for ch in key)


def run_idempotent(
    db: Database,
    owner_id: str,
    key: str,
    digest: str,
    ttl_s: int,
    work: Callable[[Session | None], tuple[int, Any]],
) -> tuple[int, Any, bool]:
    """Run ``work`` once per ``(owner, key)``; replay its stored ``(status, body)`` afterwards.

    ``work(session)`` receives the write session in which it must create the batch; the stored response is written
    in that same transaction, so a crash can never leave a batch without its key (or the reverse). A ``work`` that
    raises :class:`ServiceHTTPError` has its error stored and replayed too; any other exception frees the key.

    Returns:
        ``(status, body, replayed)``.

    Raises:
        ServiceHTTPError: 409 when the key was used with another body, or its first request is still running.
    """
    now = utcnow()
    claimed_id: int | None = None
    existing: IdempotencyKey | None = None
    for _ in range(3):
        try:
            with db.write() as session:
                row = session.scalars(
                    select(IdempotencyKey).where(IdempotencyKey.owner_id == owner_id, IdempotencyKey.key == key)
                ).first()
                stale = row is not None and (
                    row.created < now - dt.timedelta(seconds=ttl_s)
                    or (row.status is None and row.created < now - dt.timedelta(seconds=_ABANDONED_AFTER_S))
                )
                if row is not None and stale:
                    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
                    row = None
                if row is None:
                    fresh = IdempotencyKey(owner_id=owner_id, key=key, body_hash=digest, status=None, created=now)
                    session.add(fresh)
                    session.flush()
                    claimed_id = fresh.id
                else:
                    existing = row
            break
        except IntegrityError:  # another request inserted the key between our read and insert (PostgreSQL)
            continue
    if claimed_id is None:
        if existing is None:
            raise ServiceHTTPError(409, "A request with this Idempotency-Key is still being processed; retry shortly.")
        if existing.body_hash != digest:
            raise ServiceHTTPError(409, "This Idempotency-Key was already used with a different request body.")
        if existing.status is None:
            raise ServiceHTTPError(409, "A request with this Idempotency-Key is still being processed; retry shortly.")
        return int(existing.status), existing.response, True
    try:
        with db.write() as session:
            status, body = work(session)
            row = session.get(IdempotencyKey, claimed_id)
            if row is not None:
                row.status, row.response = status, body
        return status, body, False
    except ServiceHTTPError as exc:
        with db.write() as session:
            row = session.get(IdempotencyKey, claimed_id)
            if row is not None:
                row.status, row.response = exc.status_code, exc.body
        raise
    except BaseException:
        with db.write() as session:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claimed_id))
        raise
