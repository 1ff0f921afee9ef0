"""How one training run is executed and logged: ``TaskExecution`` and ``PythonScriptTaskExecution``.

A task runs the user's model on a (modified) training dataset. The python-script task runs
``<python> <script> --trainds <path> --outputpath <dir> [--valds ...] [--testds ...] [--mlfuri ... --mlfexpid ...
--mlfrunid ...] [--<hyper> <value> ...]`` without a shell, streams its stdout/stderr to files and returns its exit
code; everything the script writes into ``outputpath`` becomes the run's artifacts and ``results.json`` its params
and metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsin.core import get_logger, to_jsonable
from opsin.iq.errors import TaskFailedError, TaskTimeoutError
from opsin.iq.experiments import _runlog
from opsin.iq.experiments._worker import JobSpec, logs_dir_for, run_job

__all__ = [
    "PythonScriptTaskExecution",
    "RunOutcome",
    "TaskExecution",
    "TaskTimeoutError",
    "get_hash",
]

logger = get_logger(__name__)

#: argv order of the arguments the framework itself passes (before the hyper-parameters).
FRAMEWORK_ARGS = ("testds", "mlfuri", "mlfexpid", "mlfrunid")
RESERVED_ARGS = frozenset({"trainds", "valds", "testds", "outputpath", "mlfuri", "mlfexpid", "mlfrunid"})
_KILL_GRACE_S = 5.0
# Scripts started by _execute and not yet finished (grid runs execute them from several threads).
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


class _LenientEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        try:
            return to_jsonable(o)
        except TypeError:
            return str(o)


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON of a value; NumPy values, paths, ... converted, anything else by ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), cls=_LenientEncoder)


def get_hash(value: Any, length: int | None = None) -> str:
    """A stable SHA-256 hex digest of a value (strings as UTF-8; other values as canonical JSON).

    Args:
        value: a string, or anything :func:`opsin.core.to_jsonable` handles (dicts are key-sorted).
        length: keep only the first ``length`` hex digits.

    Returns:
        The hex digest (never depends on Python's randomised ``hash``).
    """
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = canonical_json(value).encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    return digest[:length] if length else digest


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended.

    Attributes:
        run_id: the mlflow run id.
        run_name: the run name (the modified training dataset's folder name in a grid).
        status: ``FINISHED``, ``FAILED`` or ``KILLED``.
        returncode: the script's exit code (``None`` when it never ran, e.g. a skipped or cancelled run).
        duration_s: wall time of the script (0 for skipped runs).
        output_dir: the kept output folder (``<tmp_dir>/<run_id>``), ``None`` when it was temporary.
        skipped: ``True`` when a resumed experiment reused a FINISHED run instead of running it again.
    """

    run_id: str
    run_name: str
    status: str
    returncode: int | None
    duration_s: float
    output_dir: str | None
    skipped: bool = False


def split_mlargs(mlargs: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """Split ``mlargs`` into ``(testds, other args)``."""
    args = dict(mlargs or {})
    return args.pop("testds", ""), args


class TaskExecution:
    """Base class of the ways to run a model; subclasses implement :meth:`_execute`.

    Instances must be picklable when a grid runs on a Dask cluster (local grids call them from threads).

    Args:
        tmp_dir: keep every run's output under ``<tmp_dir>/<run_id>`` (needed on shared storage for remote
            executors); default: a temporary folder removed once the run is logged.
    """

    def __init__(self, tmp_dir: str | os.PathLike[str] | None = None) -> None:
        self.tmp_dir = os.path.abspath(os.fspath(tmp_dir)) if tmp_dir else None

    # -- extension points ----------------------------------------------------------------------------------------
    def _execute(self, train_ds: str, val_ds: str, output_path: str, mlargs: dict[str, Any]) -> int | None:
        """Run the model once; returns its exit code (``None`` = 0).

        Args:
            train_ds: the training dataset folder.
            val_ds: the validation dataset folder or ``""``.
            output_path: an existing empty folder for the outputs (``results.json``, ``output.json``, ...).
            mlargs: ``testds``/``mlf*`` when present, then the hyper-parameters.
        """
        msg = f"{type(self).__name__} does not implement _execute(train_ds, val_ds, output_path, mlargs)"
        raise NotImplementedError(msg)

    def _validate(self) -> None:
        """Check the task can run at all (called before any run is created)."""

    def identity(self) -> dict[str, Any]:
        """What identifies this task in experiment and run keys (class name; subclasses add their script)."""
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}"}

    def run_tags(self) -> dict[str, str]:
        """Extra tags describing the task on every run."""
        return {}

    # -- output folders -------------------------------------------------------------------------------------------
    def _new_output_dir(self, run_id: str) -> tuple[str, str | None]:
        """``(output dir, temp base to delete afterwards or None)``; the output dir exists and is empty."""
        if self.tmp_dir:
            out = os.path.join(self.tmp_dir, run_id)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(logs_dir_for(out), ignore_errors=True)
            os.makedirs(out)
            return out, None
        base = tempfile.mkdtemp(prefix="opsin-iq-run-")
        out = os.path.join(base, run_id)
        os.makedirs(out)
        return out, base

    # -- single run ----------------------------------------------------------------------------------------------
    def train_val(
        self,
        experiment_name: str,
        run_name: str,
        train_ds: Any,
        val_ds: Any = "",
        mlargs: dict[str, Any] | None = None,
        mlflow_monitoring: bool = False,
        *,
        parent_run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        raise_on_failure: bool = False,
        tracking_uri: str | None = None,
    ) -> RunOutcome:
        """Run the model once as an mlflow run and log everything.

        Args:
            experiment_name: the mlflow experiment (created when missing).
            run_name: the run name.
            train_ds: a ``DSWrapper`` or a dataset folder.
            val_ds: a ``DSWrapper``, a folder, or ``""``.
            mlargs: hyper-parameters passed to the script; a ``testds`` entry is the test dataset.
            mlflow_monitoring: pass ``--mlfuri/--mlfexpid/--mlfrunid`` so the script can log live.
            parent_run_id: make the run a child of this run.
            tags: extra run tags.
            raise_on_failure: raise :class:`~opsin.iq.errors.TaskFailedError` after logging a failed run.
            tracking_uri: where to log; default as :class:`~opsin.iq.experiments.ExperimentSetup` resolves it.

        Returns:
            The :class:`RunOutcome`.

        Raises:
            FileNotFoundError: the task's script does not exist.
            TaskFailedError: the run failed and ``raise_on_failure`` is set.
        """
        from opsin.iq.experiments import _tracking

        self._validate()
        uri = _tracking.resolve_tracking_uri(tracking_uri)
        client = _tracking.make_client(uri)
        exp_id = _tracking.get_or_create_experiment(client, experiment_name, uri)
        testds, hparams = split_mlargs(mlargs)
        params = {**_runlog.dataset_params(train_ds), **_runlog.dataset_params(val_ds, "_val")}
        params.update(_runlog.dataset_params(testds, "_test"))
        params.update(dict(hparams.items()))
        all_tags: dict[str, Any] = {
            "opsin.iq.role": "child" if parent_run_id else "run",
            "opsin.iq.hparams": canonical_json(hparams),
            "opsin.iq.trainds": _runlog.dataset_path(train_ds),
            **self.run_tags(),
        }
        if val_ds:
            all_tags["opsin.iq.valds"] = _runlog.dataset_path(val_ds)
        if testds:
            all_tags["opsin.iq.testds"] = _runlog.dataset_path(testds)
        all_tags.update(tags or {})
        run_id = _runlog.start_run(client, exp_id, run_name, params=params, tags=all_tags, parent_run_id=parent_run_id)
        out_dir, temp_base = self._new_output_dir(run_id)
        args = {}
        if testds:
            args["testds"] = _runlog.dataset_path(testds)
        if mlflow_monitoring:
            args.update({"mlfuri": uri, "mlfexpid": exp_id, "mlfrunid": run_id})
        args.update(hparams)
        spec = JobSpec(self, _runlog.dataset_path(train_ds), _runlog.dataset_path(val_ds), out_dir, args, run_id=run_id)
        try:
            result = run_job(spec)
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "KILLED")
            raise
        try:
            status = _runlog.finalize_run(client, run_id, out_dir, result)
        finally:
            if temp_base:
                shutil.rmtree(temp_base, ignore_errors=True)
        outcome = RunOutcome(
            run_id, run_name, status, result.returncode, result.duration_s, None if temp_base else out_dir
        )
        if status != "FINISHED" and raise_on_failure:
            msg = f"run {run_name!r} ({run_id}) of experiment {experiment_name!r} failed with code {result.returncode}"
            raise TaskFailedError(msg)
        return outcome

    # -- results.json helpers -------------------------------------------------------------------------------
    @staticmethod
    def gather_json_values(path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read ``results.json`` from an output folder (``{}`` when absent); see :func:`_runlog.gather_json_values`."""
        return _runlog.gather_json_values(path)

    @staticmethod
    def log_json(d: dict[str, Any], sufix: str = "", *, run_id: str, tracking_uri: str | None = None) -> None:
        """Log a ``results.json``-style dict to run ``run_id`` (same rules as grid runs), keys suffixed ``sufix``."""
        from opsin.iq.experiments import _tracking

        client = _tracking.make_client(_tracking.resolve_tracking_uri(tracking_uri))
        _runlog.log_results(client, run_id, d, sufix)


class PythonScriptTaskExecution(TaskExecution):
    """Runs a Python training script that follows the training-script command-line contract.

    Args:
        model_script_path: the script.
        tmp_dir: see :class:`TaskExecution`.
        python_executable: the interpreter (default: the one running this process, never a ``python`` on PATH).
        timeout_s: kill the script's process group after this many seconds (the run fails with tag
            ``opsin.iq.failure=timeout``); ``None`` = no limit.
        env: variables added to (or overriding) the inherited environment.

    Raises:
        FileNotFoundError: the script does not exist.
    """

    def __init__(
        self,
        model_script_path: str | os.PathLike[str],
        tmp_dir: str | os.PathLike[str] | None = None,
        *,
        python_executable: str = sys.executable,
        timeout_s: float | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(tmp_dir)
        self.model_script_path = os.path.abspath(os.fspath(model_script_path))
        self.python_executable = python_executable
        self.timeout_s = timeout_s
        self.env = dict(env or {})
        self._validate()

    def _validate(self) -> None:
        """Raise :class:`FileNotFoundError` when the script is missing."""
        if not os.path.isfile(self.model_script_path):
            msg = f"training script {self.model_script_path} does not exist"
            raise FileNotFoundError(msg)

    def identity(self) -> dict[str, Any]:
        """Class name and absolute script path."""
        return {**super().identity(), "script": self.model_script_path}

    def run_tags(self) -> dict[str, str]:
        """``opsin.iq.script`` and the script's SHA-256 (provenance)."""
        tags = {"opsin.iq.script": self.model_script_path}
        with contextlib.suppress(OSError):
            tags["opsin.iq.script_sha256"] = hashlib.sha256(Path(self.model_script_path).read_bytes()).hexdigest()
        return tags

    def argv(self, train_ds: str, val_ds: str, output_path: str, mlargs: dict[str, Any]) -> list[str]:
        """The exact command line for one run (one token per value, ``str(value)``)."""
        cmd = [self.python_executable, self.model_script_path, "--trainds", str(train_ds), "--outputpath", output_path]
        if val_ds:
            cmd += ["--valds", str(val_ds)]
        rest = dict(mlargs)
        for key in FRAMEWORK_ARGS:
            if key in rest:
                value = rest.pop(key)
                if value not in (None, ""):
                    cmd += [f"--{key}", str(value)]
        for key, value in rest.items():
            cmd += [f"--{key}", str(value)]
        return cmd

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.env)
        return env

    def _execute(self, train_ds: str, val_ds: str, output_path: str, mlargs: dict[str, Any]) -> int:
        self._validate()
        cmd = self.argv(train_ds, val_ds, output_path, mlargs)
        logs = logs_dir_for(output_path)
        os.makedirs(logs, exist_ok=True)
        logger.debug("running %s", cmd)
        with (
            open(os.path.join(logs, "stdout.txt"), "wb") as out,
            open(os.path.join(logs, "stderr.txt"), "wb") as err,
        ):
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self._environment(), start_new_session=True
            )
            with _LIVE_LOCK:
                _LIVE.add(proc)
            try:
                return proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                code = _kill_group(proc)
                msg = f"training script {self.model_script_path} ran past {self.timeout_s} s and was killed"
                err.write(f"\n[opsin-iq] {msg}\n".encode())
                raise TaskTimeoutError(msg, code) from None
            except BaseException:
                _kill_group(proc)
                raise
            finally:
                with _LIVE_LOCK:
                    _LIVE.discard(proc)


def terminate_running_scripts() -> int:
    """Terminate the process groups of every training script this process started and that still runs.

    The grid runs scripts from threads, which an interrupt does not reach; the coordinator calls this on Ctrl-C.

    Returns:
        How many scripts were terminated.
    """
    with _LIVE_LOCK:
        procs = [p for p in _LIVE if p.poll() is None]
    for proc in procs:
        with contextlib.suppress(Exception):
            _kill_group(proc)
    return len(procs)


def _kill_group(proc: subprocess.Popen[bytes]) -> int:
    """Terminate a script's process group (SIGTERM, then SIGKILL after a grace period); returns its exit code."""
    code: int | None = None
    for sig, wait_s in ((signal.SIGTERM, _KILL_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            code = proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children the script left behind
    return proc.wait() if code is None else code
