"""Per-job deadline and cancelling a running job: both end the job with the reservation returned."""

from __future__ import annotations

import time

import pytest
from svc_helpers import TEST_GEN, batch_body, wait_batch

LONG = {"num_reps": 20, "frame_rate": 30, "image_width": 128, "image_height": 128}  # 1500 frames


@pytest.mark.slow
def test_running_job_cancelled_within_seconds(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(workers=1)
    client = svc.user(samples=10_000)
    batch = client.post("/api/batch/", json=batch_body(2, generator="visionfit-v0.4.0", **LONG)).json()
    reserved = sum(job["estimated_samples"] for job in batch["job_runs"])
    assert client.get("/api/account/").json()["reserved_samples"] == reserved
    deadline = time.monotonic() + 60
    while client.get(f"/api/batch/{batch['id']}/summary/").json()["job_runs"][0]["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    answer = client.post(f"/api/batch/{batch['id']}/cancel/").json()
    assert answer["job_runs"][1]["status"] == "cancelled"  # queued: cancelled at once
    started = time.monotonic()
    summary = wait_batch(client, batch["id"], timeout=30)
    assert time.monotonic() - started < 10
    assert [job["status"] for job in summary["job_runs"]] == ["cancelled", "cancelled"]
    assert all(job["result_url"] is None for job in summary["job_runs"])
    account = client.get("/api/account/").json()
    assert account == {**account, "sample_balance": 10_000, "reserved_samples": 0, "samples_rendered_total": 0}
    # the slot is free again
    after = client.post("/api/batch/", json=batch_body(1, param1=2)).json()
    assert wait_batch(client, after["id"])["job_runs"][0]["status"] == "succeeded"


@pytest.mark.slow
def test_job_past_its_deadline_fails(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(workers=2, job_deadline_base_s=3.0, job_deadline_per_sample_s=0.0)
    client = svc.user(samples=10_000)
    # finish a fast batch first, so the deadline below is not spent on worker start-up
    warm = client.post("/api/batch/", json=batch_body(2, generator=TEST_GEN)).json()
    assert {job["status"] for job in wait_batch(client, warm["id"])["job_runs"]} <= {"succeeded", "failed"}
    slow = client.post("/api/batch/", json=batch_body(1, generator="visionfit-v0.4.0", **LONG)).json()
    summary = wait_batch(client, slow["id"], timeout=30)
    assert summary["job_runs"][0]["status"] == "failed"
    job = client.get(f"/api/job_runs/{slow['job_runs'][0]['id']}/").json()
    assert "deadline" in job["error"]
    assert job["actual_samples"] == 0
    balance = client.get("/api/account/").json()["sample_balance"]
    assert balance == 10_000 - client.get("/api/account/").json()["samples_rendered_total"]  # slow job: no charge
    quick = client.post("/api/batch/", json=batch_body(1, generator=TEST_GEN)).json()
    assert wait_batch(client, quick["id"])["job_runs"][0]["status"] == "succeeded"
    assert client.get(f"/api/job_runs/{slow['job_runs'][0]['id']}/").json()["status"] == "failed"  # stays failed
