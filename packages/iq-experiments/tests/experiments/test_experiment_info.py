"""ExperimentInfo: the runs dict, get_df (exact values of the original's test), grouping, metrics on past runs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from mlflow import MlflowClient

from opsin.iq.datasets import DSModifier, DSModifier_jpg, DSWrapper
from opsin.iq.errors import ExperimentNotFound
from opsin.iq.experiments import ExperimentInfo, ExperimentSetup, PythonScriptTaskExecution
from opsin.iq.metrics import BBDetectionMetrics, Metric, coco_eval_metrics_names

from .conftest import calls

FINAL = (0.11046221254112044, 0.007616041326960263, 0.06699120597771174)  # val_f1, val_rmse, train_rmse


def _run(coco_ds, fake_script, fake_env, name="info", **kw):
    kw.setdefault("ds_modifiers_list", [DSModifier(), DSModifier_jpg(params={"quality": 50})])
    kw.setdefault("max_workers", 1)
    ExperimentSetup(
        experiment_name=name,
        task_instance=PythonScriptTaskExecution(fake_script, env=fake_env),
        ref_dsw_train=DSWrapper(data_path=str(coco_ds)),
        **kw,
    ).execute()
    return ExperimentInfo(name)


def test_runs_dict_and_get_df_exact_values(coco_ds, fake_script, fake_env):
    info = _run(coco_ds, fake_script, fake_env)
    assert list(info.runs) == ["ds_coco_dataset#jpg50_modifier", "ds_coco_dataset#base_modifier"]  # newest first
    run = info.runs["ds_coco_dataset#jpg50_modifier"]
    assert run["run_status"] == "FINISHED"
    assert run["params_dict"]["modifier"] == "jpg50_modifier"
    assert run["params_dict"]["quality"] == "50"
    assert run["metrics_dict"]["val_f1"] == FINAL[0]
    assert run["train_ds_path"] == str(coco_ds.parent / "ds_coco_dataset#jpg50_modifier")
    assert run["output_pred_path"] == f"{run['artifact_path']}/output.json"
    with open(run["output_pred_path"]) as fh:
        assert len(json.load(fh)) == 130
    df = info.get_df(["modifier"], ["val_f1", "val_rmse", "train_rmse"])
    expected = pd.DataFrame(
        [
            ["ds_coco_dataset#jpg50_modifier", "jpg50_modifier", *FINAL],
            ["ds_coco_dataset#base_modifier", "base_modifier", *FINAL],
        ],
        columns=["name", "ds_modifier", "val_f1", "val_rmse", "train_rmse"],
    )
    pd.testing.assert_frame_equal(df, expected)
    results = info.get_results_dict()
    assert results["ds_coco_dataset#base_modifier"]["val_f1"][-1] == FINAL[0]
    with pytest.raises(ExperimentNotFound, match="no mlflow experiment named 'nope'"):
        ExperimentInfo("nope")


def test_repetitions_grouped_mean_std_and_conversions(coco_ds, fake_script, fake_env):
    info = _run(
        coco_ds, fake_script, fake_env, name="grouped", repetitions=3, extra_train_params={"epochs": [4, 6]},
        ds_modifiers_list=[DSModifier()],
    )  # fmt: skip
    assert list(info.runs) == ["ds_coco_dataset#base_modifier"] + [
        f"ds_coco_dataset#base_modifier_{i}" for i in range(1, 6)
    ]
    df = info.get_df(["modifier"], ["val_f1", "epochs", "lr"], fields_to_int_lst=["epochs"], fields_to_float_lst=["lr"])
    assert df["epochs"].tolist() == [6, 6, 6, 4, 4, 4]  # newest first
    assert df["epochs"].dtype == "int64"
    assert df["lr"].tolist() == [0.1] * 6  # a results.json scalar: a metric and a param
    grouped = info.get_df(["modifier"], ["val_f1"], grouped=["modifier", "epochs"], fields_to_int_lst=["ds_epochs"])
    assert list(grouped.columns) == [("val_f1", "mean"), ("val_f1", "std")]
    assert grouped.index.names == ["ds_modifier", "ds_epochs"]
    assert grouped.loc[("base_modifier", 4), ("val_f1", "mean")] == pytest.approx(0.1 * 1.01**4, rel=1e-12)
    assert grouped.loc[("base_modifier", 6), ("val_f1", "std")] == 0.0


def test_get_df_missing_values_failed_runs_and_zero(coco_ds, fake_script, fake_env):
    env = {**fake_env, "FAKE_CRASH_LR": "0.5"}
    info = _run(coco_ds, fake_script, env, name="partial", extra_train_params={"lr": [0.0, 0.5]},
                ds_modifiers_list=[DSModifier()])  # fmt: skip
    assert [r["run_status"] for r in info.runs.values()] == ["FAILED", "FINISHED"]
    df = info.get_df(["modifier"], ["lr", "val_f1"], fields_to_float_lst=["lr"])
    assert df["lr"].tolist() == [0.0]  # 0 is a value, not "missing"
    with_failed = info.get_df(["modifier"], ["lr", "val_f1"], include_failed=True, dropna=False)
    assert len(with_failed) == 2
    assert math.isnan(with_failed["val_f1"].iloc[0])
    assert len(info.get_df(["modifier"], ["lr", "val_f1"], include_failed=True)) == 1  # dropna
    gt = str(coco_ds / "coco_annotations.json")
    runs = info.apply_metric_per_run(DetectionCount(), gt, only_finished=False)  # the FAILED run has no output.json
    assert [r["metrics_dict"].get("n_pred") for r in runs.values()] == [None, 130.0]


def test_apply_metric_per_run_with_bbdetection_metrics(coco_ds, fake_script, fake_env, mlflow_store):
    # the detections are the ground truth with scores: every box found at every IoU threshold
    info = _run(coco_ds, fake_script, fake_env, name="bbox")
    runs = info.apply_metric_per_run(BBDetectionMetrics(), str(coco_ds / "coco_annotations.json"))
    client = MlflowClient(tracking_uri=mlflow_store)
    for run in runs.values():
        assert run["metrics_dict"]["ap_0.5_all"] == pytest.approx(1.0)
        assert run["metrics_dict"]["ap_0.5-0.95_all"] == pytest.approx(1.0)
        assert client.get_run(run["run_id"]).data.metrics["ap_0.5-0.95_all"] == pytest.approx(1.0)


def test_apply_metric_per_run_with_bbdetection_metrics_on_the_original_data(
    real_coco_ds, real_datasets, fake_script, fake_env, mlflow_store
):
    coco_ds = real_coco_ds
    fake_env = {**fake_env, "FAKE_DETECT_JSON": str(real_datasets / "coco_detect.json")}
    info = _run(coco_ds, fake_script, fake_env, name="bbox")
    runs = info.apply_metric_per_run(BBDetectionMetrics(), str(coco_ds / "coco_annotations.json"))
    expected = [1, 1, 1, 1, 1, 1, 0.7012303556658395, 0.9950372208436726, 1, 1, 1, 1]
    client = MlflowClient(tracking_uri=mlflow_store)
    for run in runs.values():
        assert [run["metrics_dict"][k] for k in coco_eval_metrics_names] == pytest.approx(expected, abs=1e-12)
        assert run["run_status"] == "FINISHED"
        assert client.get_run(run["run_id"]).data.metrics["ap_0.5-0.95_all"] == pytest.approx(1.0)


class DetectionCount(Metric):
    """Custom metric: detections in the predictions vs annotations in the ground truth."""

    name = "detection_count"

    def __init__(self) -> None:
        self.metric_names = ["n_pred", "n_gt", "count_ratio"]

    def apply(self, predictions: str, gt_path: str) -> dict[str, float]:
        with open(predictions) as fh:
            n_pred = len(json.load(fh))
        with open(gt_path) as fh:
            n_gt = len(json.load(fh)["annotations"])
        return {"n_pred": n_pred, "n_gt": n_gt, "count_ratio": n_pred / n_gt, "note": "not numeric"}


def test_apply_custom_metric_per_run_and_without_mlflow(coco_ds, fake_script, fake_env, mlflow_store):
    info = _run(coco_ds, fake_script, fake_env, name="custom")
    gt = str(coco_ds / "coco_annotations.json")
    in_memory = info.apply_metric_per_run_no_mlflow(DetectionCount(), gt)
    assert [r["n_pred"] for r in in_memory] == [130, 130]
    assert "n_pred" not in ExperimentInfo("custom").runs["ds_coco_dataset#base_modifier"]["metrics_dict"]
    runs = info.apply_metric_per_run(DetectionCount(), gt)
    for run in runs.values():
        assert run["metrics_dict"]["n_gt"] == 130.0
        assert run["metrics_dict"]["count_ratio"] == 1.0
        assert "note" not in run["metrics_dict"]
    assert len(calls(fake_env)) == 2  # metrics never re-ran the scripts


def test_a_run_whose_dataset_was_deleted_gets_nan(coco_ds, fake_script, fake_env):
    import shutil

    from opsin.iq.metrics import SNRMetric

    info = _run(coco_ds, fake_script, fake_env, name="deleted")
    shutil.rmtree(coco_ds.parent / "ds_coco_dataset#jpg50_modifier")
    runs = info.apply_metric_per_run(SNRMetric(info, ext="jpg"), str(coco_ds / "coco_annotations.json"))
    assert math.isnan(runs["ds_coco_dataset#jpg50_modifier"]["metrics_dict"]["snr_median"])
    assert runs["ds_coco_dataset#base_modifier"]["metrics_dict"]["snr_median"] > 0  # the other run carries on
