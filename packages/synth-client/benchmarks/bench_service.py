"""Service benchmark: submit -> downloadable for 10 previews, and status polls/s + p99 latency with 64 clients.

Runs `opsin-synth serve` as a subprocess on 127.0.0.1 with a temporary data dir and 2 workers, drives it over HTTP
and prints one markdown table comparing each number with its target as a ratio (>= 1.0 meets the target).

    python packages/synth-client/benchmarks/bench_service.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from opsin.synth.server.accounting import create_user
from opsin.synth.server.models import Database

PREVIEW_TARGET_S = 2.0
POLLS_TARGET_PER_S = 1000.0
P99_TARGET_MS = 50.0
CLIENTS = 64


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "OPSIN_SYNTH_SECRET_KEY": "bench-secret", "OPSIN_NO_PROGRESS": "1"}
    env.pop("OPSIN_SYNTH_DB_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsin.synth.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--workers", str(workers), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "api/health/", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("service did not start within 120 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def submit_to_downloadable(client: httpx.Client, generator: str, n: int = 10) -> float:
    body = {
        "name": "bench previews",
        "job_runs": [
            {"name": generator, "is_preview": True, "param_values": {"relative_avatar_angle_deg": float(i * 30 - 135)}}
            for i in range(n)
        ],
    }
    start = time.perf_counter()
    response = client.post("/api/batch/", json=body)
    response.raise_for_status()
    batch_id = response.json()["id"]
    while True:
        summary = client.get(f"/api/batch/{batch_id}/summary/").json()["job_runs"]
        if all(not job["in_progress"] for job in summary):
            elapsed = time.perf_counter() - start
            bad = [job["status"] for job in summary if job["status"] != "succeeded"]
            if bad:
                raise RuntimeError(f"preview jobs did not succeed: {bad}")
            return elapsed
        time.sleep(0.01)


async def _poll_load(url: str, token: str, batch_id: str, seconds: float, max_requests: int) -> tuple[int, list[float]]:
    """64 keep-alive connections polling the summary; a minimal HTTP/1.1 client (like `wrk`) so the load generator
    spends as little of the shared CPUs as possible. Every response must be a 200 with a complete JSON body."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    request = (
        f"GET /api/batch/{batch_id}/summary/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: Token {token}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < stop_at and len(latencies) < max_requests:
                begin = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1]
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - begin)
                if status != b"200" or not body.startswith(b"{"):
                    raise RuntimeError(f"poll answered {status!r}")
        finally:
            writer.close()

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - begin
    return int(len(latencies) / elapsed), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a shorter load test (< 2 min)")
    parser.add_argument("--generator", default="visionfit-v0.4.0", help="generator of the preview batch")
    args = parser.parse_args()
    repeats, seconds = (2, 4.0) if args.quick else (5, 10.0)
    data_dir = Path(tempfile.mkdtemp(prefix="opsin-bench-service-"))
    proc, url = start_server(data_dir, workers=2)
    try:
        db = Database(f"sqlite:///{data_dir / 'synth.db'}")
        token = create_user(db, "bench", 10**9)
        db.dispose()
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60) as client:
            submit_to_downloadable(client, args.generator, 2)  # warm the worker processes
            preview_times = [submit_to_downloadable(client, args.generator) for _ in range(repeats)]
            batch = client.post(
                "/api/batch/",
                json={"name": "poll", "job_runs": [{"name": "test-generator-v0.1.0", "param_values": {}}] * 10},
            ).json()
        rate, latencies = asyncio.run(_poll_load(url, token, batch["id"], seconds, max_requests=200_000))
    finally:
        stop_server(proc)
        shutil.rmtree(data_dir, ignore_errors=True)
    preview_s = statistics.median(preview_times)
    p99_ms = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) >= 100 else max(latencies) * 1000
    rows = [
        (f"submit -> downloadable, 10 previews (median of {repeats})", f"{preview_s:.2f} s", "<= 2 s",
         PREVIEW_TARGET_S / preview_s),
        (f"status polls/s, {CLIENTS} concurrent clients", f"{rate}", ">= 1000", rate / POLLS_TARGET_PER_S),
        (f"status poll p99 latency, {CLIENTS} clients", f"{p99_ms:.1f} ms", "<= 50 ms", P99_TARGET_MS / p99_ms),
    ]  # fmt: skip
    print(f"\n{args.generator} previews, 2 workers, {os.cpu_count()} CPUs, {len(latencies)} polls in {seconds:g} s\n")
    print("| metric | measured | target | ratio (>= 1 meets target) |")
    print("|---|---|---|---|")
    for name, measured, target, ratio in rows:
        print(f"| {name} | {measured} | {target} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
