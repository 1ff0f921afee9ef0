"""Against a real ``mlflow server`` (SQLite backend, proxied artifacts) on 127.0.0.1, started by the test."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsin.iq.datasets import DSModifier, DSWrapper
from opsin.iq.experiments import ExperimentInfo, ExperimentSetup, PythonScriptTaskExecution

from .conftest import SCRIPTS

FINAL = (0.11046221254112044, 0.007616041326960263, 0.06699120597771174)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path, mlflow_template_db: Path) -> Iterator[str]:
    folder = tmp_path / "server"
    folder.mkdir()
    shutil.copyfile(mlflow_template_db, folder / "backend.db")
    port = _free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{folder / 'backend.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (folder / "server.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner and huey consumers: a plain tracking server
    proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {proc.returncode}: {(folder / 'server.log').read_text()[-2000:]}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer within 180 s: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()


@pytest.mark.slow
def test_experiment_on_a_tracking_server(mlflow_server, coco_ds, fake_script, fake_env, tmp_path):
    experiment = ExperimentSetup(
        experiment_name="on-server",
        task_instance=PythonScriptTaskExecution(fake_script, env=fake_env),
        ref_dsw_train=DSWrapper(data_path=str(coco_ds)),
        ds_modifiers_list=[DSModifier()],
        extra_train_params={"lr": [0.1, 0.2]},
        cloud_options={"tracking_uri": mlflow_server},
        max_workers=2,
    )
    assert [o.status for o in experiment.execute()] == ["FINISHED", "FINISHED"]
    assert not (tmp_path / "mlruns").exists()
    assert not (tmp_path / "mlartifacts").exists()

    info = ExperimentInfo("on-server", tracking_uri=mlflow_server)
    assert len(info.runs) == 2
    run = info.runs["ds_coco_dataset#base_modifier"]
    assert run["artifact_path"].startswith("mlflow-artifacts:")  # served by the server, not a local folder
    local = Path(run["output_pred_path"])
    assert local.is_relative_to(tmp_path / "opsin-home")  # downloaded into the cache
    assert len(json.loads(local.read_text())) == 130
    df = info.get_df(["modifier", "lr"], ["val_f1", "val_rmse", "train_rmse"], fields_to_float_lst=["ds_lr"])
    assert df["ds_lr"].tolist() == [0.2, 0.1]  # newest first
    assert df[["val_f1", "val_rmse", "train_rmse"]].values.tolist() == [list(FINAL)] * 2
    stored = tmp_path / "server" / "artifacts"
    assert len(list(stored.rglob("output.json"))) == 2  # artifacts landed in the server's destination

    # live logging from the script through the server (mlflow_monitoring)
    echo = PythonScriptTaskExecution(SCRIPTS / "echo_args.py")
    outcome = echo.train_val("on-server", "live", str(coco_ds), mlflow_monitoring=True, tracking_uri=mlflow_server)
    assert outcome.status == "FINISHED"
    live = ExperimentInfo("on-server", tracking_uri=mlflow_server).runs["live"]
    assert live["metrics_dict"]["live_metric"] == 42.0
