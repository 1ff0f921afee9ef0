"""Sample accounting: reserve on submit, settle each job exactly once, report balances and usage.

Every balance change happens inside the transaction that creates the batch or changes the job's state; settling
is a compare-and-set on the job row (``status`` in the expected states and ``charged`` false), so a job is
settled once even when the dispatcher, a cancel request and a deadline race each other.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from opsin.synth.server.models import FINISHED_STATES, Database, Job, JobStatus, User, hash_token, utcnow

__all__ = [
    "account_summary",
    "create_user",
    "disk_use",
    "purge_expired_results",
    "reserve_samples",
    "settle_job",
    "usage_counts",
]


def create_user(db: Database, username: str, samples: int = 0, *, is_admin: bool = False) -> str:
    """Create a user and return the new token (40 hex characters; only its hash is stored).

    Raises:
        ValueError: the username is empty or already taken.
    """
    name = username.strip()
    if not name:
        msg = "username must not be empty"
        raise ValueError(msg)
    token = secrets.token_hex(20)
    with db.write() as session:
        if session.scalars(select(User.id).where(User.username == name)).first() is not None:
            msg = f"user {name!r} already exists"
            raise ValueError(msg)
        session.add(User(username=name, token_hash=hash_token(token), is_admin=is_admin, sample_balance=int(samples)))
    return token


def reserve_samples(session: Session, user_id: str, required: int) -> int | None:
    """Debit ``required`` samples when the balance covers them, inside the caller's transaction.

    Returns:
        ``None`` on success, else the available balance (nothing was debited).
    """
    result = session.execute(
        update(User)
        .where(User.id == user_id, User.sample_balance >= required)
        .values(sample_balance=User.sample_balance - required)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return None
    return int(session.scalars(select(User.sample_balance).where(User.id == user_id)).one())


def settle_job(
    session: Session,
    job_id: str,
    *,
    new_status: str,
    actual_samples: int,
    expected: Iterable[str],
    error: str | None = None,
    result_path: str | None = None,
    result_bytes: int | None = None,
) -> bool:
    """Move a job to a finished state and settle its samples, exactly once.

    The job row is updated only when its status is in ``expected`` and it was never charged; then the owner gets
    its estimate back and pays ``actual_samples``. Both happen in the caller's transaction.

    Returns:
        ``True`` when this call settled the job, ``False`` when another path already had.
    """
    expected_states = tuple(expected)
    job = session.get(Job, job_id)
    if job is None:
        return False
    result = session.execute(
        update(Job)
        .where(and_(Job.id == job_id, Job.status.in_(expected_states), Job.charged.is_(False)))
        .values(
            status=new_status,
            actual_samples=actual_samples,
            completed=utcnow(),
            charged=True,
            error=error,
            result_path=result_path,
            result_bytes=result_bytes,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        update(User)
        .where(User.id == job.owner_id)
        .values(sample_balance=User.sample_balance + job.estimated_samples - actual_samples)
    )
    return True


def account_summary(session: Session, user: User) -> dict[str, Any]:
    """The ``GET /api/account/`` body for ``user``."""
    reserved = session.scalar(
        select(func.coalesce(func.sum(Job.estimated_samples), 0)).where(Job.owner_id == user.id, Job.charged.is_(False))
    )
    rendered = session.scalar(
        select(func.coalesce(func.sum(Job.actual_samples), 0)).where(Job.owner_id == user.id, Job.charged.is_(True))
    )
    balance = session.scalar(select(User.sample_balance).where(User.id == user.id))
    return {
        "username": user.username,
        "sample_balance": int(balance or 0),
        "reserved_samples": int(reserved or 0),
        "samples_rendered_total": int(rendered or 0),
        "result_bytes": disk_use(session, user.id),
    }


def disk_use(session: Session, user_id: str) -> int:
    """Bytes of result zips the user's jobs keep on the service's disk (purged results excluded)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Job.result_bytes), 0)).where(
            Job.owner_id == user_id, Job.status == JobStatus.SUCCEEDED, Job.purged.is_(None)
        )
    )
    return int(total or 0)


def purge_expired_results(db: Database, retention_days: float, now: dt.datetime | None = None) -> int:
    """Delete the result zips of jobs finished more than ``retention_days`` ago; returns how many.

    Each job is marked ``purged`` (its result URL then answers 404 saying so); balances and usage are untouched.
    """
    cutoff = (now or utcnow()) - dt.timedelta(days=retention_days)
    with db.read() as session:
        expired = session.execute(
            select(Job.id, Job.result_path).where(
                Job.status == JobStatus.SUCCEEDED, Job.purged.is_(None), Job.completed < cutoff
            )
        ).all()
    for job_id, path in expired:
        if path:
            Path(path).unlink(missing_ok=True)
        with db.write() as session:
            session.execute(
                update(Job).where(Job.id == job_id).values(purged=utcnow()).execution_options(synchronize_session=False)
            )
    return len(expired)


def usage_counts(
    session: Session, user_id: str, start: dt.datetime | None, end: dt.datetime | None
) -> list[dict[str, Any]]:
    """Frames rendered per generator (previews and videos apart) by jobs completed within ``[start, end]``."""
    query = (
        select(Job.generator, Job.is_preview, func.coalesce(func.sum(Job.actual_samples), 0))
        .where(Job.owner_id == user_id, Job.status.in_(FINISHED_STATES), Job.completed.is_not(None))
        .group_by(Job.generator, Job.is_preview)
    )
    if start is not None:
        query = query.where(Job.completed >= start)
    if end is not None:
        query = query.where(Job.completed <= end)
    by_generator: dict[str, dict[str, Any]] = {}
    for generator, is_preview, total in session.execute(query):
        entry = by_generator.setdefault(
            generator, {"generator": generator, "preview_samples_rendered": 0, "non_preview_samples_rendered": 0}
        )
        entry["preview_samples_rendered" if is_preview else "non_preview_samples_rendered"] += int(total or 0)
    return [by_generator[name] for name in sorted(by_generator)]
