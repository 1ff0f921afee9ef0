"""The user guide's Quickstart, imports changed, on the fixture COCO dataset with the bundled example script."""

from __future__ import annotations

import json
import os

import pytest
from mlflow import MlflowClient

from opsin.iq.datasets import DSModifier_jpg, DSWrapper
from opsin.iq.experiments import (
    ExperimentInfo,
    ExperimentSetup,
    ExperimentVisual,
    PythonScriptTaskExecution,
    example_script_path,
)
from opsin.iq.metrics import BBDetectionMetrics


@pytest.mark.slow
def test_quickstart_end_to_end(coco_ds, mlflow_store):
    data_path = str(coco_ds)
    # -- the guide's Quickstart (imports changed; a smaller grid: 2 modifiers x 2 lr values x 2 repetitions) --
    ds_wrapper = DSWrapper(data_path=data_path)
    ds_modifiers_list = [DSModifier_jpg(params={"quality": i}) for i in [10, 90]]
    task = PythonScriptTaskExecution(model_script_path=example_script_path())
    experiment_name = "MyFirstExperiment"
    experiment = ExperimentSetup(
        experiment_name=experiment_name,
        task_instance=task,
        ref_dsw_train=ds_wrapper,
        ds_modifiers_list=ds_modifiers_list,
        repetitions=2,
        extra_train_params={"epochs": [40], "lr": [0.05, 0.5]},
    )
    outcomes = experiment.execute()
    experiment_info = ExperimentInfo(experiment_name)
    runs = experiment_info.runs
    df = experiment_info.get_df(
        ds_params=["modifier"],
        metrics=["rmse", "epochs", "lr"],
        dropna=True,
        fields_to_float_lst=["rmse", "lr"],
        fields_to_int_lst=["epochs"],
    )
    ev = ExperimentVisual(df, os.path.join(data_path, "mod-rmse-lr-epoch.png"))
    ax = ev.visualize(xvar="lr", yvar="rmse", legend_var="epochs", title="rmse - lr")
    # -- checks --
    assert [o.status for o in outcomes] == ["FINISHED"] * 8
    assert len(runs) == 8
    assert len(df) == 8
    assert list(df.columns) == ["name", "ds_modifier", "rmse", "epochs", "lr"]
    assert sorted(set(df["ds_modifier"])) == ["jpg10_modifier", "jpg90_modifier"]
    assert df["epochs"].tolist() == [40] * 8
    assert sorted(set(df["lr"])) == [0.05, 0.5]
    assert df["rmse"].between(0, 1).all()
    with open(os.path.join(data_path, "mod-rmse-lr-epoch.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert list(ax.get_lines()[0].get_xdata()) == [0.05, 0.5]
    # the example really learns: the training loss falls in every run
    client = MlflowClient(tracking_uri=mlflow_store)
    for run in runs.values():
        history = [m.value for m in client.get_metric_history(run["run_id"], "train_loss")]
        assert len(history) == 40
        assert history[-1] < history[0]
    # its output.json is a valid COCO result list that detection metrics can score
    with open(next(iter(runs.values()))["output_pred_path"]) as fh:
        detections = json.load(fh)
    assert {"image_id", "category_id", "bbox", "score"} <= set(detections[0])
    scored = experiment_info.apply_metric_per_run(
        BBDetectionMetrics(), os.path.join(data_path, "coco_annotations.json")
    )
    for run in scored.values():
        assert 0.0 <= run["metrics_dict"]["ar_0.5-0.95_all"] <= 1.0
