"""Operator features over HTTP: fair scheduling across users, result retention, disk use, legacy per-job endpoints."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
from sqlalchemy import select
from svc_helpers import TEST_GEN, Service, batch_body, wait_batch
from test_portal import _login

from opsin.synth.server.accounting import purge_expired_results
from opsin.synth.server.models import Job

VF = "visionfit-v0.4.0"


def test_one_users_queue_does_not_hold_back_another_user(make_service: Any) -> None:
    svc = make_service(workers=1)
    busy, other = svc.user(samples=100_000), svc.user(samples=100)
    params = {"num_reps": 1, "frame_rate": 6, "image_width": 128, "image_height": 128}
    flood = busy.post("/api/batch/", json=batch_body(12, generator=VF, **params)).json()
    time.sleep(0.2)
    single = other.post("/api/batch/", json=batch_body(1, param1=1)).json()
    wait_batch(other, single["id"], timeout=120)
    with svc.db.read() as session:
        started = session.scalars(select(Job.started).where(Job.id == single["job_runs"][0]["id"])).one()
        ahead = session.scalars(
            select(Job.id).where(Job.batch_id == flood["id"], Job.started.is_not(None), Job.started < started)
        ).all()
    assert len(ahead) <= 2  # at most the job running and one claimed before the other user's job arrived
    busy.post(f"/api/batch/{flood['id']}/cancel/")


def test_purged_results_answer_404_and_leave_accounting_alone(service: Service) -> None:
    client = service.user(samples=100)
    batch = client.post("/api/batch/", json=batch_body(2, param1=2)).json()
    summary = wait_batch(client, batch["id"])
    before = client.get("/api/account/").json()
    assert before["result_bytes"] > 0
    url = summary["job_runs"][0]["result_url"]
    assert httpx.get(url).status_code == 200
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    assert purge_expired_results(service.db, 30, now=future) >= 2
    gone = httpx.get(client.get(f"/api/batch/{batch['id']}/summary/").json()["job_runs"][0]["result_url"])
    assert gone.status_code == 404
    assert "purged" in gone.json()["detail"]
    job = client.get(f"/api/job_runs/{batch['job_runs'][0]['id']}/").json()
    assert job["status"] == "succeeded"
    assert job["result_purged"] is not None
    after = client.get("/api/account/").json()
    assert after["result_bytes"] == 0
    assert after["sample_balance"] == before["sample_balance"]
    assert not list(service.settings.results_dir.glob(f"{batch['job_runs'][0]['id']}.zip"))
    browser = _login(service, client.username, client.token)  # type: ignore[attr-defined]
    page = browser.get(f"/portal/batches/{batch['id']}/").text
    browser.close()
    assert page.count("purged 20") == 2  # "purged <date>" instead of a download link
    assert "/api/results/" not in page


def test_legacy_per_job_endpoints_are_one_job_batches(service: Service) -> None:
    client = service.user(samples=8)
    run = client.post("/api/jobs/run/", json={"name": TEST_GEN, "param_values": {"param1": 3}})
    assert run.status_code == 201, run.text
    body = run.json()
    assert set(body) == {"id", "batch_id"}
    assert client.get("/api/account/").json()["sample_balance"] == 5  # reserved like a batch
    preview_batch = client.post("/api/batch/", json=batch_body(1, is_preview=True)).json()
    joined = client.post(
        "/api/jobs/preview/", json={"name": TEST_GEN, "param_values": {}, "batch_id": preview_batch["id"]}
    ).json()
    assert joined["batch_id"] == preview_batch["id"]
    detail = client.get(f"/api/batch/{preview_batch['id']}/").json()
    assert [job["id"] for job in detail["job_runs"]][1] == joined["id"]
    assert client.post("/api/jobs/run/", json={"name": TEST_GEN, "batch_id": preview_batch["id"]}).status_code == 400
    assert client.post("/api/jobs/run/", json={"name": TEST_GEN, "param_values": {"param1": 9}}).status_code == 400
    assert client.post("/api/jobs/run/", json={"name": TEST_GEN, "param_values": {"param1": 5}}).status_code == 402
    stranger = service.user()
    foreign = stranger.post("/api/jobs/preview/", json={"name": TEST_GEN, "batch_id": preview_batch["id"]})
    assert foreign.status_code == 404
    key = {"Idempotency-Key": "legacy-1"}
    first = client.post("/api/jobs/preview/", json={"name": TEST_GEN}, headers=key)
    again = client.post("/api/jobs/preview/", json={"name": TEST_GEN}, headers=key)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.post("/api/jobs/run/", json={"name": TEST_GEN}, headers=key).status_code == 409
    wait_batch(client, body["batch_id"])
    assert client.get(f"/api/job_runs/{body['id']}/").json()["status"] == "succeeded"


def test_openapi_documents_400_not_422(service: Service) -> None:
    document = service.user().get("/api/schema/").json()
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    codes = {code for op in operations for code in op.get("responses", {})}
    assert "422" not in codes
    assert "400" in document["paths"]["/api/batch/"]["post"]["responses"]
    assert "/api/jobs/run/" in document["paths"]
