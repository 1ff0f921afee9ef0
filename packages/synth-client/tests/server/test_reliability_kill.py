"""kill -9 the server while a batch renders, restart it: every job ends succeeded or failed, balance consistent."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from svc_helpers import ServerProcess, batch_body, user_client, wait_batch, wait_running

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
        wait_running(client, batch["id"])
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


def _group_members(pgid: int) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            members.add(int(entry.name))
    return members


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to list the process group")
def test_pool_processes_end_with_a_killed_server(tmp_path: Path) -> None:
    import os
    import signal

    data = tmp_path / "data"
    server = ServerProcess(data).wait_ready()
    try:
        client = user_client(server.url, f"sqlite:///{data / 'synth.db'}", samples=5000)
        params = {"num_reps": 2, "frame_rate": 24, "image_width": 128, "image_height": 128}
        batch = client.post("/api/batch/", json=batch_body(2, generator=VF, **params)).json()
        deadline = time.monotonic() + 90
        while not list((data / "workers").glob("*.pid")):  # a worker is rendering
            assert time.monotonic() < deadline
            time.sleep(0.05)
        children = _group_members(server.pgid) - {server.proc.pid}
        assert len(children) >= 3, children  # forkserver, resource tracker, workers
        os.kill(server.proc.pid, signal.SIGKILL)  # the server alone, as an OOM killer or an operator would
        server.proc.wait(10)
        deadline = time.monotonic() + 10
        while _group_members(server.pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_members(server.pgid), "pool processes outlived the server"
        work = list((data / "results").glob(".work-*"))
        restarted = ServerProcess(data).wait_ready()  # recover() removes the dead writers' folders
        try:
            assert not [folder for folder in work if folder.exists()]
            summary = wait_batch(httpx.Client(base_url=restarted.url, headers=client.headers), batch["id"], 180)
            assert {job["status"] for job in summary["job_runs"]} == {"succeeded"}  # crash not charged
        finally:
            restarted.stop()
    finally:
        server.stop()
