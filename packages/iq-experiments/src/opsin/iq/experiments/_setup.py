"""``ExperimentSetup``: a grid of training runs over modified datasets, tracked as nested mlflow runs.

The grid is every modifier (outer) x the product of the ``extra_train_params`` lists (dict order, last key fastest)
x ``repetitions`` (innermost). One parent run stands for the experiment; each grid point is a child run. Workers
only execute scripts; this process (the coordinator) is the only one writing to mlflow.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsin.core import get_logger, make_executor
from opsin.iq.errors import ExperimentFailedError
from opsin.iq.experiments import _runlog, _tracking
from opsin.iq.experiments._runner import GridRunner, capacity
from opsin.iq.experiments.task_execution import (
    RESERVED_ARGS,
    RunOutcome,
    TaskExecution,
    canonical_json,
    get_hash,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["ExperimentSetup", "GridPoint"]

logger = get_logger(__name__)

_CLOUD_DEFAULTS: dict[str, Any] = {"tracking_uri": "", "registry_uri": "", "bucket_name": "", "upload_num_threads": 10}


@dataclass(frozen=True)
class GridPoint:
    """One child run of the grid.

    Attributes:
        index: position in the grid.
        modifier_index: which modifier of ``ds_modifiers_list``.
        hparams: the hyper-parameter combination.
        repetition: 0-based repetition.
        run_key: the stable key identifying this run across re-executions.
    """

    index: int
    modifier_index: int
    hparams: dict[str, Any] = field(default_factory=dict)
    repetition: int = 0
    run_key: str = ""


def _abs_ds(ds: Any) -> str:
    return _runlog.dataset_path(ds)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_alive(owner: str | None) -> bool:
    """Whether the process named by an ``opsin.iq.owner`` tag (``host:pid``) still runs on this host."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return _pid_alive(int(pid))


class ExperimentSetup:
    """An experiment: a training task run on every modified version of a dataset.

    Args:
        experiment_name: the mlflow experiment name (created when missing).
        task_instance: how to train (e.g. :class:`~opsin.iq.experiments.task_execution.PythonScriptTaskExecution`).
        ref_dsw_train: the reference training dataset (``DSWrapper``).
        ds_modifiers_list: modifiers applied to the datasets, one grid block each.
        ref_dsw_val: optional validation dataset (modified the same way; params suffixed ``_val``).
        ref_dsw_test: optional test dataset (params suffixed ``_test``, passed as ``--testds``).
        extra_train_params: ``{hyper-parameter: [values, ...]}``; the grid is their product.
        repetitions: runs per grid point (>= 1).
        cloud_options: ``tracking_uri``, ``registry_uri``, ``bucket_name`` (not supported), ``upload_num_threads``.
        mlflow_monitoring: pass ``--mlfuri/--mlfexpid/--mlfrunid`` to the script.
        executor: any ``concurrent.futures.Executor``, an object with ``get_executor()`` (a Dask ``Client``) or a
            Dask address; default (and ``"local"``): threads of this process, each waiting on its script's
            subprocess, so plain scripts, notebooks and ``python -c`` need no ``if __name__ == "__main__"`` guard.
        max_workers: runs in flight; default ``min(runs, cpu_count)``; ``1`` runs sequentially in this process.
        resume: reuse the latest parent run with the same experiment key and skip its FINISHED children.
        progress: show a progress bar over runs (default: when on a terminal, see :func:`opsin.core.progress`).

    Raises:
        ValueError: empty modifier list, reserved or clashing hyper-parameter names, bad ``repetitions``.
        TypeError: an ``extra_train_params`` value that is not a list or tuple.
        NotImplementedError: ``cloud_options["bucket_name"]`` is set (no uploader).
    """

    def __init__(
        self,
        experiment_name: str,
        task_instance: TaskExecution,
        ref_dsw_train: Any,
        ds_modifiers_list: Sequence[Any],
        ref_dsw_val: Any = None,
        ref_dsw_test: Any = None,
        extra_train_params: dict[str, Sequence[Any]] | None = None,
        repetitions: int = 1,
        cloud_options: dict[str, Any] | None = None,
        mlflow_monitoring: bool = False,
        *,
        executor: Any = None,
        max_workers: int | None = None,
        resume: bool = True,
        progress: bool | None = None,
    ) -> None:
        self.experiment_name = str(experiment_name)
        self.task_instance = task_instance
        self.ref_dsw_train = ref_dsw_train
        self.ref_dsw_val = ref_dsw_val
        self.ref_dsw_test = ref_dsw_test
        self.ds_modifiers_list = list(ds_modifiers_list)
        self.extra_train_params = {k: list(v) for k, v in self._checked_params(extra_train_params).items()}
        if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
            msg = f"repetitions must be an integer >= 1, got {repetitions!r}"
            raise ValueError(msg)
        self.repetitions = repetitions
        if not self.ds_modifiers_list:
            msg = f"experiment {self.experiment_name!r}: ds_modifiers_list is empty (give at least one modifier)"
            raise ValueError(msg)
        self._check_clashes()
        self.cloud_options = self._checked_cloud(cloud_options)
        self.mlflow_monitoring = bool(mlflow_monitoring)
        self.executor = executor
        if max_workers is not None and max_workers < 1:
            msg = f"max_workers must be >= 1, got {max_workers}"
            raise ValueError(msg)
        self.max_workers = max_workers
        self.resume = resume
        self.progress = progress
        self.tracking_uri = _tracking.resolve_tracking_uri(self.cloud_options["tracking_uri"])
        self.registry_uri = _tracking.resolve_registry_uri(self.cloud_options["registry_uri"], self.tracking_uri)
        _tracking.set_global_uris(self.tracking_uri, self.registry_uri)

    # -- validation ----------------------------------------------------------------------------------------------
    @staticmethod
    def _checked_params(extra: dict[str, Sequence[Any]] | None) -> dict[str, Sequence[Any]]:
        extra = dict(extra or {})
        for key, values in extra.items():
            if key in RESERVED_ARGS:
                msg = f"extra_train_params key {key!r} is reserved for the framework ({sorted(RESERVED_ARGS)})"
                raise ValueError(msg)
            if not isinstance(values, (list, tuple)):
                msg = f"extra_train_params[{key!r}] must be a list or tuple of values, got {type(values).__name__}"
                raise TypeError(msg)
            if not values:
                msg = f"extra_train_params[{key!r}] is empty: the grid would have no runs"
                raise ValueError(msg)
        return extra

    def _check_clashes(self) -> None:
        ds_keys: set[str] = set()
        for ref, suffix in ((self.ref_dsw_train, ""), (self.ref_dsw_val, "_val"), (self.ref_dsw_test, "_test")):
            if ref is None:
                continue
            ds_keys.update(_runlog.dataset_params(ref, suffix))
            for mod in self.ds_modifiers_list:
                ds_keys.update(f"{k}{suffix}" for k in mod.log_parameters())
        clash = sorted(set(self.extra_train_params) & ds_keys)
        if clash:
            msg = f"extra_train_params keys {clash} clash with dataset/modifier params of the same name"
            raise ValueError(msg)

    @staticmethod
    def _checked_cloud(options: dict[str, Any] | None) -> dict[str, Any]:
        merged = {**_CLOUD_DEFAULTS, **(options or {})}
        unknown = sorted(set(merged) - set(_CLOUD_DEFAULTS))
        if unknown:
            logger.warning("cloud_options keys %s are not used", unknown)
        if merged["bucket_name"]:
            msg = (
                f"cloud_options['bucket_name']={merged['bucket_name']!r}: uploading modified datasets to a bucket is "
                "not implemented in opsin-iq-experiments (no uploader); put datasets on shared storage instead"
            )
            raise NotImplementedError(msg)
        return merged

    # -- the grid ------------------------------------------------------------------------------------------------
    def _datasets_identity(self) -> list[str]:
        return [_abs_ds(self.ref_dsw_train), _abs_ds(self.ref_dsw_val), _abs_ds(self.ref_dsw_test)]

    def experiment_key(self) -> str:
        """Hash of modifiers, params, datasets, task and repetitions (tag ``opsin.iq.experiment_key``)."""
        return get_hash(
            {
                "modifiers": [m.log_parameters() for m in self.ds_modifiers_list],
                "extra_train_params": self.extra_train_params,
                "datasets": self._datasets_identity(),
                "task": self.task_instance.identity(),
                "repetitions": self.repetitions,
            }
        )

    def grid(self) -> list[GridPoint]:
        """Every child run in execution order (modifier, then hyper-parameter product, then repetition)."""
        keys = list(self.extra_train_params)
        combos = list(itertools.product(*(self.extra_train_params[k] for k in keys)))
        points: list[GridPoint] = []
        datasets = self._datasets_identity()
        task = self.task_instance.identity()
        for m_idx, mod in enumerate(self.ds_modifiers_list):
            mod_id = {"name": mod._get_name(), "params": mod.log_parameters()}
            for combo in combos:
                hparams = dict(zip(keys, combo, strict=True))
                for rep in range(self.repetitions):
                    key = get_hash(
                        {"modifier": mod_id, "datasets": datasets, "hparams": hparams, "repetition": rep, "task": task}
                    )
                    points.append(GridPoint(len(points), m_idx, hparams, rep, key))
        return points

    # -- mlflow bookkeeping ----------------------------------------------------------------------------------------
    def _find_parent(self, client: MlflowClient, exp_id: str, key: str) -> str | None:
        runs = _tracking.run_query(
            client.search_runs,
            [exp_id],
            filter_string=f"tags.`opsin.iq.role` = 'parent' and tags.`opsin.iq.experiment_key` = '{key}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    @staticmethod
    def _children(client: MlflowClient, exp_id: str, parent_id: str) -> list[Any]:
        out: list[Any] = []
        token = None
        while True:
            page = _tracking.run_query(
                client.search_runs,
                [exp_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
                max_results=1000,
                page_token=token,
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    def _reuse(self, client: MlflowClient, exp_id: str, parent_id: str) -> tuple[dict[str, Any], set[str]]:
        """``(FINISHED runs by run key, run keys busy in another live process)``; marks dead RUNNING runs KILLED."""
        finished: dict[str, Any] = {}
        busy: set[str] = set()
        for run in self._children(client, exp_id, parent_id):
            key = run.data.tags.get("opsin.iq.run_key", "")
            status = run.info.status
            if status == "FINISHED":
                finished.setdefault(key, run)
            elif status in ("RUNNING", "SCHEDULED"):
                if _owner_alive(run.data.tags.get("opsin.iq.owner")):
                    busy.add(key)
                else:
                    logger.info("run %s was left %s by a dead process; marking it KILLED", run.info.run_id, status)
                    _tracking.run_query(client.set_terminated, run.info.run_id, "KILLED")
        return finished, busy

    def _start_parent(self, client: MlflowClient, exp_id: str, key: str, total: int) -> tuple[str, bool]:
        if self.resume:
            parent = self._find_parent(client, exp_id, key)
            if parent is not None:
                _tracking.run_query(client.update_run, parent, status="RUNNING")
                _runlog.log_batch(client, parent, tags={"opsin.iq.owner": _runlog.owner_tag()})
                return parent, True
        params = {
            "repetitions": self.repetitions,
            "extra_train_params": canonical_json(self.extra_train_params),
            "modifiers": json.dumps([m._get_name() for m in self.ds_modifiers_list]),
        }
        tags = {
            "opsin.iq.role": "parent",
            "opsin.iq.experiment_key": key,
            "opsin.iq.total_runs": total,
            "opsin.iq.trainds": _abs_ds(self.ref_dsw_train),
            **self.task_instance.run_tags(),
        }
        return _runlog.start_run(client, exp_id, self.experiment_name, params=params, tags=tags), False

    # -- execution -------------------------------------------------------------------------------------------------
    def _resolve_executor(self, n_runs: int) -> tuple[cf.Executor | None, bool, int]:
        """``(executor or None for in-process, owned, runs in flight)``.

        Each run is a script in its own subprocess, so the coordinator waits on them from threads: no process pool,
        which would re-import the user's ``__main__`` in every worker and break unguarded scripts and notebooks.
        """
        cpus = os.cpu_count() or 1
        ex = self.executor
        if ex is None or (isinstance(ex, str) and ex.strip() in ("local", "thread")):
            workers = self.max_workers or min(n_runs, cpus)
            if workers <= 1:
                return None, False, 1
            return cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="opsin-iq-run"), True, workers
        if isinstance(ex, str):
            built = make_executor(ex, max_workers=self.max_workers)
            return built, True, self.max_workers or capacity(built, cpus)
        if not isinstance(ex, cf.Executor) and hasattr(ex, "get_executor"):
            slots = self.max_workers or capacity(ex, cpus)
            return ex.get_executor(pure=False), False, slots
        return ex, False, self.max_workers or capacity(ex, cpus)

    def execute(self) -> list[RunOutcome]:
        """Run the grid (skipping runs already FINISHED when resuming) and return one outcome per grid point.

        Failures never stop other runs; the parent ends FINISHED when every child did, else FAILED. An interrupt
        (Ctrl-C) marks runs in flight and the parent KILLED and re-raises.

        Raises:
            ExperimentFailedError: every run failed (the message names the first failure); each run is still
                logged in mlflow.
        """
        self.task_instance._validate()
        client = _tracking.make_client(self.tracking_uri, self.registry_uri)
        exp_id = _tracking.get_or_create_experiment(client, self.experiment_name, self.tracking_uri)
        points = self.grid()
        key = self.experiment_key()
        parent_id, resumed = self._start_parent(client, exp_id, key, len(points))
        finished, busy = self._reuse(client, exp_id, parent_id) if resumed else ({}, set())
        outcomes: dict[int, RunOutcome] = {}
        todo: list[GridPoint] = []
        for p in points:
            if p.run_key in finished:
                run = finished[p.run_key]
                outcomes[p.index] = RunOutcome(
                    run.info.run_id, run.info.run_name, "FINISHED", 0, 0.0, None, skipped=True
                )
            elif p.run_key in busy:
                logger.warning("grid run %s is being executed by another live process; not started", p.run_key)
            else:
                todo.append(p)
        if finished:
            n_done = len(outcomes)
            logger.info(
                "resuming experiment %r: %d of %d runs already finished", self.experiment_name, n_done, len(points)
            )
        _runlog.log_batch(client, parent_id, tags={"opsin.iq.experiment_id": exp_id})
        runner = GridRunner(self, client, exp_id, parent_id)
        try:
            outcomes.update(runner.run(todo))
        except BaseException:
            runner.kill_in_flight()
            with contextlib.suppress(Exception):
                _tracking.run_query(client.set_terminated, parent_id, "KILLED")
            raise
        finally:
            runner.close()
        ordered = [outcomes[i] for i in sorted(outcomes)]
        n_ok = sum(o.status == "FINISHED" for o in ordered)
        counts = {
            "opsin.iq.finished_runs": n_ok,
            "opsin.iq.failed_runs": sum(o.status == "FAILED" for o in ordered),
            "opsin.iq.skipped_runs": sum(o.skipped for o in ordered),
        }
        _runlog.log_batch(client, parent_id, tags=counts)
        parent_status = "FINISHED" if n_ok == len(points) else "FAILED"
        _tracking.run_query(client.set_terminated, parent_id, parent_status)
        logger.info("experiment %r: %d/%d runs finished", self.experiment_name, n_ok, len(points))
        if ordered and n_ok == 0:
            msg = (
                f"experiment {self.experiment_name!r}: all {len(ordered)} runs failed; first: "
                f"{runner.first_failure or 'unknown'} (each run's logs/stderr.txt artifact is in {self.tracking_uri})"
            )
            raise ExperimentFailedError(msg)
        return ordered
