"""Client benchmark: batch download throughput on loopback and ``await_completion``'s overhead per poll.

Starts the local service (``opsin-synth serve``) in a temporary data dir, renders a batch of 20 small VisionFit videos,
then compares, in the same run:

* ``Batch.download`` (parallel, streamed, verified, safely extracted) against a plain sequential loop of
  ``httpx.get`` + ``zipfile.extractall`` (no checks) over the same result URLs;
* one ``await_completion`` poll on a finished batch against one raw ``GET /api/batch/{id}/summary/``.

Usage: ``python packages/synth-client/benchmarks/bench_client.py [--quick]`` (prints one markdown table).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

from opsin.synth import Batch, Session

NUM_JOBS = 20
VIDEO = {
    "exercise": "UPPERCUT-LEFT",
    "num_reps": 1,
    "frame_rate": 12,
    "image_width": 128,
    "image_height": 128,
    "inter_rep_delay_avg": 0.5,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_service(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {**os.environ, "OPSIN_NO_PROGRESS": "1"}
    cli = [sys.executable, "-m", "opsin.synth.cli"]
    made = subprocess.run(
        [*cli, "admin", "create-user", "bench", "--samples", "1000000", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    token = made.stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "2", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}api/health/", timeout=2).status_code == 200:
                return proc, url, token
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    msg = "service did not start"
    raise RuntimeError(msg)


def _baseline(batch: Batch, target: Path) -> None:
    """Sequential GET + unzip, no status check, no verification (the anchor)."""
    summary = httpx.get(
        f"{batch.server}api/batch/{batch.batch_id}/summary/", headers={"Authorization": f"Token {batch.token}"}
    ).json()
    target.mkdir(parents=True)
    with httpx.Client() as client:
        for run in summary["job_runs"]:
            archive = target / f"{run['id']}.zip"
            archive.write_bytes(client.get(run["result_url"]).content)
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(target)
            archive.unlink()


def _time(fn, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 2 min)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    polls = 20 if args.quick else 100
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-client-"))
    proc, url, token = _start_service(tmp / "data")
    try:
        sesh = Session(token, "visionfit-v0.4.0", url)
        jobs = [{**VIDEO, "relative_avatar_angle_deg": float(i * 15 - 150)} for i in range(NUM_JOBS)]
        batch = sesh.submit(jobs, batch_name="bench")
        batch.await_completion(polling_interval=0.5, timeout=600, progress=False)
        total_bytes = sum(p.stat().st_size for p in (tmp / "data" / "results").glob("*.zip"))
        counter = iter(range(10**6))

        def ours() -> None:
            batch.download(tmp / f"ours{next(counter)}", quiet=True)

        def plain() -> None:
            _baseline(batch, tmp / f"plain{next(counter)}")

        # interleaved, so that load from other processes hits both sides alike
        ours_t: list[float] = []
        plain_t: list[float] = []
        for _ in range(repeats):
            ours_t += _time(ours, 1)
            plain_t += _time(plain, 1)
        headers = {"Authorization": f"Token {token}"}
        raw_t: list[float] = []
        poll_t: list[float] = []
        with httpx.Client() as client:
            for _ in range(polls):
                raw_t += _time(lambda: client.get(f"{url}api/batch/{batch.batch_id}/summary/", headers=headers), 1)
                poll_t += _time(lambda: batch.await_completion(polling_interval=1, progress=False), 1)
        # a poll loop on an unfinished batch: polls actually made in a fixed window
        slow = sesh.submit([{**VIDEO, "num_reps": 20}] * 4, batch_name="bench wait")
        start = time.monotonic()
        with contextlib.suppress(TimeoutError):
            slow.await_completion(polling_interval=0.1, timeout=1.0, progress=False)
        waited = time.monotonic() - start
        slow.cancel()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    mb = total_bytes / 1e6
    o, p = statistics.median(ours_t), statistics.median(plain_t)
    r, q = statistics.median(raw_t), statistics.median(poll_t)
    print(f"Batch of {NUM_JOBS} VisionFit videos (128x128, {mb:.1f} MB of zips), loopback, median of {repeats}:\n")
    print("| measure | opsin.synth | anchor | ratio (anchor / ours) |")
    print("|---|---|---|---|")
    print(
        f"| download 20 jobs (s) | {o:.3f} (Batch.download, 4 threads, verified) | {p:.3f} (sequential httpx GET + "
        f"unzip) | {p / o:.2f}x |"
    )
    print(f"| download throughput (MB/s) | {mb / o:.1f} | {mb / p:.1f} | {p / o:.2f}x |")
    print(
        f"| one poll (ms) | {q * 1e3:.2f} (await_completion, finished batch) | {r * 1e3:.2f} (raw summary GET) | "
        f"{r / q:.2f}x (overhead {1e3 * (q - r):+.2f} ms) |"
    )
    print(f"| timeout 1.0 s, interval 0.1 s | returned after {waited:.2f} s | - | - |")


if __name__ == "__main__":
    main()
