"""``opsin-synth demo``: the service end to end, driven through the public client (:class:`Session`, :class:`Batch`).

The demo service keeps its data dir beside the results (``<out>/service-data``), so ``opsin-synth serve --data-dir
<out>/service-data`` shows the same batches in the portal afterwards.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEMO_BATCHES", "DEMO_USER", "SERVICE_DATA", "run_demo"]

DEMO_USER = "demo"
SERVICE_DATA = "service-data"

DEMO_BATCHES: list[dict[str, Any]] = [
    {
        "name": "demo shapes",
        "generator": "shapes-v0.1.0",
        "jobs": [
            {"num_images": 4, "image_width": 256, "image_height": 256, "ground": ground}
            for ground in ("GRASS", "ASPHALT", "SAND", "CONCRETE")
        ],
    },
    {
        "name": "demo visionfit",
        "generator": "visionfit-v0.4.0",
        "jobs": [
            {"exercise": exercise, "num_reps": 1, "frame_rate": 12, "image_width": 128, "image_height": 128}
            for exercise in ("UPPERCUT-LEFT", "SQUAT-BODYWEIGHT")
        ],
    },
]


def _demo_token(db: Any) -> str:
    """A token for the demo user: a new user on a fresh data dir, a new token for the one a previous run made."""
    from opsin.synth.errors import UnknownUserError
    from opsin.synth.server.users import create_user, rotate_token

    try:
        return rotate_token(db, DEMO_USER)
    except UnknownUserError:
        return create_user(db, DEMO_USER, 1_000_000)


def run_demo(
    out: Path, *, keep_server: bool = False, timeout: float = 300.0, echo: Callable[[str], Any] = print
) -> str:
    """Start a service on a free loopback port, render the demo batches, download them into ``out``, describe them.

    Args:
        out: folder receiving ``service-data/`` and one folder per batch (``<out>/<batch_id>/<job_id>/...``).
        keep_server: keep serving until interrupted.
        timeout: seconds to wait for the jobs.
        echo: where progress lines go.

    Returns:
        A multi-line summary ending with how to look at the results in the portal.

    Raises:
        BatchTimeoutError: jobs were still running after ``timeout`` seconds.
        RuntimeError: a job did not succeed.
    """
    from opsin.synth.batch import Batch
    from opsin.synth.server._embedded import EmbeddedServer
    from opsin.synth.server.app import create_app
    from opsin.synth.server.settings import Settings
    from opsin.synth.session import Session

    started = time.monotonic()
    data_dir = (out / SERVICE_DATA).resolve()
    settings = Settings.from_env(
        data_dir, db_url=f"sqlite:///{data_dir / 'synth.db'}", workers=max(1, min(4, os.cpu_count() or 1))
    )
    app = create_app(settings)
    token = _demo_token(app.state.ctx.db)
    server = EmbeddedServer(app).start()
    try:
        echo(f"Service running at {server.url} (data dir {data_dir})")
        batches: list[Batch] = []
        for spec in DEMO_BATCHES:
            session = Session(token, spec["generator"], server.url)
            batches.append(session.submit(spec["jobs"], batch_name=spec["name"]))
        echo(f"Submitted {len(batches)} batches with {sum(b.num_jobs for b in batches)} jobs; rendering...")
        lines = []
        for batch in batches:
            left = max(1.0, timeout - (time.monotonic() - started))
            batch.await_completion(polling_interval=0.25, timeout=left)
            lines.append(_fetch(batch, out.resolve() / batch.batch_id))
        elapsed = time.monotonic() - started
        summary = "\n".join(
            [
                f"Demo finished in {elapsed:.1f} s; results in {out.resolve()}",
                *lines,
                "Look at the batches in the portal:",
                f"  opsin-synth serve --data-dir {data_dir}",
                "  then open http://127.0.0.1:8000/portal/login/ and log in as user "
                f"'{DEMO_USER}' with the token {token}",
            ]
        )
        if keep_server:
            echo(summary)
            echo(f"The demo service stays up at {server.url}portal/login/ until Ctrl-C.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return summary
    finally:
        server.stop()


def _fetch(batch: Any, folder: Path) -> str:
    """Download one finished batch, check every job succeeded, and describe it in one line."""
    failed = [job for job in batch.get_batch_data()["job_runs"] if job["status"] != "succeeded"]
    if failed:
        reasons = "; ".join(f"{job['id']} {job['status']}: {job.get('error')}" for job in failed)
        msg = f"demo batch {batch.name!r}: {len(failed)} job(s) did not succeed ({reasons})"
        raise RuntimeError(msg)
    batch.download(folder, quiet=True)
    frames = sum(int(job["actual_samples"] or 0) for job in batch.get_batch_data()["job_runs"])
    first = folder / batch.job_ids[0]
    generator = json.loads((first / "job.json").read_text(encoding="utf-8"))["name"]
    files = ", ".join(sorted(path.name for path in first.iterdir()))
    return f"  {batch.name} ({generator}): {batch.num_jobs} jobs, {frames} frames -> {folder} (each job: {files})"
