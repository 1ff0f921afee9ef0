"""ExperimentSetup: validation, the grid, parent/child structure, tracking defaults, executors."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from opsin.iq.datasets import DSModifier, DSModifier_jpg, DSWrapper
from opsin.iq.experiments import ExperimentSetup, PythonScriptTaskExecution
from opsin.iq.experiments._tracking import resolve_tracking_uri


def _children(uri: str, name: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in runs if r.data.tags.get("opsin.iq.role") == "child"]


def _setup(coco_ds, fake_script, fake_env, **kw) -> ExperimentSetup:
    kw.setdefault("experiment_name", "setup")
    kw.setdefault("ds_modifiers_list", [DSModifier()])
    kw.setdefault("max_workers", 1)
    return ExperimentSetup(
        task_instance=PythonScriptTaskExecution(fake_script, env=fake_env),
        ref_dsw_train=DSWrapper(data_path=str(coco_ds)),
        **kw,
    )


def test_run_names_and_params_for_nested_base_modifiers(mlflow_store, coco_ds, fake_script, fake_env):
    exp = _setup(coco_ds, fake_script, fake_env, ds_modifiers_list=[DSModifier(), DSModifier(DSModifier())])
    outcomes = exp.execute()
    assert [o.status for o in outcomes] == ["FINISHED", "FINISHED"]
    runs = _children(mlflow_store, "setup")
    assert [r.info.run_name for r in runs] == [
        "ds_coco_dataset#base_modifier",
        "ds_coco_dataset#base_modifier#base_modifier",
    ]
    assert runs[0].data.params["ds_name"] == "ds_coco_dataset#base_modifier"
    assert runs[0].data.params["modifier"] == "base_modifier"
    assert runs[1].data.params["modifier"] == "base_modifier#base_modifier"
    assert (coco_ds.parent / "ds_coco_dataset#base_modifier#base_modifier" / "images").is_dir()


def test_grid_is_modifiers_x_param_product_x_repetitions(mlflow_store, coco_ds, fake_script, fake_env):
    mods = [DSModifier_jpg(params={"quality": 30}), DSModifier_jpg(params={"quality": 80})]
    exp = _setup(
        coco_ds, fake_script, fake_env, ds_modifiers_list=mods, repetitions=2,
        extra_train_params={"lr": [1e-5, 1e-6], "epochs": (3, 4)},
    )  # fmt: skip
    grid = exp.grid()
    assert len(grid) == 2 * 2 * 2 * 2
    assert [(p.modifier_index, p.hparams, p.repetition) for p in grid[:5]] == [
        (0, {"lr": 1e-5, "epochs": 3}, 0),
        (0, {"lr": 1e-5, "epochs": 3}, 1),
        (0, {"lr": 1e-5, "epochs": 4}, 0),
        (0, {"lr": 1e-5, "epochs": 4}, 1),
        (0, {"lr": 1e-6, "epochs": 3}, 0),
    ]
    assert len({p.run_key for p in grid}) == len(grid)
    assert exp.grid()[7].run_key == grid[7].run_key  # stable


def test_two_lr_values_give_two_children_under_one_parent(mlflow_store, coco_ds, fake_script, fake_env):
    exp = _setup(coco_ds, fake_script, fake_env, extra_train_params={"lr": [1e-5, 1e-6]})
    outcomes = exp.execute()
    runs = _children(mlflow_store, "setup")
    assert len(outcomes) == len(runs) == 2
    assert sorted(r.data.params["lr"] for r in runs) == ["1e-05", "1e-06"]
    client = MlflowClient(tracking_uri=mlflow_store)
    parents = [
        r for r in client.search_runs([runs[0].info.experiment_id]) if r.data.tags.get("opsin.iq.role") == "parent"
    ]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name == "setup"
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["opsin.iq.experiment_key"] == exp.experiment_key()
    assert parent.data.tags["opsin.iq.finished_runs"] == "2"
    for rep, run in enumerate(runs):
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["opsin.iq.role"] == "child"
        assert tags["opsin.iq.repetition"] == "0"
        assert tags["opsin.iq.modifier"] == "base_modifier"
        assert json.loads(tags["opsin.iq.hparams"]) == {"lr": [1e-5, 1e-6][rep]}
        assert tags["opsin.iq.trainds"] == str(coco_ds.parent / "ds_coco_dataset#base_modifier")
        assert tags["opsin.iq.script"] == str(Path(exp.task_instance.model_script_path))
        assert tags["opsin.iq.returncode"] == "0"
        assert len(tags["opsin.iq.run_key"]) == 64


def test_validation_dataset_params_are_suffixed(mlflow_store, coco_ds, fake_script, fake_env):
    val = DSWrapper(data_path=str(coco_ds))
    exp = _setup(coco_ds, fake_script, fake_env, ref_dsw_val=val)
    exp.execute()
    (run,) = _children(mlflow_store, "setup")
    assert run.data.params["ds_name_val"] == "ds_coco_dataset#base_modifier"
    assert run.data.params["modifier_val"] == "base_modifier"
    assert run.data.params["val_ds"] == str(coco_ds.parent / "ds_coco_dataset#base_modifier")  # passed as --valds
    assert run.data.tags["opsin.iq.valds"] == str(coco_ds.parent / "ds_coco_dataset#base_modifier")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ds_modifiers_list": []}, ValueError, "ds_modifiers_list is empty"),
        ({"extra_train_params": {"lr": "0.1"}}, TypeError, r"extra_train_params\['lr'\] must be a list"),
        ({"extra_train_params": {"outputpath": ["x"]}}, ValueError, "reserved"),
        ({"extra_train_params": {"lr": []}}, ValueError, "is empty"),
        ({"extra_train_params": {"quality": [1]}, "ds_modifiers_list": [DSModifier_jpg()]}, ValueError, "clash"),
        ({"extra_train_params": {"ds_name": [1]}}, ValueError, "clash"),
        ({"repetitions": 0}, ValueError, "repetitions"),
        ({"cloud_options": {"bucket_name": "b"}}, NotImplementedError, "bucket"),
    ],
)
def test_invalid_setups_are_rejected(coco_ds, fake_script, fake_env, kwargs, error, match):
    with pytest.raises(error, match=match):
        _setup(coco_ds, fake_script, fake_env, **kwargs)


def test_tracking_defaults_and_precedence(monkeypatch, tmp_path, coco_ds, fake_script, fake_env):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(None)  # restored by the autouse fixture
    folder = tmp_path / "mlflow"
    exp = _setup(coco_ds, fake_script, fake_env)
    assert exp.tracking_uri == f"sqlite:///{folder}/mlflow.db"
    assert exp.registry_uri == exp.tracking_uri
    assert mlflow.get_tracking_uri() == exp.tracking_uri  # set globally at construction (compat)
    assert resolve_tracking_uri() == exp.tracking_uri  # "set earlier in this process" now wins over the default
    other = f"sqlite:///{tmp_path}/other/mlflow.db"
    exp2 = _setup(coco_ds, fake_script, fake_env, cloud_options={"tracking_uri": other, "registry_uri": "sqlite:///r"})
    assert exp2.tracking_uri == other
    assert exp2.registry_uri == "sqlite:///r"
    exp.execute()
    client = MlflowClient(tracking_uri=exp.tracking_uri)
    location = client.get_experiment_by_name("setup").artifact_location
    assert Path(location.removeprefix("file://")) == folder / "artifacts"
    assert not (tmp_path / "mlruns").exists()


def test_default_runs_scripts_in_parallel_from_threads(mlflow_store, coco_ds, fake_script, fake_env):
    import concurrent.futures as cf

    exp = _setup(coco_ds, fake_script, fake_env, max_workers=None, repetitions=2, extra_train_params={"lr": [0.1, 0.2]})
    executor, owned, slots = exp._resolve_executor(4)
    # each script is its own subprocess: the coordinator waits on them from threads, no process pool
    assert isinstance(executor, cf.ThreadPoolExecutor) or (executor is None and slots == 1)
    if executor is not None:
        assert owned
        executor.shutdown()
    outcomes = exp.execute()
    assert [o.status for o in outcomes] == ["FINISHED"] * 4
    runs = _children(mlflow_store, "setup")
    assert sorted(r.info.run_id for r in runs) == sorted(o.run_id for o in outcomes)
    assert all(r.data.metrics["val_f1"] == 0.11046221254112044 for r in runs)
