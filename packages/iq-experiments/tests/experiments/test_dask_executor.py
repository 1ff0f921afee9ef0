"""Grid runs on a real Dask ``distributed.LocalCluster`` (worker processes, TCP on 127.0.0.1)."""

from __future__ import annotations

import pytest

from opsin.iq.datasets import DSModifier, DSWrapper
from opsin.iq.experiments import ExperimentInfo, ExperimentSetup, PythonScriptTaskExecution

from .conftest import calls


@pytest.mark.slow
def test_grid_on_a_dask_local_cluster(coco_ds, fake_script, fake_env, tmp_path):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            host="127.0.0.1", dashboard_address=None, n_workers=2, threads_per_worker=1, processes=True
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        outcomes = ExperimentSetup(
            experiment_name="dask",
            task_instance=PythonScriptTaskExecution(fake_script, tmp_dir=tmp_path / "shared-runs", env=fake_env),
            ref_dsw_train=DSWrapper(data_path=str(coco_ds)),
            ds_modifiers_list=[DSModifier()],
            extra_train_params={"lr": [0.1, 0.2, 0.3]},
            executor=client,  # converted with client.get_executor()
        ).execute()
        assert client.status == "running"  # the caller's client is left open
    assert [o.status for o in outcomes] == ["FINISHED"] * 3
    assert all((tmp_path / "shared-runs" / o.run_id / "results.json").is_file() for o in outcomes)
    assert sorted(calls(fake_env)) == [f"ds_coco_dataset#base_modifier lr={lr}" for lr in (0.1, 0.2, 0.3)]
    df = ExperimentInfo("dask").get_df(["lr"], ["val_f1"], fields_to_float_lst=["ds_lr"])
    assert df["ds_lr"].tolist() == [0.3, 0.2, 0.1]  # newest first
    assert set(df["val_f1"]) == {0.11046221254112044}
