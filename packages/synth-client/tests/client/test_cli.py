"""The client commands of ``opsin-synth`` against the real service: output, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsin.synth.cli import cli

from ._helpers import TEST_GENERATOR


@pytest.fixture
def run(service):
    runner = CliRunner()
    env = {"OPSIN_SYNTH_SERVER": service.url, "OPSIN_SYNTH_TOKEN": service.token, "OPSIN_NO_PROGRESS": "1"}

    def invoke(*args: str, env_extra: dict | None = None, input: str | None = None):
        return runner.invoke(cli, list(args), env={**env, **(env_extra or {})}, input=input, catch_exceptions=False)

    return invoke


def test_generators(run) -> None:
    result = run("generators")
    assert result.exit_code == 0
    assert TEST_GENERATOR in result.output.split()
    table = run("generators", TEST_GENERATOR)
    assert table.exit_code == 0
    assert "param1" in table.output
    assert "[1, 5]" in table.output
    assert run("generators", "no-such-generator").exit_code == 4
    assert run("generators", env_extra={"OPSIN_SYNTH_TOKEN": "0" * 40}).exit_code == 3
    assert run("generators", env_extra={"OPSIN_SYNTH_TOKEN": ""}).exit_code == 3


def test_submit_csv_status_download(run, tmp_path: Path) -> None:
    params = tmp_path / "jobs.csv"
    params.write_text("param1,param2,param3\n2,,CHOICE_2\n1,-1.5,\n")
    estimate = run("submit", "-g", TEST_GENERATOR, "--params", str(params), "--estimate-only")
    assert estimate.exit_code == 0
    assert estimate.output.strip().splitlines()[-1] == "3"
    declined = run("submit", "-g", TEST_GENERATOR, "--params", str(params), input="n\n")
    assert declined.exit_code == 1
    result = run("submit", "-g", TEST_GENERATOR, "--params", str(params), "--name", "cli batch", "--yes")
    assert result.exit_code == 0
    batch_id = result.output.strip().splitlines()[-1]
    status = run("status", batch_id, "--watch", "--timeout", "60")
    assert status.exit_code == 0
    assert "2/2 done" in status.output
    assert "succeeded 2" in status.output
    out = tmp_path / "dl"
    download = run("download", batch_id, "--out-dir", str(out), "--quiet", "--workers", "2")
    assert download.exit_code == 0
    assert "complete" in download.output
    jobs = sorted(json.loads((p / "job.json").read_text())["params"]["param1"] for p in out.iterdir() if p.is_dir())
    assert jobs == [1, 2]
    assert run("status", "00000000-0000-4000-8000-000000000000").exit_code == 4


def test_submit_json_errors_and_exit_codes(run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"param1": 99}]))
    assert run("submit", "-g", TEST_GENERATOR, "--params", str(bad), "--yes").exit_code == 2
    not_list = tmp_path / "obj.json"
    not_list.write_text("{}")
    assert run("submit", "-g", TEST_GENERATOR, "--params", str(not_list), "--yes").exit_code == 2
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("param1\nmany\n")
    assert run("submit", "-g", TEST_GENERATOR, "--params", str(bad_csv), "--yes").exit_code == 2


def test_insufficient_samples_exit_code(service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSIN_SYNTH_DB_URL", raising=False)
    made = CliRunner().invoke(
        cli, ["admin", "create-user", "bob", "--samples", "2", "--data-dir", str(service.data_dir)]
    )
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    params = tmp_path / "jobs.json"
    params.write_text(json.dumps([{"param1": 5}]))
    env = {"OPSIN_SYNTH_SERVER": service.url, "OPSIN_SYNTH_TOKEN": token}
    result = CliRunner().invoke(cli, ["submit", "-g", TEST_GENERATOR, "--params", str(params), "--yes"], env=env)
    assert result.exit_code == 5
    assert "5" in result.output


def test_workflow_create(run, service, tmp_path: Path) -> None:
    result = run("workflow", "create", "submit", "-g", TEST_GENERATOR, "--records-dir", str(tmp_path))
    assert result.exit_code == 0
    path = Path(result.output.strip().splitlines()[-1])
    assert path.is_file()
    assert path.parent.parent == tmp_path
    assert path.name.startswith("submit_batch_")
    assert service.token not in path.read_text()
    embedded = run(
        "workflow", "create", "submit", "-g", TEST_GENERATOR, "--records-dir", str(tmp_path), "--embed-token"
    )
    assert embedded.exit_code == 0
    assert service.token in Path(embedded.output.strip().splitlines()[-1]).read_text()
    assert run("workflow", "create", "download", "--records-dir", str(tmp_path)).exit_code == 2


def test_status_watch_timeout_exit_code(run, service, tmp_path: Path) -> None:
    from opsin.synth import Session

    sesh = Session(service.token, "visionfit-v0.4.0", service.url)
    batch = sesh.submit([{"num_reps": 20, "image_width": 128, "image_height": 128}] * 3, batch_name="slow")
    try:
        result = run("status", batch.batch_id, "--watch", "--timeout", "0.2")
        assert result.exit_code == 6
        assert "still in progress" in result.output
    finally:
        batch.cancel()
