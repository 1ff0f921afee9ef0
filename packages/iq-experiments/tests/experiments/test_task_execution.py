"""PythonScriptTaskExecution: the CLI contract, results/artifact logging, failures, timeouts, environment."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from opsin.iq.datasets import DSWrapper
from opsin.iq.errors import TaskFailed
from opsin.iq.experiments.task_execution import PythonScriptTaskExecution, TaskExecution

from .conftest import SCRIPTS


def _client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri)


def test_fake_script_run_logs_params_metrics_and_artifacts(mlflow_store, coco_ds, fake_script, fake_env):
    task = PythonScriptTaskExecution(model_script_path=fake_script, env=fake_env)
    outcome = task.train_val(
        experiment_name="task", run_name="test_run", train_ds=DSWrapper(data_path=str(coco_ds)), mlargs={"lr": 1e-6}
    )
    assert outcome.status == "FINISHED"
    assert outcome.returncode == 0
    assert outcome.output_dir is None
    run = _client(mlflow_store).get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "test_run"
    params = run.data.params
    assert params["train_ds"] == str(Path(coco_ds).resolve())  # results.json scalar
    assert params["lr"] == "1e-06"
    assert params["ds_name"] == "ds_coco_dataset"
    assert run.data.metrics["val_f1"] == pytest.approx(0.11046221254112044, abs=0)  # latest of the list
    history = _client(mlflow_store).get_metric_history(outcome.run_id, "val_rmse")
    assert [m.step for m in history] == list(range(10))
    assert history[-1].value == 0.007616041326960263
    assert run.data.metrics["epochs"] == 10.0  # finite scalar -> also a metric at step 0
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    assert (artifacts / "output.json").is_file()
    assert (artifacts / "results.json").is_file()
    assert (artifacts / "plots" / "rmse.csv").is_file()
    assert "final train_rmse=0.06699120597771174" in (artifacts / "logs" / "stdout.txt").read_text()
    assert not (artifacts / "logs" / "stderr_tail.txt").exists()


def test_missing_script_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nonexistent\.py"):
        PythonScriptTaskExecution(model_script_path=tmp_path / "nonexistent.py")


def test_argv_contract_exact_tokens_and_environment(mlflow_store, coco_ds, tmp_path):
    task = PythonScriptTaskExecution(SCRIPTS / "echo_args.py", tmp_dir=tmp_path / "runs", env={"ECHO_ENV": "on"})
    val = tmp_path / "val"
    val.mkdir()
    outcome = task.train_val(
        "argv",
        "r",
        train_ds=str(coco_ds),
        val_ds=str(val),
        mlargs={"testds": str(val), "lr": 1e-05, "name": "a b", "flag": True},
        mlflow_monitoring=True,
    )
    assert outcome.status == "FINISHED"
    assert outcome.output_dir == str(tmp_path / "runs" / outcome.run_id)  # kept under tmp_dir
    seen = json.loads((Path(outcome.output_dir) / "argv.json").read_text())
    exp_id = _client(mlflow_store).get_run(outcome.run_id).info.experiment_id
    assert seen["argv"] == [
        "--trainds", str(coco_ds), "--outputpath", outcome.output_dir, "--valds", str(val), "--testds", str(val),
        "--mlfuri", mlflow_store, "--mlfexpid", exp_id, "--mlfrunid", outcome.run_id,
        "--lr", "1e-05", "--name", "a b", "--flag", "True",
    ]  # fmt: skip
    assert seen["env"] == "on"
    assert seen["outputpath_listing"] == []  # an existing empty folder
    run = _client(mlflow_store).get_run(outcome.run_id)
    assert run.data.params["ds_name_val"] == "val"
    assert run.data.params["ds_name_test"] == "val"
    assert run.data.tags["opsin.iq.testds"] == str(val)


def test_no_optional_arguments_without_val_test_or_monitoring(mlflow_store, coco_ds, tmp_path):
    task = PythonScriptTaskExecution(SCRIPTS / "echo_args.py", tmp_dir=tmp_path / "runs")
    outcome = task.train_val("argv2", "r", train_ds=str(coco_ds))
    seen = json.loads((Path(outcome.output_dir) / "argv.json").read_text())
    assert seen["argv"] == ["--trainds", str(coco_ds), "--outputpath", outcome.output_dir]


def test_failing_script_marks_run_failed_with_stderr_tail(mlflow_store, coco_ds, fake_script, fake_env):
    task = PythonScriptTaskExecution(fake_script, env={**fake_env, "FAKE_CRASH_LR": "0.5"})
    outcome = task.train_val("fail", "r", train_ds=str(coco_ds), mlargs={"lr": 0.5})
    assert outcome.status == "FAILED"
    assert outcome.returncode == 3
    run = _client(mlflow_store).get_run(outcome.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["opsin.iq.returncode"] == "3"
    assert run.data.tags["opsin.iq.failure"] == "returncode"
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    tail = (artifacts / "logs" / "stderr_tail.txt").read_text().splitlines()
    assert tail == [f"error line {i}" for i in range(100, 300)]  # the last 200 lines
    assert len((artifacts / "logs" / "stderr.txt").read_text().splitlines()) == 300
    with pytest.raises(TaskFailed, match="failed with code 3"):
        task.train_val("fail", "r2", train_ds=str(coco_ds), mlargs={"lr": 0.5}, raise_on_failure=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split(") ")[1][0] != "Z"


def test_timeout_kills_the_process_group(mlflow_store, coco_ds, tmp_path):
    pids_file = tmp_path / "pids.txt"
    task = PythonScriptTaskExecution(SCRIPTS / "spawn_and_hang.py", timeout_s=4, env={"PIDS_FILE": str(pids_file)})
    start = time.monotonic()
    outcome = task.train_val("timeout", "r", train_ds=str(coco_ds))
    assert time.monotonic() - start < 30
    assert outcome.status == "FAILED"
    assert outcome.returncode < 0
    run = _client(mlflow_store).get_run(outcome.run_id)
    assert run.data.tags["opsin.iq.failure"] == "timeout"
    script_pid, grandchild_pid = map(int, pids_file.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(script_pid) or _alive(grandchild_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(script_pid)
    assert not _alive(grandchild_pid)
    tail = (Path(run.info.artifact_uri.removeprefix("file://")) / "logs" / "stderr_tail.txt").read_text()
    assert "ran past 4 s" in tail


class _ReturnsCode(TaskExecution):
    """A custom task whose ``_execute`` writes results itself (the extension point)."""

    def __init__(self, code: int | None) -> None:
        super().__init__()
        self.code = code

    def _execute(self, train_ds, val_ds, output_path, mlargs):
        Path(output_path, "results.json").write_text(json.dumps({"seen_train": os.path.basename(train_ds), **mlargs}))
        return self.code


def test_custom_task_execute_extension_point(mlflow_store, coco_ds):
    ok = _ReturnsCode(None).train_val("custom", "ok", train_ds=str(coco_ds), mlargs={"k": 2})
    bad = _ReturnsCode(7).train_val("custom", "bad", train_ds=str(coco_ds))
    client = _client(mlflow_store)
    assert ok.status == "FINISHED"
    assert client.get_run(ok.run_id).data.params["seen_train"] == "ds_coco_dataset"
    assert client.get_run(ok.run_id).data.metrics["k"] == 2.0
    assert bad.status == "FAILED"
    assert client.get_run(bad.run_id).data.tags["opsin.iq.returncode"] == "7"


def test_base_task_execute_is_not_implemented(mlflow_store, coco_ds):
    outcome = TaskExecution().train_val("base", "r", train_ds=str(coco_ds))
    run = _client(mlflow_store).get_run(outcome.run_id)
    assert outcome.status == "FAILED"
    assert run.data.tags["opsin.iq.failure"] == "exception"
    tail = (Path(run.info.artifact_uri.removeprefix("file://")) / "logs" / "stderr_tail.txt").read_text()
    assert "NotImplementedError" in tail
    assert "TaskExecution does not implement _execute" in tail
