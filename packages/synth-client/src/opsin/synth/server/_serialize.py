"""JSON shapes of jobs and batches of the original REST contract, with fresh signed result URLs on every response."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from opsin.synth.server.models import IN_PROGRESS_STATES, Batch, Job, JobStatus
from opsin.synth.server.signing import signed_result_url

__all__ = ["batch_detail", "batch_summary", "display_time", "isoformat", "job_object", "result_url"]


def isoformat(value: dt.datetime | None) -> str | None:
    """ISO 8601 with UTC offset, or ``None``."""
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def display_time(value: dt.datetime | None) -> str:
    """A timestamp for people (portal pages): UTC to the second, e.g. ``2026-12-03 19:58:01 UTC``."""
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def result_url(job: Job, base_url: str, secret: str, ttl_s: int) -> str | None:
    """A fresh signed URL for a succeeded job, else ``None``."""
    if job.status != JobStatus.SUCCEEDED or not job.result_path:
        return None
    return signed_result_url(base_url, secret, job.id, ttl_s)


def job_object(job: Job, url: str | None) -> dict[str, Any]:
    """The job object of the original REST contract (plus the ``status`` and sample additions)."""
    return {
        "id": job.id,
        "name": job.generator,
        "batch_id": job.batch_id,
        "is_preview": bool(job.is_preview),
        "param_values": job.params,
        "in_progress": job.status in IN_PROGRESS_STATES,
        "result_url": url,
        "status": job.status,
        "created": isoformat(job.created),
        "completed": isoformat(job.completed),
        "estimated_samples": job.estimated_samples,
        "actual_samples": job.actual_samples,
        "error": job.error,
        "result_purged": isoformat(job.purged),
    }


def batch_detail(batch: Batch, jobs: Sequence[Job], base_url: str, secret: str, ttl_s: int) -> dict[str, Any]:
    """``GET /api/batch/{id}/`` body."""
    return {
        "id": batch.id,
        "name": batch.name,
        "created": isoformat(batch.created),
        "generator": batch.generator,
        "is_preview": bool(batch.is_preview),
        "job_runs": [job_object(job, result_url(job, base_url, secret, ttl_s)) for job in jobs],
    }


def batch_summary(batch: Batch, jobs: Sequence[Job], base_url: str, secret: str, ttl_s: int) -> dict[str, Any]:
    """``GET /api/batch/{id}/summary/`` body."""
    return {
        "id": batch.id,
        "job_runs": [
            {
                "id": job.id,
                "name": job.generator,
                "in_progress": job.status in IN_PROGRESS_STATES,
                "result_url": result_url(job, base_url, secret, ttl_s),
                "status": job.status,
            }
            for job in jobs
        ],
    }
