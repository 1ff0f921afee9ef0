"""Failures stay local to their run; an interrupted experiment resumes with only the missing runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from opsin.iq.datasets import DSModifier, DSWrapper
from opsin.iq.experiments import ExperimentInfo, ExperimentSetup, PythonScriptTaskExecution

from .conftest import calls


def _setup(coco_ds, fake_script, env, **kw) -> ExperimentSetup:
    return ExperimentSetup(
        experiment_name="resilient",
        task_instance=PythonScriptTaskExecution(fake_script, env=env),
        ref_dsw_train=DSWrapper(data_path=str(coco_ds)),
        ds_modifiers_list=[DSModifier()],
        extra_train_params={"lr": [0.1, 0.5, 0.3]},
        **kw,
    )


def _parents(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("resilient")
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("opsin.iq.role") == "parent"]


def test_one_crashing_grid_point_fails_alone_then_resume_reruns_only_it(mlflow_store, coco_ds, fake_script, fake_env):
    outcomes = _setup(coco_ds, fake_script, {**fake_env, "FAKE_CRASH_LR": "0.5"}, max_workers=2).execute()
    assert [o.status for o in outcomes] == ["FINISHED", "FAILED", "FINISHED"]
    assert outcomes[1].returncode == 3
    info = ExperimentInfo("resilient")
    failed = next(r for r in info.runs.values() if r["run_status"] == "FAILED")
    assert failed["params_dict"]["lr"] == "0.5"
    assert failed["tags"]["opsin.iq.returncode"] == "3"
    tail = Path(failed["artifact_path"], "logs", "stderr_tail.txt").read_text().splitlines()
    assert tail[0] == "error line 100"
    assert tail[-1] == "error line 299"
    assert len(tail) == 200
    (parent,) = _parents(mlflow_store)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["opsin.iq.finished_runs"] == "2"
    assert parent.data.tags["opsin.iq.failed_runs"] == "1"
    assert len(calls(fake_env)) == 3

    again = _setup(coco_ds, fake_script, fake_env, max_workers=1).execute()  # the bug is fixed: resume
    assert [(o.status, o.skipped) for o in again] == [("FINISHED", True), ("FINISHED", False), ("FINISHED", True)]
    assert calls(fake_env)[3:] == ["ds_coco_dataset#base_modifier lr=0.5"]
    (parent2,) = _parents(mlflow_store)
    assert parent2.info.run_id == parent.info.run_id
    assert parent2.info.status == "FINISHED"
    fresh = _setup(coco_ds, fake_script, fake_env, max_workers=1, resume=False).execute()
    assert not any(o.skipped for o in fresh)
    assert len(_parents(mlflow_store)) == 2


DRIVER = """
import os, sys
from opsin.iq.datasets import DSModifier, DSWrapper
from opsin.iq.experiments import ExperimentSetup, PythonScriptTaskExecution
if __name__ == "__main__":
    env = {k: os.environ[k] for k in ("FAKE_CALL_LOG", "FAKE_DETECT_JSON", "FAKE_SLEEP_LR", "FAKE_PID_FILE")}
    ExperimentSetup(
        experiment_name="resilient",
        task_instance=PythonScriptTaskExecution(sys.argv[2], env=env),
        ref_dsw_train=DSWrapper(data_path=sys.argv[1]),
        ds_modifiers_list=[DSModifier()],
        extra_train_params={"lr": [0.1, 0.5, 0.3]},
        max_workers=1,
    ).execute()
"""


@pytest.mark.slow
def test_killed_experiment_resumes_with_only_the_missing_runs(mlflow_store, coco_ds, fake_script, fake_env, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    pid_file = tmp_path / "script.pid"
    env = {**os.environ, **fake_env, "FAKE_SLEEP_LR": "0.5", "FAKE_PID_FILE": str(pid_file)}
    proc = subprocess.Popen([sys.executable, str(driver), str(coco_ds), str(fake_script)], env=env)
    script_pid = None
    try:
        deadline = time.monotonic() + 240
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert proc.poll() is None, "the experiment process ended before reaching the second run"
            assert time.monotonic() < deadline, "the second run never started"
            time.sleep(0.2)
        script_pid = int(pid_file.read_text())
    finally:
        proc.kill()  # the experiment dies mid-grid: run 1 finished, run 2 RUNNING, run 3 never created
        proc.wait(timeout=30)
        if script_pid is not None:
            os.kill(script_pid, signal.SIGKILL)  # its orphaned script (own session) goes too
    assert calls(fake_env) == ["ds_coco_dataset#base_modifier lr=0.1", "ds_coco_dataset#base_modifier lr=0.5"]
    info = ExperimentInfo("resilient")
    assert [r["run_status"] for r in info.runs.values()] == ["RUNNING", "FINISHED"]  # newest first

    outcomes = _setup(coco_ds, fake_script, fake_env, max_workers=1).execute()
    assert [(o.status, o.skipped) for o in outcomes] == [("FINISHED", True), ("FINISHED", False), ("FINISHED", False)]
    assert calls(fake_env)[2:] == ["ds_coco_dataset#base_modifier lr=0.5", "ds_coco_dataset#base_modifier lr=0.3"]
    statuses = [(r["params_dict"]["lr"], r["run_status"]) for r in ExperimentInfo("resilient").runs.values()]
    assert statuses == [("0.3", "FINISHED"), ("0.5", "FINISHED"), ("0.5", "KILLED"), ("0.1", "FINISHED")]
    (parent,) = _parents(mlflow_store)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["opsin.iq.skipped_runs"] == "1"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split(") ")[1][0] != "Z"


def test_interrupt_kills_running_scripts_and_marks_runs_killed(mlflow_store, coco_ds, tmp_path):
    import threading

    from .conftest import SCRIPTS

    pids_file = tmp_path / "pids.txt"
    setup = ExperimentSetup(
        experiment_name="interrupted",
        task_instance=PythonScriptTaskExecution(SCRIPTS / "spawn_and_hang.py", env={"PIDS_FILE": str(pids_file)}),
        ref_dsw_train=DSWrapper(data_path=str(coco_ds)),
        ds_modifiers_list=[DSModifier()],
        extra_train_params={"lr": [0.1, 0.2, 0.3]},
        max_workers=2,
    )

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if pids_file.exists() and len(pids_file.read_text().splitlines()) == 2:  # both workers busy
                break
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the coordinator would receive it

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        setup.execute()
    pids = [int(p) for p in pids_file.read_text().split()]
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)  # the script and its child were terminated
    client = MlflowClient(tracking_uri=mlflow_store)
    exp = client.get_experiment_by_name("interrupted")
    runs = client.search_runs([exp.experiment_id])
    assert sorted((r.data.tags["opsin.iq.role"], r.info.status) for r in runs) == [
        ("child", "KILLED"),
        ("child", "KILLED"),
        ("parent", "KILLED"),
    ]  # the third run was never started
