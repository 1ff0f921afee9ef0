"""Client tests run against the real service, started through the public CLI on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

SECRET = "client-tests-secret-key"
FIXTURE_BATCH = Path(__file__).resolve().parents[5] / "shared" / "fixtures" / "visionfit-v0.4.0-sample"


@attrs.frozen
class Service:
    url: str
    token: str
    data_dir: Path
    secret: str

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "opsin.synth.cli", *args]


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``opsin-synth serve`` with 2 workers and a user ``alice``; stopped at the end of the session."""
    data_dir = tmp_path_factory.mktemp("synth-service")
    env = {**os.environ, "OPSIN_SYNTH_SECRET_KEY": SECRET, "OPSIN_NO_PROGRESS": "1"}
    env.pop("OPSIN_SYNTH_DB_URL", None)
    created = subprocess.run(
        _cli("admin", "create-user", "alice", "--samples", "10000000", "--data-dir", str(data_dir)),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    token = created.stdout.strip().splitlines()[-1].strip()
    port = _free_port()
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        _cli("serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--workers", "2"),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"service exited with {proc.returncode}: {(data_dir / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}api/health/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("service did not become healthy within 90 s")
            time.sleep(0.2)
        yield Service(url, token, data_dir, SECRET)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def client_env(service: Service, monkeypatch: pytest.MonkeyPatch) -> Service:
    """The service, with ``OPSIN_SYNTH_SERVER``/``OPSIN_SYNTH_TOKEN`` pointing at it."""
    monkeypatch.setenv("OPSIN_SYNTH_SERVER", service.url)
    monkeypatch.setenv("OPSIN_SYNTH_TOKEN", service.token)
    return service


@pytest.fixture
def fixture_batch(tmp_path: Path) -> Path:
    """A writable copy of the real VisionFit sample batch (skips when the shared fixtures are absent)."""
    if not FIXTURE_BATCH.is_dir():
        pytest.skip(f"shared fixture batch missing: {FIXTURE_BATCH}")
    import shutil

    target = tmp_path / "fixture-batch"
    shutil.copytree(FIXTURE_BATCH, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target
