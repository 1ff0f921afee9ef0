"""The dispatcher: a thread that claims queued jobs FIFO and runs them on an ``opsin.core`` executor (§8).

Claiming is a conditional ``UPDATE ... WHERE status = 'queued'`` so two dispatchers (or a restart racing an old
process) never run the same job twice. Finished jobs are settled through :func:`accounting.settle_job` (state
compare-and-set plus balance change in one transaction). A job past its deadline (``base + per_sample x estimate``)
is failed and told to stop; jobs found ``running`` at start-up (the process died) are queued again, and so are jobs
whose worker process died, up to :data:`MAX_ATTEMPTS` runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from opsin.core import get_logger, make_executor
from opsin.synth.server._worker import FlagFileCancelEvent, run_job, warm_up
from opsin.synth.server.accounting import settle_job
from opsin.synth.server.models import Database, Job, JobStatus, utcnow
from opsin.synth.server.settings import Settings

__all__ = ["Dispatcher"]

_log = get_logger("opsin.synth.server.dispatcher")

MAX_ATTEMPTS = 2
"""Runs of a job whose worker process died (each death breaks the pool for every job in it) before it fails."""


@dataclass
class _Running:
    job_id: str
    future: cf.Future[Any]
    deadline: float
    limit_s: float


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
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: cf.Executor | None = None
        self._running: dict[str, _Running] = {}
        self._draining: dict[str, _Running] = {}

    # -- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue interrupted jobs, start the executor (warming its workers) and the dispatcher thread."""
        self.settings.results_dir.mkdir(parents=True, exist_ok=True)
        self.settings.cancel_dir.mkdir(parents=True, exist_ok=True)
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

        A job whose cancellation had been requested is settled as cancelled instead.
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
                        error="cancelled",
                    )
                else:
                    session.execute(
                        update(Job)
                        .where(Job.id == job.id, Job.status == JobStatus.RUNNING)
                        .values(status=JobStatus.QUEUED, started=None)
                    )
                    requeued += 1
        for leftover in self.settings.results_dir.glob(".work-*"):
            shutil.rmtree(leftover, ignore_errors=True)
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
        return make_executor("local", max_workers=self.capacity)

    def _warm_up(self) -> None:
        if self._executor is None or self.settings.scheduler:
            return
        for _ in range(self.capacity):
            with contextlib.suppress(Exception):
                self._executor.submit(warm_up)

    def _cancel_event(self, job_id: str) -> FlagFileCancelEvent:
        return FlagFileCancelEvent(self.settings.cancel_dir / job_id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                if not self._stop.is_set():
                    self._claim()
            except Exception:  # the loop must survive database hiccups; the next round retries
                _log.exception("dispatcher round failed")
                time.sleep(0.5)
            self._wake.wait(self.settings.poll_interval_s)
            self._wake.clear()

    def _claim(self) -> None:
        while len(self._running) + len(self._draining) < self.capacity and not self._stop.is_set():
            claimed = self._claim_one()
            if claimed is None:
                return
            job_id, generator, params, is_preview, seed, estimate = claimed
            cancel_event = self._cancel_event(job_id)
            if self._executor is None:
                return
            try:
                future = self._executor.submit(
                    run_job,
                    job_id,
                    generator,
                    params,
                    is_preview,
                    seed,
                    str(self.settings.results_dir),
                    cancel_event.path,
                )
            except Exception as exc:
                future = cf.Future()
                future.set_exception(exc)
            future.add_done_callback(lambda _f: self._wake.set())
            limit_s = self.settings.job_deadline_base_s + self.settings.job_deadline_per_sample_s * estimate
            self._running[job_id] = _Running(job_id, future, time.monotonic() + limit_s, limit_s)
            _log.info("job %s (%s) started", job_id, generator)

    def _claim_one(self) -> tuple[str, str, dict[str, Any], bool, int, int] | None:
        with self.db.read() as session:  # cheap look first: an idle poll takes no write lock
            if session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED).limit(1)).first() is None:
                return None
        while True:
            with self.db.write() as session:
                job = session.scalars(
                    select(Job)
                    .where(Job.status == JobStatus.QUEUED)
                    .order_by(Job.created, Job.position, Job.id)
                    .limit(1)
                ).first()
                if job is None:
                    return None
                result = session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == JobStatus.QUEUED)
                    .values(status=JobStatus.RUNNING, started=utcnow(), attempts=Job.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return (
                        job.id,
                        job.generator,
                        dict(job.params),
                        bool(job.is_preview),
                        int(job.seed),
                        int(job.estimated_samples),
                    )

    def _reap(self) -> None:
        now = time.monotonic()
        for job_id, entry in list(self._draining.items()):
            if entry.future.done():
                del self._draining[job_id]
                self._cleanup(job_id)
        for job_id, entry in list(self._running.items()):
            if entry.future.done():
                outcome = self._outcome(entry.future)
                if self._finish(job_id, outcome):
                    del self._running[job_id]
            elif now > entry.deadline:
                _log.warning("job %s exceeded its deadline; failing it", job_id)
                self._cancel_event(job_id).set()
                entry.future.cancel()
                outcome = ("failed", 0, f"job {job_id} exceeded its deadline of {entry.limit_s:g} s")
                if self._finish(job_id, outcome, deadline=True):
                    del self._running[job_id]
                    if not entry.future.done():
                        self._draining[job_id] = entry

    def _cleanup(self, job_id: str) -> None:
        """Drop the job's cancel flag and any work folder a dead worker left behind."""
        self._cancel_event(job_id).clear()
        for leftover in self.settings.results_dir.glob(f".work-{job_id}-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _outcome(self, future: cf.Future[Any]) -> tuple[str, int, str]:
        if future.cancelled():
            return ("cancelled", 0, "cancelled before it started")
        exc = future.exception()
        if exc is None:
            status, frames, detail = future.result()
            return (str(status), int(frames), str(detail))
        if isinstance(exc, cf.BrokenExecutor):
            if self._executor is not None and getattr(self._executor, "_broken", False):
                self._replace_executor()
            return ("requeue", 0, f"worker process died: {exc}")
        return ("failed", 0, f"{type(exc).__name__}: {exc}")

    def _replace_executor(self) -> None:
        old = self._executor
        self._executor = self._make_executor()
        self._warm_up()
        if old is not None:
            with contextlib.suppress(Exception):
                old.shutdown(wait=False, cancel_futures=True)

    def _finish(self, job_id: str, outcome: tuple[str, int, str], *, deadline: bool = False) -> bool:
        status, frames, detail = outcome
        try:
            with self.db.write() as session:
                job = session.get(Job, job_id)
                if job is None:
                    return True
                if job.cancel_requested and not deadline:
                    status, frames = JobStatus.CANCELLED, 0
                elif status == "requeue":
                    if job.attempts < MAX_ATTEMPTS:
                        # a dead worker breaks the whole pool: innocent neighbours get another try
                        session.execute(
                            update(Job)
                            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                            .values(status=JobStatus.QUEUED, started=None)
                            .execution_options(synchronize_session=False)
                        )
                        _log.warning("job %s lost its worker process; queued again", job_id)
                        self._cleanup(job_id)
                        return True
                    status = JobStatus.FAILED
                    detail = f"{detail} (after {job.attempts} attempts)"
                if status == JobStatus.SUCCEEDED:
                    settle_job(
                        session,
                        job_id,
                        new_status=JobStatus.SUCCEEDED,
                        actual_samples=frames,
                        expected=(JobStatus.RUNNING,),
                        result_path=detail,
                    )
                else:
                    new_status = JobStatus.CANCELLED if status == "cancelled" else JobStatus.FAILED
                    settle_job(
                        session,
                        job_id,
                        new_status=new_status,
                        actual_samples=0,
                        expected=(JobStatus.RUNNING,),
                        error=None if new_status == JobStatus.CANCELLED else detail,
                    )
                    if job.cancel_requested and detail.endswith(".zip"):
                        Path(detail).unlink(missing_ok=True)
        except Exception:
            _log.exception("could not record the end of job %s; will retry", job_id)
            return False
        if not deadline:
            self._cleanup(job_id)
        _log.info("job %s finished: %s (%d frames)", job_id, status, frames)
        return True
