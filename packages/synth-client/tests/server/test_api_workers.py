"""`serve --api-workers 2`: two API processes share batches, balances and idempotency keys; one dispatcher."""

from __future__ import annotations

import concurrent.futures as cf
import time
from pathlib import Path

import httpx
import pytest
from svc_helpers import TEST_GEN, ServerProcess, batch_body, user_client, wait_batch, wait_running


def _processes(pgid: int) -> list[tuple[int, int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append((int(entry.name), int(fields[1]), cmdline))
    return found


def _pools(pgid: int) -> dict[int, int]:
    """Forkserver -> the API process that started it (one per dispatcher's process pool).

    The forkserver's workers share its command line, not its parent, so they are left out.
    """
    forkservers = {pid: ppid for pid, ppid, cmdline in _processes(pgid) if "multiprocessing.forkserver" in cmdline}
    return {pid: ppid for pid, ppid in forkservers.items() if ppid not in forkservers}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to count the processes")
def test_two_api_processes_share_state_and_one_dispatcher(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, workers=1, extra=("--api-workers", "2")).wait_ready(timeout=120)
    try:
        api_processes = [p for p in _processes(server.pgid) if p[1] == server.proc.pid]
        assert len(api_processes) >= 2, api_processes
        deadline = time.monotonic() + 60
        while not _pools(server.pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        assert len(_pools(server.pgid)) == 1  # exactly one dispatcher started a process pool
        client = user_client(server.url, f"sqlite:///{data / 'synth.db'}", samples=100)
        headers = {**client.headers, "Idempotency-Key": "two-processes"}
        body = batch_body(4, param1=5)

        def submit(_: int) -> httpx.Response:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as fresh:  # a new connection
                while True:
                    answer = fresh.post("/api/batch/", json=body)
                    if answer.status_code != 409:
                        return answer
                    time.sleep(0.05)

        with cf.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(submit, range(24)))
        assert {answer.status_code for answer in answers} == {201}
        assert len({answer.json()["id"] for answer in answers}) == 1  # one batch
        batch_id = answers[0].json()["id"]
        assert sum(answer.headers.get("Idempotent-Replayed") != "true" for answer in answers) == 1
        for _ in range(10):  # whichever process answers knows the batch
            with httpx.Client(base_url=server.url, headers=client.headers, timeout=30.0) as fresh:
                assert fresh.get(f"/api/batch/{batch_id}/").status_code == 200
        summary = wait_batch(client, batch_id, timeout=120)
        assert [job["status"] for job in summary["job_runs"]] == ["succeeded"] * 4
        for _ in range(6):
            with httpx.Client(base_url=server.url, headers=client.headers, timeout=30.0) as fresh:
                runs = fresh.get(f"/api/batch/{batch_id}/summary/").json()["job_runs"]
                assert not any(run["in_progress"] for run in runs)  # no stale per-process cache
                account = fresh.get("/api/account/").json()
                assert account["sample_balance"] == 100 - 20  # charged once: 4 jobs x 5 frames
                assert account["reserved_samples"] == 0
        second = httpx.post(f"{server.url}api/batch/", json=batch_body(1, generator=TEST_GEN), headers=client.headers)
        assert second.status_code == 201
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to count the processes")
def test_a_killed_dispatching_process_is_replaced_and_its_running_job_finishes(tmp_path: Path) -> None:
    # The API process that runs the dispatcher dies (OOM killer, operator) while a job renders: the supervisor
    # starts a new API process, which takes the free lock, re-queues the interrupted job and finishes the batch.
    import os
    import signal

    data = tmp_path / "data"
    server = ServerProcess(data, workers=1, extra=("--api-workers", "2")).wait_ready(timeout=120)
    try:
        client = user_client(server.url, f"sqlite:///{data / 'synth.db'}", samples=5000)
        params = {"num_reps": 1, "frame_rate": 24, "image_width": 128, "image_height": 128}
        batch = client.post("/api/batch/", json=batch_body(2, generator="visionfit-v0.4.0", **params)).json()
        wait_running(client, batch["id"])
        ((pool, dispatching),) = _pools(server.pgid).items()
        os.kill(dispatching, signal.SIGKILL)  # the dispatching API process alone
        client.close()  # its kept-alive connection may have gone to the killed process
        client = httpx.Client(base_url=server.url, headers=client.headers, timeout=30.0)
        summary = wait_batch(client, batch["id"], timeout=180)
        assert [job["status"] for job in summary["job_runs"]] == ["succeeded"] * 2
        detail = client.get(f"/api/batch/{batch['id']}/").json()
        assert [job["actual_samples"] for job in detail["job_runs"]] == [
            job["estimated_samples"] for job in detail["job_runs"]
        ]
        pools = _pools(server.pgid)
        assert len(pools) == 1  # one dispatcher again, in the new process
        assert pool not in pools
        assert client.get("/api/account/").json()["reserved_samples"] == 0
    finally:
        server.stop()
