"""Running a grid: child runs created just before submission, jobs on the executor, results logged as they finish.

Workers only run scripts (:func:`~opsin.iq.experiments._worker.run_job`); this coordinator is the only mlflow writer.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import shutil
import signal
import tempfile
from typing import TYPE_CHECKING, Any

from opsin.core import get_logger, progress
from opsin.iq.experiments import _runlog, _tracking
from opsin.iq.experiments._worker import JobResult, JobSpec, logs_dir_for, run_job
from opsin.iq.experiments.task_execution import RunOutcome, canonical_json, terminate_running_scripts

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from opsin.iq.experiments._setup import ExperimentSetup, GridPoint

__all__ = ["GridRunner", "capacity"]

logger = get_logger(__name__)


def _abs_ds(ds: Any) -> str:
    return _runlog.dataset_path(ds)


def capacity(executor: Any, default: int) -> int:
    for attr in ("_max_workers", "max_workers"):
        value = getattr(executor, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    client = getattr(executor, "client", None) or (executor if hasattr(executor, "nthreads") else None)
    if client is not None:
        with contextlib.suppress(Exception):
            return max(1, sum(client.nthreads().values()))
    return default


def _last_line(out_dir: str, result: JobResult) -> str:
    """The last non-empty line the script wrote to stderr (or of the worker's traceback)."""
    text = _runlog.stderr_tail(os.path.join(logs_dir_for(out_dir), "stderr.txt"))
    lines = [ln.strip() for ln in (text + "\n" + result.error).splitlines() if ln.strip()]
    return lines[-1] if lines else "no output on stderr"


class GridRunner:
    """Creates child runs, hands jobs to the executor, logs them as they finish."""

    def __init__(self, setup: ExperimentSetup, client: MlflowClient, exp_id: str, parent_id: str) -> None:
        self.setup = setup
        self.client = client
        self.exp_id = exp_id
        self.parent_id = parent_id
        self.task = setup.task_instance
        self._wrappers: dict[int, tuple[Any, Any, Any]] = {}
        self._in_flight: dict[str, tuple[GridPoint, str, str]] = {}
        self._temp_base: str | None = None
        self._executor: cf.Executor | None = None
        self._owned = False
        self._interrupted = False
        #: ``"<run name> (exit code N): <last stderr line>"`` of the first run that failed, for error messages.
        self.first_failure: str | None = None

    # modified datasets are built once per modifier, when its first run is prepared
    def _datasets(self, m_idx: int) -> tuple[Any, Any, Any]:
        if m_idx not in self._wrappers:
            mod = self.setup.ds_modifiers_list[m_idx]
            out = []
            for ref in (self.setup.ref_dsw_train, self.setup.ref_dsw_val, self.setup.ref_dsw_test):
                out.append(None if ref is None else mod.modify_ds_wrapper(ref))
            self._wrappers[m_idx] = (out[0], out[1], out[2])
        return self._wrappers[m_idx]

    def _output_dir(self, run_id: str) -> str:
        if self.task.tmp_dir:
            out, _ = self.task._new_output_dir(run_id)
            return out
        if self._temp_base is None:
            self._temp_base = tempfile.mkdtemp(prefix="opsin-iq-exp-")
        out = os.path.join(self._temp_base, run_id)
        os.makedirs(out)
        return out

    def _prepare(self, p: GridPoint) -> JobSpec:
        train, val, test = self._datasets(p.modifier_index)
        mod = self.setup.ds_modifiers_list[p.modifier_index]
        params: dict[str, Any] = {**_runlog.dataset_params(train)}
        params.update(_runlog.dataset_params(val, "_val"))
        params.update(_runlog.dataset_params(test, "_test"))
        params.update(p.hparams)
        tags: dict[str, Any] = {
            "opsin.iq.role": "child",
            "opsin.iq.run_key": p.run_key,
            "opsin.iq.repetition": p.repetition,
            "opsin.iq.modifier": mod._get_name(),
            "opsin.iq.hparams": canonical_json(p.hparams),
            "opsin.iq.trainds": _abs_ds(train),
            **self.task.run_tags(),
        }
        if val is not None:
            tags["opsin.iq.valds"] = _abs_ds(val)
        if test is not None:
            tags["opsin.iq.testds"] = _abs_ds(test)
        run_name = os.path.basename(os.path.normpath(train.data_path))
        run_id = _runlog.start_run(
            self.client, self.exp_id, run_name, params=params, tags=tags, parent_run_id=self.parent_id
        )
        out_dir = self._output_dir(run_id)
        args: dict[str, Any] = {}
        if test is not None:
            args["testds"] = _abs_ds(test)
        if self.setup.mlflow_monitoring:
            args.update({"mlfuri": self.setup.tracking_uri, "mlfexpid": self.exp_id, "mlfrunid": run_id})
        args.update(p.hparams)
        self._in_flight[run_id] = (p, run_name, out_dir)
        return JobSpec(self.task, _abs_ds(train), _abs_ds(val), out_dir, args, run_id=run_id)

    def _finish(self, run_id: str, result: JobResult) -> tuple[int, RunOutcome]:
        p, run_name, out_dir = self._in_flight.pop(run_id)
        try:
            status = _runlog.finalize_run(self.client, run_id, out_dir, result)
            if status != "FINISHED" and self.first_failure is None:
                self.first_failure = f"{run_name} (exit code {result.returncode}): {_last_line(out_dir, result)}"
        finally:
            if not self.task.tmp_dir:
                shutil.rmtree(out_dir, ignore_errors=True)
                shutil.rmtree(out_dir + ".logs", ignore_errors=True)
        kept = out_dir if self.task.tmp_dir else None
        return p.index, RunOutcome(run_id, run_name, status, result.returncode, result.duration_s, kept)

    def run(self, todo: list[GridPoint]) -> dict[int, RunOutcome]:
        outcomes: dict[int, RunOutcome] = {}
        if not todo:
            return outcomes
        executor, owned, capacity = self.setup._resolve_executor(len(todo))
        self._executor, self._owned = executor, owned
        bar = progress(total=len(todo), desc=self.setup.experiment_name, unit="run")
        if self.setup.progress is False:
            bar.disable = True
        try:
            if executor is None:
                for p in todo:
                    spec = self._prepare(p)
                    idx, outcome = self._finish(spec.run_id, run_job(spec))
                    outcomes[idx] = outcome
                    bar.update(1)
                return outcomes
            pending: dict[cf.Future[JobResult], str] = {}
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < capacity:
                    spec = self._prepare(queue.pop(0))
                    try:
                        fut = executor.submit(run_job, spec)
                    except cf.BrokenExecutor:
                        if not owned:
                            raise
                        logger.warning("the local process pool broke; starting a new one")
                        executor.shutdown(wait=False, cancel_futures=True)
                        fresh, _, _ = self.setup._resolve_executor(len(todo))
                        if fresh is None:  # pragma: no cover - an owned executor always has a pool
                            raise
                        executor = self._executor = fresh
                        fut = executor.submit(run_job, spec)
                    pending[fut] = spec.run_id
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    run_id = pending.pop(fut)
                    try:
                        result = fut.result()
                    except Exception as exc:  # the worker itself died (not the script)
                        logger.error("worker running %s failed: %r", run_id, exc)
                        result = JobResult(1, 0.0, "exception", f"worker error: {exc!r}")
                    idx, outcome = self._finish(run_id, result)
                    outcomes[idx] = outcome
                    bar.update(1)
            return outcomes
        finally:
            bar.close()

    def kill_in_flight(self) -> None:
        for run_id in list(self._in_flight):
            with contextlib.suppress(Exception):
                _tracking.run_query(self.client.set_terminated, run_id, "KILLED")
        self._in_flight.clear()
        self._interrupted = True
        if self._owned and isinstance(self._executor, cf.ThreadPoolExecutor):
            # threads wait on their scripts' subprocesses; ending the scripts lets the threads return
            terminate_running_scripts()
        elif self._owned and isinstance(self._executor, cf.ProcessPoolExecutor):
            # workers turn SIGINT into KeyboardInterrupt, which makes them terminate their scripts' process groups
            for proc in list(getattr(self._executor, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    os.kill(proc.pid, signal.SIGINT)

    def close(self) -> None:
        if self._executor is not None and self._owned:
            self._executor.shutdown(wait=not self._interrupted, cancel_futures=True)
        elif self._executor is not None:
            with contextlib.suppress(Exception):
                # an executor obtained from a Dask client: stop it, leave the client to its owner
                if not isinstance(self.setup.executor, cf.Executor):
                    self._executor.shutdown(wait=False)
        if self._temp_base:
            shutil.rmtree(self._temp_base, ignore_errors=True)
