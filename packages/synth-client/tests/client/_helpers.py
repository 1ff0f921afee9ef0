"""Helpers shared by the client tests (batches of the fast test generator, signed URLs)."""

from __future__ import annotations

import hashlib
import hmac
import zipfile
from pathlib import Path

from opsin.synth import Batch, Session

TEST_GENERATOR = "test-generator-v0.1.0"


def completed_batch(session: Session, jobs: list[dict], *, name: str = "client test", preview: bool = False) -> Batch:
    """Submit ``jobs`` and wait until they are finished."""
    batch = session.submit(jobs, is_preview=preview, batch_name=name)
    batch.await_completion(polling_interval=0.1, timeout=60, progress=False)
    return batch


def signed_url(server: str, secret: str, job_id: str, expires: int) -> str:
    """A result URL signed as the service signs them."""
    sig = hmac.new(secret.encode(), f"{job_id}:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{server.rstrip('/')}/api/results/{job_id}.zip?expires={expires}&sig={sig}"


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
