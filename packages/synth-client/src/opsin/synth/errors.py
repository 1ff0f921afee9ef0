"""Errors raised by opsin-synth-client, client and service alike.

Every error derives from :class:`SynthError`, itself an :class:`opsin.core.OpsinError`; concrete errors also derive
from the builtin they really are, so ``except ValueError`` keeps working for callers who never heard of opsin::

    OpsinError
    └── SynthError
        ├── SessionInitializationError
        ├── ParameterValidationError (ValueError)
        ├── PreviewNotSupportedError (ValueError)
        ├── DownloadError
        ├── BatchTimeoutError (TimeoutError)
        ├── BatchJobTypeError
        ├── UnknownGeneratorError (KeyError)
        ├── UnknownUserError (LookupError)
        ├── GeneratorError (RuntimeError)
        ├── JobCancelledError
        ├── ServiceHTTPError (service side: rendered as an HTTP error response)
        └── ApiError
            ├── BatchSubmissionError
            │   └── InsufficientSamplesError
            ├── BatchEstimationError
            ├── BatchRetrievalError
            ├── BatchListRetrievalError
            ├── UsageStatsRetrievalError
            ├── AvailableGeneratorRetrievalError
            └── JobRetrievalError (LookupError)
"""

from __future__ import annotations

from typing import Any

from opsin.core import ExitCode, OpsinError

__all__ = [
    "ApiError",
    "exit_code_for_status",
    "AvailableGeneratorRetrievalError",
    "BatchEstimationError",
    "BatchJobTypeError",
    "BatchListRetrievalError",
    "BatchRetrievalError",
    "BatchSubmissionError",
    "BatchTimeoutError",
    "DownloadError",
    "GeneratorError",
    "InsufficientSamplesError",
    "JobCancelledError",
    "JobRetrievalError",
    "ParameterValidationError",
    "PreviewNotSupportedError",
    "ServiceHTTPError",
    "SessionInitializationError",
    "SynthError",
    "UnknownGeneratorError",
    "UnknownUserError",
    "UsageStatsRetrievalError",
]


class SynthError(OpsinError):
    """Base class of every opsin-synth-client error."""


def exit_code_for_status(status_code: int | None) -> int:
    """The command-line exit code for an HTTP status the service answered (``None``: no answer at all)."""
    if status_code in (401, 403):
        return ExitCode.AUTH
    if status_code in (404, 410):
        return ExitCode.NOT_FOUND
    if status_code == 402:
        return ExitCode.INSUFFICIENT_SAMPLES
    if status_code in (400, 413, 422):
        return ExitCode.USAGE
    return ExitCode.ERROR


class SessionInitializationError(SynthError):
    """A `Session` could not be created (server unreachable, bad token, unknown generator).

    Attributes:
        status_code: HTTP status of the refusal (``None`` when the server was not reached).
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def exit_code(self) -> int:
        """Command-line exit code chosen by the HTTP status."""
        return exit_code_for_status(self.status_code)


class ParameterValidationError(SynthError, ValueError):
    """Job parameters break the generator's schema or its cross-parameter rules."""


class PreviewNotSupportedError(SynthError, ValueError):
    """Previews were requested from a generator that does not render them."""


class DownloadError(SynthError):
    """One or more jobs of a batch could not be downloaded.

    Attributes:
        failed: job id -> reason, for every job that failed.
    """

    def __init__(self, message: str, failed: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failed: dict[str, str] = dict(failed or {})


class BatchTimeoutError(SynthError, TimeoutError):
    """A batch still had jobs in progress when the caller's timeout ran out."""


class BatchJobTypeError(SynthError):
    """An operation does not apply to the batch's job type (preview vs video)."""


class UnknownGeneratorError(SynthError, KeyError):
    """No generator is registered under the requested name."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a readable sentence is more useful here.
        return str(self.args[0]) if self.args else ""


class UnknownUserError(SynthError, LookupError):
    """No user of the service has the given name (administration commands)."""

    exit_code = 4  # ExitCode.NOT_FOUND


class GeneratorError(SynthError, RuntimeError):
    """A generator failed while rendering a job."""


class JobCancelledError(SynthError):
    """A running job noticed its cancellation and stopped."""


class ServiceHTTPError(SynthError):
    """An HTTP error the service's routes raise, answered with ``{"detail": detail, **extra}``.

    Args:
        status_code: HTTP status.
        detail: human-readable text (names the thing and the reason).
        headers: extra response headers.
        **extra: additional JSON fields (e.g. per-job ``errors``, ``required``/``available``).
    """

    def __init__(self, status_code: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"detail": self.detail, **self.extra}


class ApiError(SynthError):
    """The service answered with an unexpected status.

    Attributes:
        status_code: HTTP status of the response (``None`` when no response arrived).
        method: HTTP method of the request.
        url: URL of the request.
        detail: the service's ``detail`` text, when it sent one.
        body: the decoded JSON body (or text) of the response.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str = "",
        url: str = "",
        detail: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.url = url
        self.detail = detail
        self.body = body

    @property
    def exit_code(self) -> int:
        """Command-line exit code chosen by the HTTP status."""
        return exit_code_for_status(self.status_code)


class BatchSubmissionError(ApiError):
    """Submitting a batch failed."""


class InsufficientSamplesError(BatchSubmissionError):
    """The account's sample balance does not cover the batch's estimate.

    Attributes:
        required: samples the batch needs.
        available: samples the account has.
    """

    def __init__(self, message: str, *, required: int, available: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.required = required
        self.available = available


class BatchEstimationError(ApiError):
    """Estimating a batch's samples failed."""


class BatchRetrievalError(ApiError):
    """Reading a batch's detail or summary failed."""


class BatchListRetrievalError(ApiError):
    """Listing the user's batches failed."""


class UsageStatsRetrievalError(ApiError):
    """Reading the usage counts failed."""


class AvailableGeneratorRetrievalError(ApiError):
    """Listing the available generators failed."""


class JobRetrievalError(ApiError, LookupError):
    """A job could not be found (or belongs to another user, which reads the same)."""


# Private control flow of the batch download (never reaches a caller): one job's result URL expired, or one job failed.


class _UrlExpiredError(SynthError):
    """The result URL answered 403/410: a fresh summary gives a new one."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class _JobFailedError(SynthError):
    """One job could not be downloaded; the message is the reason recorded in ``DownloadError.failed``."""
