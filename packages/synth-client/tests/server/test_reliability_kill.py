"""kill -9 the server while a batch renders, restart it: every job ends succeeded or failed, balance consistent."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from svc_helpers import ServerProcess, batch_body, user_client, wait_batch

from opsin.synth.server.models import Database, Job

VF = "visionfit-v0.4.0"


@pytest.mark.slow
def test_kill_dash_nine_then_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_url = f"sqlite:///{data / 'synth.db'}"
    server = ServerProcess(data).wait_ready()
    try:
        client = user_client(server.url, db_url, samples=5000)
        params = {"num_reps": 1, "frame_rate": 24, "image_width": 128, "image_height": 128}
        batch = client.post("/api/batch/", json=batch_body(4, generator=VF, **params)).json()
        estimate = sum(job["estimated_samples"] for job in batch["job_runs"])
        deadline = time.monotonic() + 60
        while True:  # wait until a job is mid-render
            statuses = [job["status"] for job in client.get(f"/api/batch/{batch['id']}/summary/").json()["job_runs"]]
            if "running" in statuses:
                break
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
        time.sleep(0.3)
        server.kill_group()  # SIGKILL: no shutdown code runs
    finally:
        server.stop()

    db = Database(db_url)
    with db.read() as session:
        interrupted = session.scalars(select(Job).where(Job.batch_id == batch["id"], Job.status == "running")).all()
    db.dispose()
    assert interrupted, "the kill should have caught at least one job running"

    restarted = ServerProcess(data).wait_ready()
    try:
        client = httpx.Client(base_url=restarted.url, headers=client.headers, timeout=30.0)
        summary = wait_batch(client, batch["id"], timeout=120)
        statuses = [job["status"] for job in summary["job_runs"]]
        assert set(statuses) <= {"succeeded", "failed"}
        detail = client.get(f"/api/batch/{batch['id']}/").json()
        errors = [job["error"] for job in detail["job_runs"]]
        assert statuses.count("succeeded") >= 1, (errors, restarted.log.read_text()[-3000:])
        rendered = sum(job["actual_samples"] for job in detail["job_runs"])
        for job in detail["job_runs"]:
            if job["status"] == "succeeded":
                assert job["actual_samples"] == job["estimated_samples"]
            else:
                assert job["actual_samples"] == 0
        account = client.get("/api/account/").json()
        assert account["reserved_samples"] == 0
        assert account["samples_rendered_total"] == rendered
        assert account["sample_balance"] == 5000 - rendered  # reservation settled exactly once per job
        assert rendered <= estimate
        for job in summary["job_runs"]:
            if job["status"] == "succeeded":
                assert (data / "results" / f"{job['id']}.zip").is_file()
        assert not list((data / "results").glob(".work-*"))
    finally:
        restarted.stop()
