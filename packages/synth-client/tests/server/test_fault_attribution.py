"""Faults are charged to whoever caused them; errors clients see are short; the service's files are private."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from svc_helpers import Service, batch_body, wait_batch

from opsin.synth.server._worker import client_error
from opsin.synth.server.dispatcher import Dispatcher
from opsin.synth.server.models import Database, Job, JobStatus
from opsin.synth.server.settings import Settings

VF = "visionfit-v0.4.0"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_client_errors_carry_no_server_paths() -> None:
    denied = PermissionError(13, "Permission denied", "/srv/synth/results/.work-1234/1234.zip")
    assert client_error(denied) == "PermissionError: Permission denied (the service log has the details)"
    text = client_error(RuntimeError("cannot read /srv/synth/assets/room/planks.png: truncated"))
    assert "/srv" not in text
    assert "planks.png" in text
    assert text.startswith("RuntimeError: ")


def test_data_dir_database_and_results_are_private(service: Service, tmp_path: Path) -> None:
    fresh = Settings.from_env(tmp_path / "new" / "data")
    Database(fresh.db_url).dispose()
    assert _mode(fresh.data_dir) == 0o700
    assert _mode(fresh.data_dir / "synth.db") == 0o600
    assert _mode(fresh.data_dir / "secret_key") == 0o600
    data = service.settings.data_dir
    client = service.user()
    batch = client.post("/api/batch/", json=batch_body(1, param1=1)).json()
    assert wait_batch(client, batch["id"])["job_runs"][0]["status"] == "succeeded"
    if service.settings.db_url.startswith("sqlite"):  # (PostgreSQL keeps no file in the data dir)
        assert _mode(data / "synth.db") == 0o600
    assert _mode(data / "results") == 0o700
    zips = list((data / "results").glob("*.zip"))
    assert zips
    assert all(_mode(path) == 0o600 for path in zips)
    assert all(_mode(path) & 0o077 == 0 for path in data.glob("synth.db*"))


def test_recover_does_not_charge_a_crash_and_spares_live_writers(make_service: Any) -> None:
    svc = make_service(start_dispatcher=False)
    client = svc.user()
    batch = client.post("/api/batch/", json=batch_body(2)).json()
    job_ids = [job["id"] for job in batch["job_runs"]]
    with svc.db.write() as session:  # as a crashed service leaves them: running, first attempt counted
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(status=JobStatus.RUNNING, attempts=1))
    results = svc.settings.results_dir
    results.mkdir(parents=True, exist_ok=True)
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = results / f".work-{job_ids[0]}-{writer.pid}-abc"
        dead = results / f".work-{job_ids[1]}-999999999-abc"
        for folder in (live, dead):
            folder.mkdir()
        assert Dispatcher(svc.db, svc.settings).recover() == 2
        assert live.is_dir()  # its writer still runs: not ours to delete
        assert not dead.exists()
    finally:
        writer.kill()
        writer.wait()
    with svc.db.read() as session:
        jobs = session.scalars(select(Job).where(Job.id.in_(job_ids))).all()
    assert [(job.status, job.attempts) for job in jobs] == [(JobStatus.QUEUED, 0)] * 2


def _running_pid(svc: Any, job_id: str, not_pid: int | None, timeout: float = 120.0) -> int:
    marks = svc.settings.data_dir / "workers"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = int((marks / f"{job_id}.pid").read_text())
        except (OSError, ValueError):
            pid = None
        if pid is not None and pid != not_pid and not (marks / f"{job_id}.done").exists():
            return pid
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never ran in a new worker")


@pytest.mark.slow
def test_a_dead_worker_is_charged_to_its_own_job_only(make_service: Any) -> None:
    svc = make_service(workers=2)
    client = svc.user(samples=10_000)
    params = {"num_reps": 3, "frame_rate": 24, "image_width": 128, "image_height": 128}
    batch = client.post("/api/batch/", json=batch_body(2, generator=VF, **params)).json()
    victim, neighbour = (job["id"] for job in batch["job_runs"])
    pid = None
    for _ in range(2):  # kill the victim's worker twice, each time the run of that job
        pid = _running_pid(svc, victim, pid)
        _running_pid(svc, neighbour, None)  # the neighbour is mid-render too
        os.kill(pid, signal.SIGKILL)
    summary = wait_batch(client, batch["id"], timeout=240)
    statuses = {job["id"]: job["status"] for job in summary["job_runs"]}
    assert statuses == {victim: "failed", neighbour: "succeeded"}
    error = client.get(f"/api/job_runs/{victim}/").json()["error"]
    assert "after 2 attempts" in error
    with svc.db.read() as session:
        attempts = session.scalars(select(Job.attempts).where(Job.id == neighbour)).one()
    assert attempts == 1  # its runs ended by the broken pool were not counted
    account = client.get("/api/account/").json()
    assert account["reserved_samples"] == 0
    assert account["sample_balance"] == 10_000 - account["samples_rendered_total"]
