"""Client <-> app in one process through FastAPI's TestClient (the ``http_client`` hook of ``Session``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from opsin.synth import Session

from ._helpers import TEST_GENERATOR

pytestmark = pytest.mark.slow


def test_session_and_download_through_testclient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from opsin.synth.cli import cli
    from opsin.synth.server.app import create_app
    from opsin.synth.server.settings import Settings

    monkeypatch.delenv("OPSIN_SYNTH_DB_URL", raising=False)
    data_dir = tmp_path / "data"
    made = CliRunner().invoke(cli, ["admin", "create-user", "carol", "--samples", "100", "--data-dir", str(data_dir)])
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    app = create_app(Settings.from_env(data_dir, workers=1))
    with TestClient(app) as client:
        sesh = Session(token, TEST_GENERATOR, "http://testserver", http_client=client)
        batch = sesh.submit([{"param1": 2}, {"param1": 1}], batch_name="in process")
        assert batch.http_client is client
        batch.await_completion(polling_interval=0.1, timeout=60, progress=False)
        assert batch.download(tmp_path / "out", quiet=True) is True
        assert sesh.get_account()["sample_balance"] == 97
    for job_id in batch.job_ids:
        assert (tmp_path / "out" / job_id / "labels.json").is_file()
