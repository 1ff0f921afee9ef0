"""Cancel: queued jobs end cancelled with their reservation returned; repeats are no-ops."""

from __future__ import annotations

from svc_helpers import batch_body, wait_batch


def test_cancel_queued_jobs_returns_reservations(make_service) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(start_dispatcher=False)  # nothing runs: every job stays queued until cancelled
    client = svc.user(samples=40)
    batch = client.post("/api/batch/", json=batch_body(6, param1=5)).json()
    assert client.get("/api/account/").json()["sample_balance"] == 10
    assert client.get("/api/account/").json()["reserved_samples"] == 30
    response = client.post(f"/api/batch/{batch['id']}/cancel/")
    assert response.status_code == 200
    summary = response.json()
    assert set(summary) == {"id", "job_runs"}
    assert [job["status"] for job in summary["job_runs"]] == ["cancelled"] * 6
    assert all(not job["in_progress"] and job["result_url"] is None for job in summary["job_runs"])
    account = client.get("/api/account/").json()
    assert account["sample_balance"] == 40
    assert account["reserved_samples"] == 0
    assert account["samples_rendered_total"] == 0
    # repeat calls change nothing (settlement happens once)
    assert client.post(f"/api/batch/{batch['id']}/cancel/").json() == summary
    assert client.get("/api/account/").json()["sample_balance"] == 40
    detail = client.get(f"/api/batch/{batch['id']}/").json()
    assert all(job["actual_samples"] == 0 and job["completed"] for job in detail["job_runs"])


def test_cancel_leaves_finished_jobs_untouched(service) -> None:  # type: ignore[no-untyped-def]
    client = service.user(samples=20)
    batch = client.post("/api/batch/", json=batch_body(2, param1=2)).json()
    before = wait_batch(client, batch["id"])
    after = client.post(f"/api/batch/{batch['id']}/cancel/").json()
    assert [job["status"] for job in after["job_runs"]] == ["succeeded", "succeeded"]
    assert [job["id"] for job in after["job_runs"]] == [job["id"] for job in before["job_runs"]]
    assert client.get("/api/account/").json()["sample_balance"] == 16
