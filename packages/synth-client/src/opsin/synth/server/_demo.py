"""``opsin-synth demo``: the service end to end on a temporary data dir, driven over HTTP with plain httpx."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from opsin.core import atomic_write_text, progress, safe_extract_zip
from opsin.synth.errors import SynthError

__all__ = ["DEMO_BATCHES", "DemoTimeoutError", "run_demo"]

DEMO_BATCHES: list[dict[str, Any]] = [
    {
        "name": "demo shapes",
        "job_runs": [
            {
                "name": "shapes-v0.1.0",
                "is_preview": False,
                "param_values": {"num_images": 4, "image_width": 256, "image_height": 256, "ground": ground},
            }
            for ground in ("GRASS", "ASPHALT", "SAND", "CONCRETE")
        ],
    },
    {
        "name": "demo visionfit",
        "job_runs": [
            {
                "name": "visionfit-v0.4.0",
                "is_preview": False,
                "param_values": {
                    "exercise": exercise,
                    "num_reps": 1,
                    "frame_rate": 12,
                    "image_width": 128,
                    "image_height": 128,
                },
            }
            for exercise in ("UPPERCUT-LEFT", "SQUAT-BODYWEIGHT")
        ],
    },
]


class DemoTimeoutError(SynthError, TimeoutError):
    """The demo's jobs did not finish in time."""


def _extract(zip_path: Path, batch_folder: Path, job_id: str) -> None:
    staging = batch_folder / ".partial" / job_id
    safe_extract_zip(zip_path, staging, required_root=job_id, overwrite=True)
    target = batch_folder / job_id
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging / job_id, target)
    shutil.rmtree(staging, ignore_errors=True)


def run_demo(
    out: Path, *, keep_server: bool = False, timeout: float = 300.0, echo: Callable[[str], Any] = print
) -> str:
    """Start a temporary service, render the demo batches, download them into ``out`` and describe the result.

    Args:
        out: folder receiving one sub-folder per batch (``<out>/<batch_id>/<job_id>/...``).
        keep_server: keep serving until interrupted (the URL and token are printed).
        timeout: seconds to wait for the jobs.
        echo: where progress lines go.

    Returns:
        A short multi-line summary.

    Raises:
        DemoTimeoutError: jobs were still running after ``timeout`` seconds.
        RuntimeError: a request failed or a job did not succeed.
    """
    from opsin.synth.server._embedded import EmbeddedServer
    from opsin.synth.server.accounting import create_user
    from opsin.synth.server.app import create_app
    from opsin.synth.server.settings import Settings

    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="opsin-synth-demo-"))
    settings = Settings(
        data_dir=data_dir,
        db_url=f"sqlite:///{data_dir / 'synth.db'}",
        secret_key=secrets.token_hex(32),
        workers=max(1, min(4, os.cpu_count() or 1)),
    )
    app = create_app(settings)
    token = create_user(app.state.ctx.db, "demo", 1_000_000)
    server = EmbeddedServer(app).start()
    try:
        echo(f"Service running at {server.url} (temporary data dir {data_dir})")
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60.0) as client:
            batches = []
            for body in DEMO_BATCHES:
                response = client.post("/api/batch/", json=body, headers={"Idempotency-Key": secrets.token_hex(16)})
                if response.status_code != 201:
                    msg = f"submitting {body['name']!r} failed: HTTP {response.status_code} {response.text[:500]}"
                    raise RuntimeError(msg)
                batches.append(response.json())
            total = sum(len(batch["job_runs"]) for batch in batches)
            echo(f"Submitted {len(batches)} batches with {total} jobs; rendering...")
            summaries = _wait(client, [batch["id"] for batch in batches], total, started + timeout)
            lines = _download(client, batches, summaries, out)
        elapsed = time.monotonic() - started
        summary = "\n".join([f"Demo finished in {elapsed:.1f} s; results in {out.resolve()}", *lines])
        if keep_server:
            echo(summary)
            echo(f"Service still running at {server.url} - portal {server.url}portal/login/ (user 'demo', token "
                 f"{token}); press Ctrl-C to stop.")  # fmt: skip
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return summary
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait(client: httpx.Client, batch_ids: list[str], total: int, deadline: float) -> dict[str, dict[str, Any]]:
    summaries: dict[str, dict[str, Any]] = {}
    with progress(total=total, desc="Jobs finished", unit="job") as bar:
        done = 0
        while True:
            for batch_id in batch_ids:
                response = client.get(f"/api/batch/{batch_id}/summary/")
                response.raise_for_status()
                summaries[batch_id] = response.json()
            finished = sum(not job["in_progress"] for s in summaries.values() for job in s["job_runs"])
            bar.update(finished - done)
            done = finished
            if finished == total:
                return summaries
            if time.monotonic() > deadline:
                msg = f"{total - finished} of {total} demo jobs still running when the timeout ran out"
                raise DemoTimeoutError(msg)
            time.sleep(0.25)


def _download(
    client: httpx.Client, batches: list[dict[str, Any]], summaries: dict[str, dict[str, Any]], out: Path
) -> list[str]:
    lines = []
    for batch in batches:
        folder = out / batch["id"]
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "batch_id.txt", batch["id"])
        frames = 0
        for job in summaries[batch["id"]]["job_runs"]:
            if job["status"] != "succeeded" or not job["result_url"]:
                detail = client.get(f"/api/job_runs/{job['id']}/").json().get("error")
                msg = f"demo job {job['id']} ended {job['status']}: {detail}"
                raise RuntimeError(msg)
            with tempfile.TemporaryDirectory() as tmp:
                zip_path = Path(tmp) / f"{job['id']}.zip"
                with httpx.stream("GET", job["result_url"], timeout=60.0) as response:
                    if response.status_code != 200:
                        msg = f"downloading job {job['id']} failed: HTTP {response.status_code}"
                        raise RuntimeError(msg)
                    with open(zip_path, "wb") as handle:
                        for chunk in response.iter_bytes():
                            handle.write(chunk)
                _extract(zip_path, folder, job["id"])
            job_json = json.loads((folder / job["id"] / "job.json").read_text(encoding="utf-8"))
            if job_json.get("name") != batch["job_runs"][0]["name"]:
                msg = f"job {job['id']}: job.json names generator {job_json.get('name')!r}"
                raise RuntimeError(msg)
            frames += int(client.get(f"/api/job_runs/{job['id']}/").json().get("actual_samples") or 0)
        shutil.rmtree(folder / ".partial", ignore_errors=True)
        files = sorted(p.name for p in (folder / batch["job_runs"][0]["id"]).iterdir())
        lines.append(
            f"  {batch['name']}: {len(batch['job_runs'])} jobs, {frames} frames -> {folder} "
            f"(each job folder: {', '.join(files)})"
        )
    return lines
