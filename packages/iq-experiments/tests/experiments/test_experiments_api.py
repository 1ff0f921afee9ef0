"""The public surface of ``opsin.iq.experiments``: names, compat registry, hashing, light imports."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import opsin.iq.experiments as experiments
from opsin.iq.experiments import RunOutcome, get_hash
from opsin.iq.experiments._runlog import results_to_mlflow, stderr_tail
from opsin.iq.experiments.task_execution import PythonScriptTaskExecution
from opsin.iq.experiments.utils import task_class_type_dict


def test_all_is_pinned():
    assert experiments.__all__ == [
        "ExperimentFailedError",
        "ExperimentInfo",
        "ExperimentNotFound",
        "ExperimentNotFoundError",
        "ExperimentSetup",
        "ExperimentVisual",
        "GridPoint",
        "PythonScriptTaskExecution",
        "RunOutcome",
        "TaskExecution",
        "TaskFailed",
        "TaskFailedError",
        "TaskTimeoutError",
        "example_script_path",
        "get_hash",
    ]
    for name in experiments.__all__:
        # the original's exception names are aliases of the ...Error classes
        assert getattr(experiments, name).__name__ in (name, f"{name}Error")
    assert experiments.ExperimentNotFound is experiments.ExperimentNotFoundError
    assert issubclass(experiments.ExperimentNotFound, LookupError)
    assert task_class_type_dict == {"PYTHON_SCRIPT": PythonScriptTaskExecution}


def test_import_touches_neither_mlflow_nor_pandas():
    code = (
        "import sys, opsin.iq.experiments as e, opsin.iq.experiments.task_execution;"
        "assert 'mlflow' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_get_hash_is_stable_and_canonical():
    assert get_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert get_hash({"b": 1, "a": [1.5, "x"]}) == get_hash({"a": [1.5, "x"], "b": 1})
    assert get_hash({"a": 1}) != get_hash({"a": 2})
    assert len(get_hash("abc", 12)) == 12
    assert RunOutcome("i", "n", "FINISHED", 0, 1.0, None).skipped is False


def test_results_json_rules():
    params, metrics = results_to_mlflow(
        {
            "acc": 0.5,
            "n": 3,
            "ok": True,
            "name": "resnet",
            "inf": float("inf"),
            "loss": [1.0, 0.5],
            "pairs": [[10, 0.3], [20, 0.2]],
            "none": None,
            "empty": [],
            "obj": {"a": 1},
            "mixed": [1, "x"],
        }
    )
    assert params == {"acc": 0.5, "n": 3, "ok": True, "name": "resnet", "inf": float("inf")}
    assert metrics == [
        ("acc", 0.5, 0),
        ("n", 3.0, 0),
        ("loss", 1.0, 0),
        ("loss", 0.5, 1),
        ("pairs", 0.3, 10),
        ("pairs", 0.2, 20),
    ]


def test_param_conflicts_become_tags(mlflow_store):
    from mlflow import MlflowClient

    from opsin.iq.experiments._runlog import log_results, start_run

    client = MlflowClient(tracking_uri=mlflow_store)
    exp_id = client.create_experiment("conflict")
    run_id = start_run(client, exp_id, "r", params={"lr": "0.001", "epochs": "3"}, tags={})
    log_results(client, run_id, {"lr": "1e-3", "epochs": 3, "acc": 0.9})
    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.001", "epochs": "3", "acc": "0.9"}
    assert run.data.tags["opsin.iq.param_conflict.lr"] == "1e-3"
    assert "opsin.iq.param_conflict.epochs" not in run.data.tags
    assert run.data.metrics == {"epochs": 3.0, "acc": 0.9}


def test_stderr_tail_limits(tmp_path):
    many = tmp_path / "many.txt"
    many.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert stderr_tail(many).splitlines() == [f"line {i}" for i in range(800, 1000)]
    big = tmp_path / "big.txt"
    big.write_text("".join("x" * 1000 + f" {i}\n" for i in range(150)))
    tail = stderr_tail(big)
    assert len(tail.encode()) <= 64 * 1024
    assert tail.endswith(" 149\n")
    assert tail.startswith("x")
    assert stderr_tail(tmp_path / "absent.txt") == ""
