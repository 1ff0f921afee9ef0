from __future__ import annotations

import os
import threading
from concurrent.futures import Executor

import pytest
from _tasks import fail_on_three, set_tag, square, tag_and_pid, worker_pid

from opsin.core import ExecutorSpecError, make_executor, map_unordered


@pytest.mark.parametrize("spec", ["sync", "thread", "local"])
def test_map_unordered_gives_every_result(spec: str) -> None:
    with make_executor(spec, max_workers=2) as pool:
        results = dict(map_unordered(pool, square, range(20)))
    assert results == {i: i * i for i in range(20)}


def test_local_runs_in_other_processes() -> None:
    with make_executor("local", max_workers=2) as pool:
        pids = {pid for _, pid in map_unordered(pool, worker_pid, range(8))}
    assert os.getpid() not in pids


def test_sync_runs_in_calling_thread() -> None:
    seen: list[str] = []
    with make_executor("sync") as pool:
        pool.submit(lambda: seen.append(threading.current_thread().name)).result()
    assert seen == [threading.current_thread().name]


@pytest.mark.parametrize("spec", ["sync", "thread", "local"])
def test_first_failure_names_the_item(spec: str) -> None:
    with make_executor(spec, max_workers=2) as pool, pytest.raises(ValueError, match="three is not allowed") as info:
        list(map_unordered(pool, fail_on_three, range(10)))
    assert info.value.opsin_item == 3  # type: ignore[attr-defined]
    assert any("item 3" in note for note in info.value.__notes__)


def test_bounded_window_consumes_lazily() -> None:
    consumed: list[int] = []

    def gen():
        for i in range(100):
            consumed.append(i)
            yield i

    with make_executor("thread", max_workers=2) as pool:
        it = map_unordered(pool, square, gen(), max_pending=4)
        next(it)
        assert len(consumed) <= 5
        assert len(list(it)) == 99


def test_existing_executor_passes_through() -> None:
    with make_executor("thread") as pool:
        assert make_executor(pool) is pool


@pytest.mark.parametrize("spec", ["cluster", "local:4", ""])
def test_unknown_spec_is_named(spec: str) -> None:
    with pytest.raises(ExecutorSpecError, match="unknown executor"):
        make_executor(spec)


def test_bad_worker_count() -> None:
    with pytest.raises(ExecutorSpecError, match="max_workers"):
        make_executor("thread", max_workers=0)


def test_unreachable_dask_scheduler_is_clear() -> None:
    with pytest.raises(ExecutorSpecError, match=r"127\.0\.0\.1:1"):
        make_executor("dask://127.0.0.1:1")


@pytest.mark.slow
def test_dask_executor_on_a_real_local_cluster() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        pool: Executor = make_executor("dask://" + address.removeprefix("tcp://"))
        try:
            results = dict(map_unordered(pool, square, range(12)))
            pids = {pid for _, pid in map_unordered(pool, worker_pid, range(6))}
            with pytest.raises(ValueError, match="three") as info:
                list(map_unordered(pool, fail_on_three, range(6)))
        finally:
            pool.shutdown()
        assert results == {i: i * i for i in range(12)}
        assert os.getpid() not in pids
        assert info.value.opsin_item == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", ["thread", "local"])
def test_initializer_runs_in_every_worker(spec: str) -> None:
    with make_executor(spec, max_workers=2, initializer=set_tag, initargs=("ready",)) as pool:
        results = [result for _, result in map_unordered(pool, tag_and_pid, range(8))]
    assert {tag for tag, _ in results} == {"ready"}
    if spec == "local":
        assert os.getpid() not in {pid for _, pid in results}


@pytest.mark.parametrize("spec", ["sync", "dask://127.0.0.1:1"])
def test_initializer_is_refused_without_own_workers(spec: str) -> None:
    with pytest.raises(ExecutorSpecError, match="initializer needs a 'local' or 'thread' pool"):
        make_executor(spec, initializer=set_tag, initargs=("x",))
    with make_executor("thread") as pool, pytest.raises(ExecutorSpecError, match="existing executor"):
        make_executor(pool, initializer=set_tag)
