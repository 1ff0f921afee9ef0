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
# the real-data layer: OPSIN_FIXTURES, else <repo>/../shared/fixtures (this file is <repo>/packages/synth-client/...)
FIXTURES = Path(os.environ.get("OPSIN_FIXTURES") or Path(__file__).resolve().parents[5] / "shared" / "fixtures")
FIXTURE_BATCH = FIXTURES / "visionfit-v0.4.0-sample"
# jobs of the batch rendered by the package's own generator: two labelled videos, three label-less jobs as in the
# real sample batch (only job.json and timing.json), all ids fixed so failures name the same folders every run
RENDERED_VIDEOS = {
    "1a100000-0000-4000-8000-000000000001": {"exercise": "UPPERCUT-LEFT", "frame_rate": 12, "add_wall_art": True},
    "1a200000-0000-4000-8000-000000000002": {"exercise": "SQUAT-BODYWEIGHT", "frame_rate": 6, "num_reps": 1},
}
RENDERED_LABEL_LESS = [f"2b{i}00000-0000-4000-8000-00000000000{i}" for i in range(1, 4)]


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


def _render_batch(folder: Path) -> Path:
    """A VisionFit batch folder rendered by the package's own generator, shaped like the real sample batch."""
    from opsin.synth.server.generators import get_generator

    generator = get_generator("visionfit-v0.4.0")
    base = {"num_reps": 1, "image_width": 128, "image_height": 128, "camera_distance": 3.0, "camera_height": 1.0}
    folder.mkdir(parents=True)
    (folder / "batch_id.txt").write_text("3c000000-0000-4000-8000-000000000000")
    for seed, (job_id, overrides) in enumerate(RENDERED_VIDEOS.items()):
        (folder / job_id).mkdir()
        generator.run({**generator.defaults(), **base, **overrides}, False, seed, folder / job_id, None)
    for seed, job_id in enumerate(RENDERED_LABEL_LESS, start=10):
        job = folder / job_id
        job.mkdir()
        generator.run({**generator.defaults(), **base, "num_reps": 1 + seed % 3}, True, seed, job, None)
        for path in job.iterdir():
            if path.name not in ("job.json", "timing.json"):
                path.unlink()
    return folder


@pytest.fixture(scope="session")
def rendered_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered batch, made once per session (copy it before writing into it)."""
    pytest.importorskip("cv2", reason="rendering needs the [server] extra")
    return _render_batch(tmp_path_factory.mktemp("rendered") / "batch")


@pytest.fixture(params=["rendered", "real"])
def fixture_batch(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A writable VisionFit batch folder: rendered here (runs everywhere), then the real sample batch (the
    real-data layer, found through ``OPSIN_FIXTURES``; skipped when absent)."""
    import shutil

    if request.param == "rendered":
        source = request.getfixturevalue("rendered_batch")
    else:
        source = FIXTURE_BATCH
        if not source.is_dir():
            pytest.skip(f"real fixture batch not found at {source} (set OPSIN_FIXTURES to the fixtures folder)")
    target = tmp_path / "fixture-batch"
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target
