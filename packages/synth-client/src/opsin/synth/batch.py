"""The :class:`Batch`: one submitted list of jobs, its status, completion, download, reruns and cancel."""

from __future__ import annotations

import copy
import time
import types
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from opsin.core import get_logger, progress
from opsin.synth import api
from opsin.synth._http import api_error, make_client, resolve_server
from opsin.synth.data_structures import CompletedJob, JobType, ValidCompletedJob
from opsin.synth.errors import BatchRetrievalError, BatchTimeoutError, JobRetrievalError

__all__ = ["Batch", "batch_from_detail"]

_log = get_logger("opsin.synth")


def _frozen_jobs(jobs: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return types.MappingProxyType(
        {str(job_id): types.MappingProxyType(copy.deepcopy(dict(params))) for job_id, params in jobs.items()}
    )


def _name(value: object) -> str:
    return "" if value is None else str(value)


@attrs.frozen(eq=False)
class Batch:
    """One submitted batch.

    Attributes:
        token: API token of the owner.
        batch_id: the batch's id.
        name: batch name (``""`` if none).
        jobs: read-only mapping job id -> params, in API (submission) order.
        server: service URL (trailing ``/``).
        job_type: ``JobType.PREVIEW`` or ``JobType.STANDARD``.
        http_client: the ``httpx.Client`` used for requests (a fresh one when not given).
    """

    token: str = attrs.field(repr=False)
    batch_id: str = attrs.field()
    name: str = attrs.field(converter=_name)
    jobs: Mapping[str, Mapping[str, Any]] = attrs.field(converter=_frozen_jobs)
    server: str = attrs.field(converter=resolve_server)
    job_type: JobType = JobType.STANDARD
    http_client: httpx.Client = attrs.field(factory=make_client, kw_only=True, repr=False)

    # -- construction ----------------------------------------------------------------------------------------

    @classmethod
    def from_api(
        cls, token: str, batch_id: str, server: str | None = None, *, http_client: httpx.Client | None = None
    ) -> Batch:
        """Load a batch by id (``GET /api/batch/{id}/``).

        Raises:
            BatchRetrievalError: unknown id (or another user's) or any other error status.
        """
        resolved = resolve_server(server)
        client = http_client or make_client()
        response = api.get_batch(token, str(batch_id), resolved, client=client)
        if response.status_code != 200:
            raise api_error(BatchRetrievalError, f"Reading batch {batch_id}", response, resolved)
        return batch_from_detail(token, response.json(), resolved, client)

    # -- static information ----------------------------------------------------------------------------------

    @property
    def job_ids(self) -> list[str]:
        """Job ids in submission order."""
        return list(self.jobs)

    @property
    def num_jobs(self) -> int:
        """Number of jobs."""
        return len(self.jobs)

    @property
    def job_params(self) -> list[dict[str, Any]]:
        """Deep copies of every job's params (mutating them never changes the batch)."""
        return [copy.deepcopy(dict(params)) for params in self.jobs.values()]

    @property
    def is_preview(self) -> bool:
        """Whether the batch holds previews."""
        return self.job_type is JobType.PREVIEW

    # -- dynamic information ---------------------------------------------------------------------------------

    def get_batch_data(self) -> dict[str, Any]:
        """The batch detail JSON (``GET /api/batch/{id}/``).

        Raises:
            BatchRetrievalError: the service answered with an error status.
        """
        response = api.get_batch(self.token, self.batch_id, self.server, client=self.http_client)
        if response.status_code != 200:
            raise api_error(BatchRetrievalError, f"Reading batch {self.batch_id}", response, self.server)
        return dict(response.json())

    def get_batch_summary_data(self) -> dict[str, Any]:
        """The batch summary JSON (``GET /api/batch/{id}/summary/``), with fresh result URLs.

        Raises:
            BatchRetrievalError: the service answered with an error status.
        """
        response = api.get_batch_summary(self.token, self.batch_id, self.server, client=self.http_client)
        if response.status_code != 200:
            raise api_error(BatchRetrievalError, f"Reading the summary of batch {self.batch_id}", response, self.server)
        return dict(response.json())

    def get_job_summary_data(self, job_id: str) -> dict[str, Any]:
        """The summary entry of one job.

        Raises:
            JobRetrievalError: the job is not part of this batch.
        """
        for entry in self.get_batch_summary_data()["job_runs"]:
            if entry["id"] == job_id:
                return dict(entry)
        msg = f"Job {job_id} is not part of batch {self.batch_id} on {self.server}"
        raise JobRetrievalError(msg, detail="job not in batch")

    def get_num_jobs_remaining(self) -> int:
        """Number of jobs still queued or running."""
        return sum(1 for entry in self.get_batch_summary_data()["job_runs"] if entry["in_progress"])

    def _completed_from(self, summary: Mapping[str, Any]) -> list[CompletedJob]:
        out = []
        for entry in summary["job_runs"]:
            if entry["in_progress"]:
                continue
            job_id = str(entry["id"])
            params = dict(self.jobs.get(job_id, {}))
            out.append(CompletedJob(job_id, str(entry.get("name", "")), params, entry.get("result_url")))
        return out

    def get_completed_jobs(self) -> list[CompletedJob]:
        """Every job no longer in progress (failed and cancelled ones have ``result_url=None``)."""
        return self._completed_from(self.get_batch_summary_data())

    def get_valid_completed_jobs(self) -> list[ValidCompletedJob]:
        """Only the finished jobs that have a result to download."""
        return _valid(self.get_completed_jobs())

    def await_completion(
        self, polling_interval: float = 10, timeout: float | None = None, *, progress: bool = True
    ) -> list[ValidCompletedJob]:
        """Block until no job is in progress; returns the valid completed jobs of the final poll.

        Polls at once, then every ``polling_interval`` seconds on a monotonic clock; never sleeps past the deadline
        nor after the last poll.

        Args:
            polling_interval: seconds between polls (float ok).
            timeout: seconds to wait at most; ``None`` waits until the service finishes every job (its per-job
                deadline guarantees that).
            progress: show a ``completed/total`` bar (terminals and notebooks only).

        Raises:
            BatchTimeoutError: jobs were still in progress when ``timeout`` ran out.
        """
        if polling_interval <= 0:
            msg = f"polling_interval must be positive, got {polling_interval}"
            raise ValueError(msg)
        start = time.monotonic()
        deadline = None if timeout is None else start + max(0.0, float(timeout))
        bar = _progress_bar(self.num_jobs, enabled=progress)
        try:
            while True:
                summary = self.get_batch_summary_data()
                remaining = sum(1 for entry in summary["job_runs"] if entry["in_progress"])
                bar.n = len(summary["job_runs"]) - remaining
                bar.refresh()
                if remaining == 0:
                    return _valid(self._completed_from(summary))
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    msg = (
                        f"Batch {self.batch_id}: {remaining} of {len(summary['job_runs'])} jobs still in progress "
                        f"after {now - start:.1f} s (timeout {timeout} s)"
                    )
                    raise BatchTimeoutError(msg)
                wait = polling_interval if deadline is None else min(polling_interval, deadline - now)
                time.sleep(max(0.0, wait))
        finally:
            bar.close()

    # -- results ---------------------------------------------------------------------------------------------

    def download(self, path: str | Any, overwrite: bool = False, quiet: bool = False, *, max_workers: int = 4) -> bool:
        """Download and safely extract every finished job into ``path``.

        Args:
            path: batch folder (created; holds ``batch_id.txt`` and one folder per job).
            overwrite: replace jobs already on disk (each swapped in once its new copy is complete).
            quiet: no progress bar.
            max_workers: parallel downloads.

        Returns:
            ``True`` when every job is finished and every valid result is on disk, ``False`` while jobs are still
            in progress (call again later).

        Raises:
            DownloadError: the folder belongs to another batch or is foreign, or jobs failed to download (their ids
                and reasons in ``failed``; jobs already on disk are never removed).
        """
        from opsin.synth._download import download_batch

        return download_batch(self, path, overwrite=overwrite, quiet=quiet, max_workers=max_workers)

    def get_job_params_seeded_for_rerun(self) -> list[dict[str, Any]]:
        """Copies of the job params with ``state`` set to each job's own id (where params have a ``state`` key)."""
        out = []
        for job_id, params in self.jobs.items():
            copied = copy.deepcopy(dict(params))
            if "state" in copied:
                copied["state"] = job_id
            out.append(copied)
        return out

    def cancel(self) -> dict[str, Any]:
        """Cancel queued and running jobs (finished ones stay); returns the summary (addition).

        Raises:
            BatchRetrievalError: the service answered with an error status.
        """
        response = api.post_batch_cancel(self.token, self.batch_id, self.server, client=self.http_client)
        if response.status_code != 200:
            raise api_error(BatchRetrievalError, f"Cancelling batch {self.batch_id}", response, self.server)
        return dict(response.json())


def _valid(completed: list[CompletedJob]) -> list[ValidCompletedJob]:
    return [v for v in (c.try_into_valid_completed_job() for c in completed) if v is not None]


def _progress_bar(total: int, *, enabled: bool) -> Any:
    kwargs: dict[str, Any] = {"leave": True}
    if not enabled:
        kwargs["disable"] = True
    return progress(total=total, desc="Jobs completed", unit="job", **kwargs)


def batch_from_detail(token: str, detail: Mapping[str, Any], server: str, client: httpx.Client | None) -> Batch:
    """Build a :class:`Batch` from a batch detail body (``job_runs`` in submission order)."""
    runs = list(detail.get("job_runs") or [])
    is_preview = bool(runs[0].get("is_preview")) if runs else bool(detail.get("is_preview", False))
    jobs = {str(run["id"]): dict(run.get("param_values") or {}) for run in runs}
    return Batch(
        token,
        str(detail["id"]),
        detail.get("name") or "",
        jobs,
        server,
        JobType.from_is_preview(is_preview),
        http_client=client or make_client(),
    )
