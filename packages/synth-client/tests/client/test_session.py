"""Session and Batch semantics against the real service."""

from __future__ import annotations

import copy
import datetime as dt
import time
import uuid

import httpx
import numpy as np
import pytest

from opsin.synth import Batch, JobType, Session, get_available_generators
from opsin.synth.errors import (
    BatchRetrievalError,
    BatchTimeoutError,
    JobRetrievalError,
    ParameterValidationError,
    PreviewNotSupportedError,
    SessionInitializationError,
)
from opsin.synth.visionfit.api import VisionFitSession

from ._helpers import TEST_GENERATOR, completed_batch


@pytest.fixture(scope="module")
def session(service) -> Session:
    return Session(service.token, TEST_GENERATOR, service.url)


def test_session_init_errors(service) -> None:
    with pytest.raises(SessionInitializationError, match="Invalid token"):
        Session("0" * 40, TEST_GENERATOR, service.url)
    with pytest.raises(SessionInitializationError, match="Invalid generator name nope"):
        Session(service.token, "nope", service.url)
    with pytest.raises(ValueError, match="visionfit"):
        VisionFitSession(service.token, TEST_GENERATOR, service.url)
    assert TEST_GENERATOR in get_available_generators(service.token, service.url)


def test_unreachable_server_fails_fast() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(SessionInitializationError, match="Could not reach"):
        Session("t" * 40, TEST_GENERATOR, f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 10


def test_schema_views(session: Session, service) -> None:
    assert session.server == service.url
    assert session.server.endswith("/")
    assert list(session.parameter_info) == ["param1", "param2", "param3", "state"]
    assert session.default_job == {"param1": 1, "param2": 2.5, "param3": "CHOICE_1", "state": None}
    info = session.generator_info
    info["params"].clear()
    assert len(session.parameter_info) == 4  # a copy
    import random

    random.seed(3)
    first = [session.random_job() for _ in range(20)]
    random.seed(3)
    assert first == [session.random_job() for _ in range(20)]
    assert {j["param1"] for j in first} <= {1, 2, 3, 4, 5}
    assert all(-5 <= j["param2"] <= 5 for j in first)
    assert all(j["state"] is None for j in first)
    assert session.randomize_unspecified_params({"param1": 4})["param1"] == 4


def test_submit_checks_in_order(session: Session) -> None:
    with pytest.raises(TypeError):
        session.submit({"param1": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        session.submit([])
    with pytest.raises(TypeError, match="index 1"):
        session.submit([{}, 3])  # type: ignore[list-item]
    with pytest.raises(ParameterValidationError) as info:
        session.submit([{"param1": 1}, {"param1": 25, "bogus": 1}])
    text = str(info.value)
    assert "job param index 1: " in text
    assert "job param index 0" not in text
    assert "Unsupported parameters" in text
    assert "violated constraint `max` (5) with value 25" in text
    assert session.validate_job_params([{"param1": np.int64(2), "param2": "1.5"}, {"param1": True}]) == [
        None,
        "\n\nType casting violations:\nInput parameter `param1` with value True could not be cast to `int`\n",
    ]


def test_submit_fills_normalises_and_estimates(session: Session) -> None:
    jobs = [{"param1": np.int64(3), "param2": "1.5"}, {}]
    original = copy.deepcopy(jobs)
    assert session.estimate_samples(jobs) == [3, 1]
    assert session.estimate_samples(jobs, is_preview=True) == [1, 1]
    batch = session.submit(jobs, batch_name="filled")
    assert jobs[0]["param2"] == original[0]["param2"]  # caller's dicts untouched
    assert batch.job_params == [
        {"param1": 3, "param2": 1.5, "param3": "CHOICE_1", "state": None},
        session.default_job,
    ]
    assert type(batch.job_params[0]["param1"]) is int
    randomised = session.submit([{"param1": 1}] * 6, random_sample=True, is_preview=True)
    assert randomised.job_type is JobType.PREVIEW
    assert len({p["param2"] for p in randomised.job_params}) == 6  # a fresh draw per job
    for b in (batch, randomised):
        b.cancel()


def test_idempotency_key_replays(session: Session) -> None:
    key = str(uuid.uuid4())
    first = session.submit([{"param1": 1}], idempotency_key=key)
    again = session.submit([{"param1": 1}], idempotency_key=key)
    assert again.batch_id == first.batch_id
    assert again.job_ids == first.job_ids
    other = session.submit([{"param1": 1}])
    assert other.batch_id != first.batch_id


def test_batch_views_are_copies_and_history(session: Session) -> None:
    batch = completed_batch(session, [{"param1": 2}, {"param1": 1, "param3": "CHOICE_2"}], name="history")
    params = batch.job_params
    params[0]["param1"] = 5
    assert batch.job_params[0]["param1"] == 2
    with pytest.raises(TypeError):
        batch.jobs[batch.job_ids[0]]["param1"] = 5  # type: ignore[index]
    again = session.batch_from_api(batch.batch_id)
    assert again.job_ids == batch.job_ids
    assert again.name == "history"
    assert again.job_params == batch.job_params
    assert again.job_type is JobType.STANDARD
    summary = batch.get_job_summary_data(batch.job_ids[1])
    assert summary["id"] == batch.job_ids[1]
    assert summary["result_url"]
    with pytest.raises(JobRetrievalError):
        batch.get_job_summary_data(str(uuid.uuid4()))
    completed = batch.get_completed_jobs()
    assert [c.job_id for c in completed] == batch.job_ids
    assert [v.job_id for v in batch.get_valid_completed_jobs()] == batch.job_ids
    recent = session.get_batches_last_n_days(1)
    assert recent[0]["created"] >= recent[-1]["created"]  # newest first
    mine = next(b for b in recent if b["batch_id"] == batch.batch_id)
    assert mine["created"].tzinfo is not None
    assert mine["num_jobs"] == 2
    usage = session.get_usage_stats_last_n_days(1)
    counts = {c["generator"]: c for c in usage["counts_by_generator"]}
    assert counts[TEST_GENERATOR]["non_preview_samples_rendered"] >= 3
    account = session.get_account()
    assert account["username"] == "alice"
    assert account["samples_rendered_total"] >= 3
    with pytest.raises(BatchRetrievalError):
        session.batch_from_api(str(uuid.uuid4()))


def test_await_completion_timeout_and_cancel(session: Session) -> None:
    slow = Session(session.token, "visionfit-v0.4.0", session.server)  # seconds per job, unlike the test generator
    batch = slow.submit([{"num_reps": 20, "image_width": 128, "image_height": 128}] * 6, batch_name="to cancel")
    start = time.monotonic()
    with pytest.raises(BatchTimeoutError, match="still in progress"):
        batch.await_completion(polling_interval=5, timeout=0.3, progress=False)
    assert time.monotonic() - start < 3  # never sleeps past the deadline
    summary = batch.cancel()
    assert summary["id"] == batch.batch_id
    batch.await_completion(polling_interval=0.2, timeout=30, progress=False)
    statuses = {run["status"] for run in batch.get_batch_summary_data()["job_runs"]}
    assert "cancelled" in statuses
    assert statuses <= {"cancelled", "succeeded"}
    valid = {v.job_id for v in batch.get_valid_completed_jobs()}
    assert all(c.result_url is None for c in batch.get_completed_jobs() if c.job_id not in valid)


def test_reruns_and_sweeps(session: Session) -> None:
    base = completed_batch(session, [{"param1": 2, "param2": -1.0}], name="base", preview=True)
    (base_id,) = base.job_ids
    seeded = base.get_job_params_seeded_for_rerun()
    assert seeded == [{**base.job_params[0], "state": base_id}]
    assert base.job_params[0]["state"] is None
    swept = session.expand_overrides_across_each_preview_state([base_id], [{"param1": 1}, {"param1": 3}])
    assert swept == [{**base.job_params[0], "param1": v, "state": base_id} for v in (1, 3)]
    with pytest.raises(ParameterValidationError, match="`nope`"):
        session.expand_overrides_across_each_preview_state([base_id], [{"nope": 1}])
    with pytest.raises(JobRetrievalError, match="video"):
        session.expand_overrides_across_each_video_state([base_id], [{"param1": 1}])
    rerun = session.submit_rerun_batch_with_overrides_videos(base_id, [{"param3": "CHOICE_2"}], batch_name="rr")
    assert rerun.job_type is JobType.STANDARD
    assert rerun.job_params[0]["state"] == base_id
    assert rerun.job_params[0]["param2"] == -1.0
    assert rerun.job_params[0]["param3"] == "CHOICE_2"
    with pytest.raises(ValueError, match="not a previous"):
        session.submit_rerun_batch_with_overrides_previews(str(uuid.uuid4()), [{}])
    rerun.cancel()


def test_usage_range_rejects_reversed_window(service) -> None:
    from opsin.synth.api import get_usage_datetime_range

    now = dt.datetime.now()
    with pytest.raises(ValueError, match="before"):
        get_usage_datetime_range(service.token, now, now - dt.timedelta(hours=1), service.url)
    response = get_usage_datetime_range(service.token, now - dt.timedelta(days=1), None, service.url)
    assert response.status_code == 200
    start = dt.datetime.fromisoformat(response.json()["start_time"])
    assert abs((start - (now - dt.timedelta(days=1)).astimezone()).total_seconds()) < 1


def test_requests_carry_user_agent_and_timeouts(service) -> None:
    seen: list[httpx.Request] = []

    def hook(request: httpx.Request) -> None:
        seen.append(request)

    from opsin.synth._http import make_client

    client = make_client(event_hooks={"request": [hook]})
    Session(service.token, TEST_GENERATOR, service.url, http_client=client)
    assert seen[0].headers["User-Agent"].startswith("opsin-synth-client/")
    assert seen[0].headers["Authorization"] == f"Token {service.token}"
    assert client.timeout.connect == 10
    assert client.timeout.read == 60


def test_preview_not_supported_message(service) -> None:
    s = Session(service.token, TEST_GENERATOR, service.url)
    object.__setattr__(s, "_generator_info", {**s.generator_info, "options": {"preview": False}})
    with pytest.raises(PreviewNotSupportedError, match=f"Previews are not supported for `{TEST_GENERATOR}`"):
        s.submit([{}], is_preview=True)


def test_batch_from_api_classmethod(service, session: Session) -> None:
    batch = session.submit([{"param1": 1}], is_preview=True)
    again = Batch.from_api(service.token, batch.batch_id, service.url)
    assert again.job_type is JobType.PREVIEW
    assert again.job_ids == batch.job_ids


class _LoseFirstPostResponse(httpx.BaseTransport):
    """Real transport; the first batch POST reaches the service but its response is 'lost' (a read error)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/api/batch/":
            self.keys.append(request.headers.get("Idempotency-Key"))
            if len(self.keys) == 1:
                response.read()
                raise httpx.ReadError("connection dropped after the request was processed", request=request)
        return response


def test_submit_retry_after_lost_response_creates_one_batch(service) -> None:
    transport = _LoseFirstPostResponse()
    with httpx.Client(transport=transport) as client:
        sesh = Session(service.token, TEST_GENERATOR, service.url, http_client=client)
        before = {b["batch_id"] for b in sesh.get_batches_last_n_days(1)}
        batch = sesh.submit([{"param1": 1}], batch_name="lost response")
        after = {b["batch_id"] for b in sesh.get_batches_last_n_days(1)}
        batch.cancel()
    assert len(transport.keys) == 2
    assert transport.keys[0] == transport.keys[1] is not None
    assert after - before == {batch.batch_id}  # the retry replayed the first batch, no second one


def test_await_completion_returns_at_once_when_done(session: Session) -> None:
    batch = completed_batch(session, [{"param1": 1}])
    start = time.monotonic()
    jobs = batch.await_completion(polling_interval=10, timeout=60, progress=False)
    assert time.monotonic() - start < 2  # one poll, no sleep after it
    assert [j.job_id for j in jobs] == batch.job_ids
