"""Small value types of the client: the job type of a batch and completed-job records."""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["CompletedJob", "JobType", "ValidCompletedJob"]


class JobType(enum.Enum):
    """Kind of jobs in a batch: single-frame previews or full (standard) videos."""

    PREVIEW = "preview"
    STANDARD = "standard"

    @classmethod
    def from_is_preview(cls, is_preview: bool) -> JobType:
        """``PREVIEW`` for ``True``, ``STANDARD`` for ``False``."""
        return cls.PREVIEW if is_preview else cls.STANDARD

    @property
    def is_preview(self) -> bool:
        """Whether jobs of this type are previews."""
        return self is JobType.PREVIEW


def _params_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(value))


@attrs.frozen
class CompletedJob:
    """A job that is no longer in progress.

    Attributes:
        job_id: the job's id.
        generator: generator name.
        params: the job's parameters (a private copy).
        result_url: signed download URL; ``None`` when the job failed or was cancelled.
    """

    job_id: str
    generator: str
    params: dict[str, Any] = attrs.field(converter=_params_copy, eq=False)
    result_url: str | None = None

    def try_into_valid_completed_job(self) -> ValidCompletedJob | None:
        """Return the :class:`ValidCompletedJob` when this job has a result URL, else ``None``."""
        return ValidCompletedJob.try_from_completed_job(self)


@attrs.frozen
class ValidCompletedJob:
    """A job that finished successfully and has a result to download.

    Attributes:
        job_id: the job's id.
        generator: generator name.
        params: the job's parameters (a private copy).
        result_url: signed download URL (expires; a fresh one comes with every summary).
    """

    job_id: str
    generator: str
    params: dict[str, Any] = attrs.field(converter=_params_copy, eq=False)
    result_url: str

    @classmethod
    def try_from_completed_job(cls, completed_job: CompletedJob) -> ValidCompletedJob | None:
        """Build from a :class:`CompletedJob`, or ``None`` when it has no result URL."""
        if completed_job.result_url is None:
            return None
        return cls(completed_job.job_id, completed_job.generator, completed_job.params, completed_job.result_url)
