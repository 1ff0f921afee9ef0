"""Helpers for service tests: a real service (uvicorn on 127.0.0.1, temporary data dir, real SQLite, process pool)."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from opsin.synth.server._embedded import EmbeddedServer
from opsin.synth.server.accounting import create_user
from opsin.synth.server.app import create_app
from opsin.synth.server.settings import Settings

TEST_GEN = "test-generator-v0.1.0"
# the real-data layer: OPSIN_FIXTURES, else <repo>/../shared/fixtures (this file is in <repo>/packages/...)
FIXTURES = Path(os.environ.get("OPSIN_FIXTURES") or Path(__file__).resolve().parents[5] / "shared" / "fixtures")


class Service:
    """A running service plus helpers to create users and wait for batches."""

    def __init__(self, server: EmbeddedServer, app: Any, settings: Settings) -> None:
        self.server = server
        self.app = app
        self.settings = settings
        self.url = server.url
        self._clients: list[httpx.Client] = []

    @property
    def db(self) -> Any:
        return self.app.state.ctx.db

    def user(self, samples: int = 1000, name: str | None = None) -> httpx.Client:
        """A new user with ``samples``; returns an httpx client authenticated as that user."""
        username = name or f"user-{secrets.token_hex(4)}"
        token = create_user(self.db, username, samples)
        client = httpx.Client(base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=30.0)
        client.token = token  # type: ignore[attr-defined]
        client.username = username  # type: ignore[attr-defined]
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


def wait_batch(client: httpx.Client, batch_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll the summary until no job is in progress; returns the final summary."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/batch/{batch_id}/summary/")
        assert response.status_code == 200, response.text
        summary = response.json()
        if not any(job["in_progress"] for job in summary["job_runs"]):
            return summary
        assert time.monotonic() < deadline, f"batch {batch_id} still in progress after {timeout} s: {summary}"
        time.sleep(0.05)


def wait_running(client: httpx.Client, batch_id: str, timeout: float = 60.0) -> None:
    """Poll the summary until a job of the batch is running (mid-render)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = [job["status"] for job in client.get(f"/api/batch/{batch_id}/summary/").json()["job_runs"]]
        if "running" in statuses:
            return
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def batch_body(n: int = 1, generator: str = TEST_GEN, is_preview: bool = False, **params: Any) -> dict[str, Any]:
    return {
        "name": "test batch",
        "job_runs": [{"name": generator, "is_preview": is_preview, "param_values": dict(params)} for _ in range(n)],
    }


def start_service(data_dir: Path, **overrides: Any) -> Service:
    import pg_cluster

    options: dict[str, Any] = {"secret_key": "test-secret-" + secrets.token_hex(8), "workers": 2}
    options.update(overrides)
    if "db_url" not in options:
        options["db_url"] = pg_cluster.database_url() or ""  # its own PostgreSQL database in that mode
    settings = Settings.from_env(data_dir, **options)
    app = create_app(settings)
    server = EmbeddedServer(app).start()
    return Service(server, app, settings)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m opsin.synth.cli serve`` in its own process group (so kill -9 can reach its workers too)."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, workers: int = 2, extra: tuple[str, ...] = ()
    ) -> None:
        import os
        import subprocess
        import sys

        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full_env = {**os.environ, "OPSIN_SYNTH_SECRET_KEY": "subprocess-secret", **(env or {})}
        full_env.pop("OPSIN_SYNTH_DB_URL", None)
        self.log = data_dir / f"server-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "opsin.synth.cli", "serve", "--port", str(self.port), "--data-dir",
                 str(data_dir), "--workers", str(workers), "--log-level", "warning", *extra],
                env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.pgid = self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "api/health/", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log.read_text()}")

    def kill_group(self) -> None:
        """SIGKILL the server and everything it started (its process group)."""
        import os
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then make sure nothing of the group is left."""
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(10)


def user_client(url: str, db_url: str, samples: int) -> httpx.Client:
    """Create a user directly in the database of a server and return a client for it."""
    from opsin.synth.server.models import Database

    db = Database(db_url)
    try:
        db.create_all()
        token = create_user(db, f"user-{secrets.token_hex(4)}", samples)
    finally:
        db.dispose()
    return httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=30.0)
