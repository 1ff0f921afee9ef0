"""The dispatcher: a thread that claims queued jobs fairly and runs them on an executor.

Claiming is a conditional ``UPDATE ... WHERE status = 'queued'`` so two dispatchers (or a restart racing an old
process) never run the same job twice. The next job comes from the user with the fewest running jobs (oldest queued
job first among equals), so one user's long queue cannot hold another user's single job back. Finished jobs are
settled through :func:`accounting.settle_job` (state compare-and-set plus balance change in one transaction). A job
past its deadline (``base + per_sample x estimate``) is failed and told to stop.

Crashes are charged to whoever caused them: a job whose own worker process died is queued again up to
:data:`MAX_ATTEMPTS` runs, then failed; the neighbours a broken process pool takes down with it, and jobs a crash of
the whole service interrupted, are queued again without losing an attempt.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select, update

from opsin.core import get_logger, make_executor
from opsin.synth.server._worker import (
    FlagFileCancelEvent,
    JobOutcome,
    WorkerMarks,
    guard_worker,
    process_alive,
    run_job,
    warm_up,
    work_dir_owner,
)
from opsin.synth.server.accounting import purge_expired_results, settle_job
from opsin.synth.server.models import Database, Job, JobStatus, utcnow
from opsin.synth.server.settings import Settings

__all__ = ["MAX_ATTEMPTS", "ClaimedJob", "Dispatcher", "WorkerLost"]

_log = get_logger("opsin.synth.server.dispatcher")

MAX_ATTEMPTS = 2
"""Runs of a job whose own worker process died before the job fails."""
_EXIT_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this dispatcher moved from ``queued`` to ``running``: what its worker needs."""

    id: str
    generator: str
    params: dict[str, Any]
    is_preview: bool
    seed: int
    estimate: int


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """The process pool broke while the job was in it.

    Attributes:
        own_fault: the job's own worker process died (not a neighbour's).
        detail: what happened, for the log and the job's error.
    """

    own_fault: bool
    detail: str


@dataclass
class _Running:
    job_id: str
    future: cf.Future[Any]
    deadline: float
    limit_s: float


def _aware(value: dt.datetime) -> dt.datetime:
    # aggregates bypass the column type, so SQLite hands back naive UTC datetimes (or text)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


class Dispatcher:
    """Runs queued jobs in the background.

    Args:
        db: the service database.
        settings: service settings (workers, scheduler, deadlines, data folders).
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.capacity = settings.effective_workers
        self.marks = WorkerMarks(settings.data_dir / "workers")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: cf.Executor | None = None
        self._running: dict[str, _Running] = {}
        self._draining: dict[str, _Running] = {}
        self._next_purge = 0.0

    # -- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue interrupted jobs, start the executor (warming its workers) and the dispatcher thread."""
        for folder in (self.settings.results_dir, self.settings.cancel_dir, self.marks.folder):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.recover()
        self._executor = self._make_executor()
        self._warm_up()
        self._thread = threading.Thread(target=self._loop, name="opsin-synth-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, signal running jobs to stop and shut the executor down.

        Jobs still running are left ``running`` in the database; the next start re-queues them.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for entry in [*self._running.values(), *self._draining.values()]:
            entry.future.cancel()
        if self._executor is not None:
            with contextlib.suppress(Exception):
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def wake(self) -> None:
        """Look for work now (called after a submit)."""
        self._wake.set()

    def recover(self) -> int:
        """Queue again every job left ``running`` by a previous process; returns how many.

        The interrupted run does not count as an attempt (the service crashed, not the job). A job whose
        cancellation had been requested is settled as cancelled instead. Work folders are removed unless the
        worker writing them is still alive.
        """
        with self.db.write() as session:
            stale = session.scalars(select(Job).where(Job.status == JobStatus.RUNNING)).all()
            requeued = 0
            for job in stale:
                if job.cancel_requested:
                    settle_job(
                        session,
                        job.id,
                        new_status=JobStatus.CANCELLED,
                        actual_samples=0,
                        expected=(JobStatus.RUNNING,),
                    )
                else:
                    self._requeue(session, job.id, count_attempt=False)
                    requeued += 1
        for leftover in self.settings.results_dir.glob(".work-*"):
            self._remove_work_dir(leftover)
        if requeued:
            _log.warning("re-queued %d job(s) interrupted by a previous shutdown", requeued)
        return requeued

    def request_cancel(self, job_ids: list[str]) -> None:
        """Tell running jobs to stop (flag files), and drop those still waiting in the executor."""
        for job_id in job_ids:
            self._cancel_event(job_id).set()
            entry = self._running.get(job_id)
            if entry is not None:
                entry.future.cancel()
        self._wake.set()

    # -- internals --------------------------------------------------------------------------------------------

    def _make_executor(self) -> cf.Executor:
        if self.settings.scheduler:
            return make_executor(self.settings.scheduler)
        # the initializer ties each worker's life to this process and records which job it runs
        return make_executor(
            "local", self.capacity, initializer=guard_worker, initargs=(os.getpid(), str(self.marks.folder))
        )

    def _warm_up(self) -> None:
        if self._executor is None or self.settings.scheduler:
            return
        for _ in range(self.capacity):
            with contextlib.suppress(Exception):
                self._executor.submit(warm_up)

    def _cancel_event(self, job_id: str) -> FlagFileCancelEvent:
        return FlagFileCancelEvent(self.settings.cancel_dir / job_id)

    @staticmethod
    def _remove_work_dir(folder: Path) -> None:
        owner = work_dir_owner(folder)
        if owner is not None and owner != os.getpid() and process_alive(owner):
            return  # a live worker still writes there (it exits on its own once its service is gone)
        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _requeue(session: Any, job_id: str, *, count_attempt: bool) -> None:
        values: dict[str, Any] = {"status": JobStatus.QUEUED, "started": None}
        if not count_attempt:  # the claim counted this run; take it back
            values["attempts"] = case((Job.attempts > 0, Job.attempts - 1), else_=0)
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                if not self._stop.is_set():
                    self._claim()
                if self.settings.retention_days is not None and time.monotonic() >= self._next_purge:
                    self._next_purge = time.monotonic() + self.settings.purge_interval_s
                    purge_expired_results(self.db, self.settings.retention_days)
            except Exception:  # the loop must survive database hiccups; the next round retries
                _log.exception("dispatcher round failed")
                time.sleep(0.5)
            self._wake.wait(self.settings.poll_interval_s)
            self._wake.clear()

    def _claim(self) -> None:
        while len(self._running) + len(self._draining) < self.capacity and not self._stop.is_set():
            job = self._claim_one()
            if job is None or self._executor is None:
                return
            self.marks.clear(job.id)
            try:
                future = self._executor.submit(
                    run_job,
                    job.id,
                    job.generator,
                    job.params,
                    job.is_preview,
                    job.seed,
                    str(self.settings.results_dir),
                    self._cancel_event(job.id).path,
                )
            except Exception as exc:
                future = cf.Future()
                future.set_exception(exc)
            future.add_done_callback(lambda _f: self._wake.set())
            limit_s = self.settings.job_deadline_base_s + self.settings.job_deadline_per_sample_s * job.estimate
            self._running[job.id] = _Running(job.id, future, time.monotonic() + limit_s, limit_s)
            _log.info("job %s (%s) started", job.id, job.generator)

    def _next_owner(self, session: Any) -> str | None:
        """The owner to serve next, round robin: fewest running jobs, then the longest since one of theirs started."""
        queued = session.execute(
            select(Job.owner_id, func.min(Job.created)).where(Job.status == JobStatus.QUEUED).group_by(Job.owner_id)
        ).all()
        if not queued:
            return None
        owners = [row[0] for row in queued]
        running = dict(
            session.execute(
                select(Job.owner_id, func.count())
                .where(Job.status == JobStatus.RUNNING, Job.owner_id.in_(owners))
                .group_by(Job.owner_id)
            ).all()
        )
        last_start = dict(
            session.execute(
                select(Job.owner_id, func.max(Job.started)).where(Job.owner_id.in_(owners)).group_by(Job.owner_id)
            ).all()
        )
        never = dt.datetime.min.replace(tzinfo=dt.UTC)

        def turn(row: Any) -> tuple[int, dt.datetime, dt.datetime, str]:
            started = last_start.get(row[0])
            return (running.get(row[0], 0), _aware(started) if started else never, _aware(row[1]), str(row[0]))

        return str(min(queued, key=turn)[0])

    def _claim_one(self) -> ClaimedJob | None:
        with self.db.read() as session:  # cheap look first: an idle poll takes no write lock
            if session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED).limit(1)).first() is None:
                return None
        while True:
            with self.db.write() as session:
                owner = self._next_owner(session)
                if owner is None:
                    return None
                job = session.scalars(
                    select(Job)
                    .where(Job.status == JobStatus.QUEUED, Job.owner_id == owner)
                    .order_by(Job.created, Job.position, Job.id)
                    .limit(1)
                ).first()
                if job is None:
                    continue
                result = session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == JobStatus.QUEUED)
                    .values(status=JobStatus.RUNNING, started=utcnow(), attempts=Job.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return ClaimedJob(
                        id=job.id,
                        generator=job.generator,
                        params=dict(job.params),
                        is_preview=bool(job.is_preview),
                        seed=int(job.seed),
                        estimate=int(job.estimated_samples),
                    )

    def _reap(self) -> None:
        now = time.monotonic()
        for job_id, entry in list(self._draining.items()):
            if entry.future.done():
                del self._draining[job_id]
                self._cleanup(job_id)
        for job_id, entry in list(self._running.items()):
            if entry.future.done():
                if self._finish(job_id, self._outcome(job_id, entry.future)):
                    del self._running[job_id]
            elif now > entry.deadline:
                _log.warning("job %s exceeded its deadline; failing it", job_id)
                self._cancel_event(job_id).set()
                entry.future.cancel()
                outcome = JobOutcome(JobStatus.FAILED, error=f"job exceeded its deadline of {entry.limit_s:g} s")
                if self._finish(job_id, outcome, deadline=True):
                    del self._running[job_id]
                    if not entry.future.done():
                        self._draining[job_id] = entry

    def _cleanup(self, job_id: str) -> None:
        """Drop the job's cancel flag, its worker marks and any work folder a dead worker left behind."""
        self._cancel_event(job_id).clear()
        self.marks.clear(job_id)
        for leftover in self.settings.results_dir.glob(f".work-{job_id}-*"):
            self._remove_work_dir(leftover)

    def _outcome(self, job_id: str, future: cf.Future[Any]) -> JobOutcome | WorkerLost:
        if future.cancelled():
            return JobOutcome(JobStatus.CANCELLED)
        exc = future.exception()
        if exc is None:
            result = future.result()
            if isinstance(result, JobOutcome):
                return result
            return JobOutcome(JobStatus.FAILED, error=f"worker returned an unexpected {type(result).__name__}")
        if isinstance(exc, cf.BrokenExecutor):
            if self._executor is not None and getattr(self._executor, "_broken", False):
                self._replace_executor()
            own = self._own_process_died(job_id)
            detail = "its worker process died" if own else "a neighbouring worker process died"
            return WorkerLost(own_fault=own, detail=detail)
        _log.error("job %s: executor error", job_id, exc_info=exc)
        return JobOutcome(JobStatus.FAILED, error=f"{type(exc).__name__} in the executor")

    def _own_process_died(self, job_id: str) -> bool:
        """Whether the worker that ran ``job_id`` died under it (rather than being ended by the broken pool)."""
        pid = self.marks.started(job_id)
        if pid is None:
            return False  # it never started: it only waited in the broken pool
        deadline = time.monotonic() + _EXIT_WAIT_S
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # the pool is terminating its workers; let this one leave its mark
        if process_alive(pid):
            return False
        return not self.marks.ended_normally(job_id)

    def _replace_executor(self) -> None:
        old = self._executor
        self._executor = self._make_executor()
        self._warm_up()
        if old is not None:
            with contextlib.suppress(Exception):
                old.shutdown(wait=False, cancel_futures=True)

    def _finish(self, job_id: str, outcome: JobOutcome | WorkerLost, *, deadline: bool = False) -> bool:
        try:
            with self.db.write() as session:
                job = session.get(Job, job_id)
                if job is None:
                    return True
                if isinstance(outcome, WorkerLost) and not job.cancel_requested:
                    if not outcome.own_fault or job.attempts < MAX_ATTEMPTS:
                        self._requeue(session, job_id, count_attempt=outcome.own_fault)
                        _log.warning("job %s: %s; queued again", job_id, outcome.detail)
                        self._cleanup(job_id)
                        return True
                    detail = f"{outcome.detail} (after {job.attempts} attempts)"
                    outcome = JobOutcome(JobStatus.FAILED, error=detail)
                    _log.error("job %s failed: %s", job_id, detail)
                elif isinstance(outcome, WorkerLost) or (job.cancel_requested and not deadline):
                    if isinstance(outcome, JobOutcome) and outcome.result_path:
                        Path(outcome.result_path).unlink(missing_ok=True)
                    outcome = JobOutcome(JobStatus.CANCELLED)
                settle_job(
                    session,
                    job_id,
                    new_status=outcome.status,
                    actual_samples=outcome.frames if outcome.status == JobStatus.SUCCEEDED else 0,
                    expected=(JobStatus.RUNNING,),
                    error=outcome.error if outcome.status == JobStatus.FAILED else None,
                    result_path=outcome.result_path if outcome.status == JobStatus.SUCCEEDED else None,
                    result_bytes=outcome.result_bytes if outcome.status == JobStatus.SUCCEEDED else None,
                )
        except Exception:
            _log.exception("could not record the end of job %s; will retry", job_id)
            return False
        if not deadline:
            self._cleanup(job_id)
        _log.info("job %s finished: %s (%d frames)", job_id, outcome.status, outcome.frames)
        return True
