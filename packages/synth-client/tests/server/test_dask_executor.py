"""Jobs run on a real Dask ``LocalCluster`` when the service is given a scheduler address."""

from __future__ import annotations

import pytest
from svc_helpers import batch_body, wait_batch

distributed = pytest.importorskip("distributed")


@pytest.mark.slow
def test_jobs_run_on_a_local_dask_cluster(make_service) -> None:  # type: ignore[no-untyped-def]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        svc = make_service(scheduler=cluster.scheduler_address)
        client = svc.user(samples=50)
        batch = client.post("/api/batch/", json=batch_body(3, param1=3)).json()
        summary = wait_batch(client, batch["id"], timeout=90)
        assert [job["status"] for job in summary["job_runs"]] == ["succeeded"] * 3
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as dask_client:
            # the cluster really executed the jobs (task keys name our worker function)
            assert any("run_job" in str(key) for key in dask_client.run_on_scheduler(_task_keys))
        assert client.get("/api/account/").json()["samples_rendered_total"] == 9
        svc.server.stop()


def _task_keys(dask_scheduler=None):  # type: ignore[no-untyped-def]
    return [str(key) for key in dask_scheduler.task_prefixes] if dask_scheduler is not None else []
