"""What a worker does for one grid run: call the task's ``_execute`` and report how it ended.

Kept free of mlflow imports: workers only run scripts and return a :class:`JobResult`; the coordinator logs.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsin.iq.errors import TaskTimeoutError

if TYPE_CHECKING:
    from opsin.iq.experiments.task_execution import TaskExecution

__all__ = ["JobResult", "JobSpec", "logs_dir_for", "run_job"]


def logs_dir_for(output_path: str) -> str:
    """The folder next to an output folder that receives ``stdout.txt``/``stderr.txt`` (``<output>.logs``)."""
    return os.path.normpath(output_path) + ".logs"


@dataclass(frozen=True)
class JobSpec:
    """One run to execute on a worker.

    Attributes:
        task: the task instance (picklable for Dask executors).
        train_ds: training dataset folder.
        val_ds: validation dataset folder or ``""``.
        output_dir: the empty folder given to the script as ``--outputpath``.
        mlargs: ``testds``, ``mlf*`` and the hyper-parameters, in argv order.
        run_id: the mlflow run this job belongs to (for messages).
    """

    task: TaskExecution
    train_ds: str
    val_ds: str
    output_dir: str
    mlargs: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""


@dataclass(frozen=True)
class JobResult:
    """How one job ended.

    Attributes:
        returncode: the script's exit code (``None`` = 0 from a custom task; negative = killed by a signal).
        duration_s: wall time of ``_execute``.
        failure: ``""`` on success, else ``"returncode"``, ``"timeout"`` or ``"exception"``.
        error: a traceback text when ``_execute`` raised.
    """

    returncode: int
    duration_s: float
    failure: str = ""
    error: str = ""


def run_job(spec: JobSpec) -> JobResult:
    """Execute one job (module-level so Dask can pickle it)."""
    start = time.perf_counter()
    try:
        code = spec.task._execute(spec.train_ds, spec.val_ds, spec.output_dir, dict(spec.mlargs))
    except TaskTimeoutError as exc:
        return JobResult(exc.returncode, time.perf_counter() - start, "timeout", str(exc))
    except Exception:
        text = traceback.format_exc()
        return JobResult(1, time.perf_counter() - start, "exception", text)
    rc = 0 if code is None else int(code)
    return JobResult(rc, time.perf_counter() - start, "" if rc == 0 else "returncode")
