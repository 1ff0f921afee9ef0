"""The :class:`Session`: a token bound to one generator.

A session knows the generator's schema, validates, fills and samples job parameters, estimates and submits
batches, lists history and usage, and builds reruns and parameter sweeps seeded from earlier jobs.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import httpx

from opsin.core import get_logger
from opsin.synth import _validation, api
from opsin.synth._http import api_error, error_detail, make_client, resolve_server
from opsin.synth.batch import Batch, batch_from_detail
from opsin.synth.errors import (
    ApiError,
    AvailableGeneratorRetrievalError,
    BatchEstimationError,
    BatchListRetrievalError,
    BatchSubmissionError,
    InsufficientSamplesError,
    JobRetrievalError,
    ParameterValidationError,
    PreviewNotSupportedError,
    SessionInitializationError,
    UsageStatsRetrievalError,
)
from opsin.synth.sampling import RandomLike, default_job, random_job, sample_input

__all__ = ["Session", "get_available_generators"]

_log = get_logger("opsin.synth")


def get_available_generators(
    token: str, server: str | None = None, *, http_client: httpx.Client | None = None
) -> list[str]:
    """Names of the generators the service offers (``GET /api/jobs/``).

    Raises:
        AvailableGeneratorRetrievalError: the service answered with an error status.
    """
    resolved = resolve_server(server)
    response = api.get_all_generator_data(token, resolved, client=http_client)
    if response.status_code != 200:
        raise api_error(AvailableGeneratorRetrievalError, "Listing generators", response, resolved)
    return [str(item["name"]) for item in response.json()]


def _check_job_list(job_params: Any) -> None:
    if not isinstance(job_params, list):
        msg = f"job_params must be a list of dicts, got {type(job_params).__name__}"
        raise TypeError(msg)
    if not job_params:
        msg = "job_params is empty: a batch needs at least one job"
        raise ValueError(msg)
    for index, job in enumerate(job_params):
        if not isinstance(job, dict):
            msg = f"job param index {index} must be a dict, got {type(job).__name__}"
            raise TypeError(msg)


@attrs.define(eq=False)
class Session:
    """A token and a target generator, with the generator's schema loaded.

    Construct it as ``Session(token, generator, server=None, *, http_client=None)``.

    Attributes:
        token: API token.
        generator: generator name, e.g. ``visionfit-v0.4.0``.
        server: service URL; ``None`` = ``OPSIN_SYNTH_SERVER`` or the local default (stored with a trailing ``/``).
        http_client: any ``httpx.Client`` to send requests with (tests pass a FastAPI ``TestClient``).

    Raises:
        SessionInitializationError: the server is unreachable, the token is refused or the generator is unknown.
    """

    token: str = attrs.field(repr=False)
    generator: str = attrs.field()
    server: str | None = attrs.field(default=None, converter=resolve_server)
    http_client: httpx.Client | None = attrs.field(default=None, kw_only=True, repr=False)
    _generator_info: dict[str, Any] = attrs.field(init=False, factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.http_client is None:
            self.http_client = make_client()
        try:
            response = api.get_single_generator_data(self.token, self.generator, self.server, client=self.http_client)
        except httpx.TransportError as exc:
            msg = f"Could not reach the service at {self.server}: {exc}"
            raise SessionInitializationError(msg) from exc
        status = response.status_code
        if status in (401, 403):
            msg = f"Invalid token (HTTP {status} from {self.server})"
            raise SessionInitializationError(msg, status_code=status)
        if status == 404:
            msg = f"Invalid generator name {self.generator} (not offered by {self.server})"
            raise SessionInitializationError(msg, status_code=status)
        if status != 200:
            detail, _ = error_detail(response)
            msg = f"Could not load generator {self.generator} from {self.server}: HTTP {status}: {detail}"
            raise SessionInitializationError(msg, status_code=status)
        self._generator_info = response.json()

    # -- schema ---------------------------------------------------------------------------------------------------

    @property
    def _client(self) -> httpx.Client:
        assert self.http_client is not None
        return self.http_client

    @property
    def _server(self) -> str:
        assert self.server is not None
        return self.server

    @property
    def generator_info(self) -> dict[str, Any]:
        """A copy of the generator's description (name, version, options, params)."""
        return copy.deepcopy(self._generator_info)

    @property
    def parameter_info(self) -> dict[str, dict[str, Any]]:
        """``{name: {"type", "default_value", "options", "description"}}`` in schema order."""
        return {
            str(p["name"]): {
                "type": p.get("type"),
                "default_value": copy.deepcopy(p.get("default_value")),
                "options": copy.deepcopy(p.get("options")),
                "description": p.get("description", ""),
            }
            for p in self._generator_info.get("params", [])
        }

    @property
    def supports_preview(self) -> bool:
        """Whether the generator renders previews (``options.preview``)."""
        return bool((self._generator_info.get("options") or {}).get("preview", False))

    @property
    def default_job(self) -> dict[str, Any]:
        """``{name: default_value}`` for every parameter (``state: None`` included)."""
        return default_job(self.parameter_info)

    def random_job(self, rng: random.Random | None = None) -> dict[str, Any]:
        """One uniform draw per parameter (choices, inclusive int ranges, real ranges; others keep defaults)."""
        return random_job(self.parameter_info, rng)

    def randomize_unspecified_params(self, job_params: Mapping[str, Any]) -> dict[str, Any]:
        """``{**random_job(), **job_params}``."""
        return {**self.random_job(), **job_params}

    def sample_input(self, *, rng: RandomLike | None = None, **overrides: Any) -> dict[str, Any]:
        """One job dict: ``overrides`` kept (validated), everything else drawn uniformly from the schema.

        :class:`~opsin.synth.visionfit.api.VisionFitSession` applies the VisionFit joint rules instead.

        Raises:
            ParameterValidationError: unknown key or bad value among ``overrides``.
        """
        return sample_input(self.parameter_info, rng, **overrides)

    def validate_job_params(self, job_params: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """One ``None`` (valid) or violation text per job dict."""
        return _validation.validate_job_params(self.parameter_info, job_params)

    # -- estimation and submission --------------------------------------------------------------------------------

    def _prepare(self, job_params: Any, is_preview: bool, random_sample: bool) -> list[dict[str, Any]]:
        _check_job_list(job_params)
        if is_preview and not self.supports_preview:
            msg = f"Previews are not supported for `{self.generator}`"
            raise PreviewNotSupportedError(msg)
        info = self.parameter_info
        self._raise_for_errors(_validation.validate_job_params(info, job_params))
        filled = [{**(self.random_job() if random_sample else default_job(info)), **jp} for jp in job_params]
        self._raise_for_errors(_validation.validate_job_params(info, filled))
        return [_validation.normalize_job_params(info, jp) for jp in filled]

    @staticmethod
    def _raise_for_errors(errors: Sequence[str | None]) -> None:
        text = "".join(f"\n\njob param index {i}: {e}" for i, e in enumerate(errors) if e is not None)
        if text:
            raise ParameterValidationError(text)

    def _body(self, jobs: list[dict[str, Any]], is_preview: bool, batch_name: str | None) -> dict[str, Any]:
        return {
            "name": batch_name or "",
            "job_runs": [{"name": self.generator, "is_preview": bool(is_preview), "param_values": jp} for jp in jobs],
        }

    def estimate_samples(
        self, job_params: list[dict[str, Any]], is_preview: bool = False, batch_name: str | None = None
    ) -> list[int]:
        """Samples (frames) each job would render, without charging (unspecified params take defaults).

        Raises:
            BatchEstimationError: the service refused the batch.
        """
        jobs = self._prepare(job_params, is_preview, random_sample=False)
        response = api.post_batch_estimate(
            self.token, self._body(jobs, is_preview, batch_name), self._server, client=self._client
        )
        if response.status_code != 200:
            raise api_error(BatchEstimationError, f"Estimating {len(jobs)} jobs", response, self._server)
        return [int(n) for n in response.json()]

    def submit(
        self,
        job_params: list[dict[str, Any]],
        is_preview: bool = False,
        batch_name: str | None = None,
        random_sample: bool = False,
        *,
        idempotency_key: str | None = None,
    ) -> Batch:
        """Validate, fill and submit a batch; returns its :class:`Batch`.

        Args:
            job_params: one dict per job (partial dicts are filled).
            is_preview: render one-frame previews instead of videos.
            batch_name: name shown in the portal.
            random_sample: fill unspecified params with uniform draws instead of defaults.
            idempotency_key: key sent as ``Idempotency-Key`` (a new UUID4 when ``None``); retries reuse it.

        Raises:
            TypeError / ValueError: ``job_params`` is not a non-empty list of dicts.
            PreviewNotSupportedError: previews requested from a generator without them.
            ParameterValidationError: a job breaks the schema.
            InsufficientSamplesError: the balance does not cover the estimate.
            BatchSubmissionError: any other refusal.
        """
        jobs = self._prepare(job_params, is_preview, random_sample)
        key = idempotency_key or str(uuid.uuid4())
        try:
            response = api.post_batch(
                self.token,
                self._body(jobs, is_preview, batch_name),
                self._server,
                idempotency_key=key,
                client=self._client,
            )
        except httpx.TransportError as exc:
            msg = f"Submitting {len(jobs)} jobs to {self._server} failed: {exc} (Idempotency-Key {key})"
            raise BatchSubmissionError(msg, method="POST", url=f"{self._server}api/batch/") from exc
        if response.status_code == 402:
            body = error_detail(response)[1]
            numbers = body if isinstance(body, dict) else {}
            raise api_error(
                InsufficientSamplesError,
                f"Submitting {len(jobs)} jobs (insufficient samples)",
                response,
                self._server,
                required=int(numbers.get("required", -1)),
                available=int(numbers.get("available", -1)),
            )
        if response.status_code != 201:
            error = api_error(BatchSubmissionError, f"Submitting {len(jobs)} jobs", response, self._server)
            errors = error.body.get("errors") if isinstance(error.body, dict) else None
            if errors:
                listed = "".join(f"\njob param index {i}: {e}" for i, e in enumerate(errors) if e)
                error.args = (f"{error.args[0]}{listed}",)
            raise error
        batch = batch_from_detail(self.token, response.json(), self._server, self._client)
        _log.info("submitted batch %s (%d jobs) to %s", batch.batch_id, batch.num_jobs, self._server)
        return batch

    # -- history -------------------------------------------------------------------------------------------------

    def batch_from_api(self, batch_id: str) -> Batch:
        """The :class:`Batch` with id ``batch_id`` (same token and server)."""
        return Batch.from_api(self.token, batch_id, self._server, http_client=self._client)

    def get_batches_last_n_days(self, n_days: float) -> list[dict[str, Any]]:
        """Batches created in the last ``n_days`` days, newest first (``batch_id`` and an aware ``created``).

        Raises:
            BatchListRetrievalError: the service answered with an error status.
        """
        end = dt.datetime.now(dt.UTC)
        start = end - dt.timedelta(days=n_days)
        response = api.get_batch_list(self.token, start, end, self._server, client=self._client)
        if response.status_code != 200:
            raise api_error(BatchListRetrievalError, "Listing batches", response, self._server)
        out = []
        for item in reversed(response.json()):
            entry = dict(item)
            entry["batch_id"] = entry.pop("id")
            created = dt.datetime.fromisoformat(str(entry["created"]))
            entry["created"] = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
            out.append(entry)
        return out

    def get_usage_stats_last_n_days(self, n_days: float) -> dict[str, Any]:
        """Frames rendered per generator over the last ``n_days`` days (the service's usage-counts endpoint).

        Raises:
            UsageStatsRetrievalError: the service answered with an error status.
        """
        end = dt.datetime.now(dt.UTC)
        response = api.get_usage_datetime_range(
            self.token, end - dt.timedelta(days=n_days), end, self._server, client=self._client
        )
        if response.status_code != 200:
            raise api_error(UsageStatsRetrievalError, "Reading usage", response, self._server)
        return dict(response.json())

    def get_account(self) -> dict[str, Any]:
        """Username, ``sample_balance``, ``reserved_samples`` and ``samples_rendered_total`` (addition).

        Raises:
            ApiError: the service answered with an error status.
        """
        response = api.get_account(self.token, self._server, client=self._client)
        if response.status_code != 200:
            raise api_error(ApiError, "Reading the account", response, self._server)
        return dict(response.json())

    # -- reruns and sweeps ---------------------------------------------------------------------------------------

    def _job_params_of(self, job_id: str, is_preview: bool) -> dict[str, Any]:
        fetch = api.get_job_preview if is_preview else api.get_job_run
        response = fetch(self.token, job_id, self._server, client=self._client)
        kind = "preview" if is_preview else "video"
        if response.status_code != 200:
            raise api_error(JobRetrievalError, f"Reading {kind} job {job_id}", response, self._server)
        return dict(response.json()["param_values"])

    def _check_override_keys(self, override_params: Sequence[Mapping[str, Any]]) -> None:
        info = self.parameter_info
        bad = sorted({key for override in override_params for key in override if key not in info})
        if bad:
            msg = f"Override keys not supported by `{self.generator}`: {', '.join(f'`{k}`' for k in bad)}"
            raise ParameterValidationError(msg)

    def _expand(
        self, base_state_ids: Sequence[str], override_params: Sequence[Mapping[str, Any]], is_preview: bool
    ) -> list[dict[str, Any]]:
        self._check_override_keys(override_params)
        out: list[dict[str, Any]] = []
        for base_id in base_state_ids:
            original = self._job_params_of(str(base_id), is_preview)
            out.extend({**original, **override, "state": str(base_id)} for override in override_params)
        return out

    def expand_overrides_across_each_preview_state(
        self, base_state_ids: Sequence[str], override_params: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """For each preview id (in order) and each override (in order): its params, the override, ``state = id``.

        Raises:
            ParameterValidationError: an override key is not a parameter.
            JobRetrievalError: an id is not a preview job of this user.
        """
        return self._expand(base_state_ids, override_params, is_preview=True)

    def expand_overrides_across_each_video_state(
        self, base_state_ids: Sequence[str], override_params: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """As :meth:`expand_overrides_across_each_preview_state`, for video (standard) job ids."""
        return self._expand(base_state_ids, override_params, is_preview=False)

    def _rerun(
        self,
        base_state_id: str,
        override_params: Sequence[Mapping[str, Any]],
        batch_name: str | None,
        is_preview: bool,
    ) -> Batch:
        self._check_override_keys(override_params)
        original: dict[str, Any] | None = None
        for kind_is_preview in (True, False):
            try:
                original = self._job_params_of(str(base_state_id), kind_is_preview)
                break
            except JobRetrievalError as exc:
                if exc.status_code != 404:
                    raise
        if original is None:
            msg = f"{base_state_id} is not a previous preview or video job of this user on {self._server}"
            raise ValueError(msg)
        jobs = [{**original, **override, "state": str(base_state_id)} for override in override_params]
        return self.submit(jobs, is_preview=is_preview, batch_name=batch_name)

    def submit_rerun_batch_with_overrides_previews(
        self, base_state_id: str, override_params: Sequence[Mapping[str, Any]], batch_name: str | None = None
    ) -> Batch:
        """Submit previews seeded from job ``base_state_id`` (preview or video), one per override.

        Raises:
            ValueError: the id is not a previous job of this user.
        """
        return self._rerun(base_state_id, override_params, batch_name, is_preview=True)

    def submit_rerun_batch_with_overrides_videos(
        self, base_state_id: str, override_params: Sequence[Mapping[str, Any]], batch_name: str | None = None
    ) -> Batch:
        """Submit videos seeded from job ``base_state_id`` (preview or video), one per override.

        Raises:
            ValueError: the id is not a previous job of this user.
        """
        return self._rerun(base_state_id, override_params, batch_name, is_preview=False)
