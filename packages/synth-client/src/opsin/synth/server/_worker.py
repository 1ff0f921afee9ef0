"""What runs inside a worker process (or a Dask worker): one job, and the guard that ties a worker to its service.

:func:`run_job` is module level and takes only plain values, so any executor can pickle it; the generator comes from
the process's registry. Outcomes come back as a :class:`JobOutcome` record rather than as exceptions, so an
unpicklable exception raised by a generator cannot break the executor.

:func:`guard_worker` (the process pool's initializer) makes a worker end with the service: on Linux the kernel kills
it when its parent (the forkserver) dies, and a watchdog thread exits when the service process is gone, so a
``kill -9`` of the service leaves no worker rendering on. It also records, per job, which worker process runs it
and whether the pool terminated that process, so the service can tell the job whose process died from the
neighbours the broken pool took down with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsin.core import get_logger
from opsin.synth.server.models import JobStatus

__all__ = [
    "FlagFileCancelEvent",
    "JobOutcome",
    "WorkerMarks",
    "client_error",
    "guard_worker",
    "process_alive",
    "run_job",
    "warm_up",
    "work_dir_owner",
]

_log = get_logger("opsin.synth.server.worker")

_STORED_SUFFIXES = {".png", ".jpg", ".jpeg", ".mp4", ".zip", ".gz"}
_PR_SET_PDEATHSIG = 1
_WATCH_INTERVAL_S = 0.5
_WORK_PREFIX = re.compile(r"^\.work-[0-9a-f-]{36}-(\d+)-")


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How one run of a job ended.

    Attributes:
        status: ``succeeded``, ``failed`` or ``cancelled``.
        frames: frames rendered (0 unless succeeded).
        result_path: the published zip (succeeded only).
        result_bytes: its size in bytes.
        error: a short reason for clients (failed only; never a server path).
    """

    status: JobStatus
    frames: int = 0
    result_path: str | None = None
    result_bytes: int | None = None
    error: str | None = None


class FlagFileCancelEvent:
    """A picklable cancel event: set when a flag file exists (works across processes on one machine).

    Args:
        path: the flag file; the service creates it to cancel the job.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)

    def is_set(self) -> bool:
        """Whether cancellation was requested."""
        return os.path.exists(self.path)

    def set(self) -> None:
        """Request cancellation (creates the flag file)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.path).touch()

    def clear(self) -> None:
        """Remove the flag file."""
        Path(self.path).unlink(missing_ok=True)


class WorkerMarks:
    """Files in one folder saying which worker process ran a job and how that run ended.

    A worker writes ``<job>.pid`` when it starts a job, ``<job>.done`` when the run returns, and ``<job>.term`` when
    the pool terminates it (SIGTERM) during the run. After a pool breaks, a job with a ``.pid`` and neither of the
    others is the one whose process died under it.

    Args:
        folder: the marks folder (``<data dir>/workers``).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def started(self, job_id: str) -> int | None:
        """The pid of the worker that started ``job_id``, or ``None`` when no worker did."""
        try:
            return int((self.folder / f"{job_id}.pid").read_text(encoding="ascii"))
        except (OSError, ValueError):
            return None

    def ended_normally(self, job_id: str) -> bool:
        """Whether the run of ``job_id`` returned, or the pool (not a crash) ended its worker."""
        return (self.folder / f"{job_id}.done").exists() or (self.folder / f"{job_id}.term").exists()

    def clear(self, job_id: str) -> None:
        """Forget every mark of ``job_id``."""
        for suffix in (".pid", ".done", ".term"):
            (self.folder / f"{job_id}{suffix}").unlink(missing_ok=True)


_current_job: str | None = None
_marks: WorkerMarks | None = None


def _proc_start_time(pid: int) -> str | None:
    """The start time of ``pid`` (Linux ``/proc``), which tells a process from a later one reusing its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return None if fields[0] == "Z" else fields[19]  # state, then starttime (field 22 of the whole line)


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether process ``pid`` exists and is not a zombie (and, given ``start_time``, is that very process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if sys.platform.startswith("linux"):
        now = _proc_start_time(pid)
        return now is not None and (start_time is None or now == start_time)
    return True


def _on_sigterm(signum: int, _frame: Any) -> None:
    # the pool terminates every worker when one dies: say so for the job this worker was running
    if _marks is not None and _current_job is not None:
        with contextlib.suppress(OSError):
            (_marks.folder / f"{_current_job}.term").touch()
    os._exit(128 + signum)


def _watch_service(service_pid: int, start_time: str | None) -> None:
    while True:
        time.sleep(_WATCH_INTERVAL_S)
        if not process_alive(service_pid, start_time):
            os._exit(1)  # the service is gone: nobody will collect this work


def guard_worker(service_pid: int, marks_folder: str) -> None:
    """Process-pool initializer: end with the service, and record job ownership for crash attribution.

    Args:
        service_pid: pid of the service process owning the pool.
        marks_folder: folder of the :class:`WorkerMarks`.
    """
    global _marks
    _marks = WorkerMarks(marks_folder)
    _marks.folder.mkdir(parents=True, exist_ok=True)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.signal(signal.SIGTERM, _on_sigterm)
    start_time = _proc_start_time(service_pid) if sys.platform.startswith("linux") else None
    if not process_alive(service_pid, start_time):
        os._exit(1)
    threading.Thread(target=_watch_service, args=(service_pid, start_time), name="service-watch", daemon=True).start()


def warm_up(seconds: float = 0.2) -> int:
    """Load the generator registry in this worker (so the first job does not pay for it) and return its pid."""
    from opsin.synth.server.generators import generator_registry

    generator_registry()
    time.sleep(seconds)
    return os.getpid()


def zip_job_folder(folder: Path, job_id: str, dest: Path) -> None:
    """Zip ``folder`` as ``dest`` (owner-only mode) with the single root ``<job_id>/``, durably (fsync)."""
    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    with zipfile.ZipFile(dest, "w") as archive:
        archive.writestr(zipfile.ZipInfo(f"{job_id}/"), b"")
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                continue
            relative = path.relative_to(folder).as_posix()
            if path.is_dir():
                archive.writestr(zipfile.ZipInfo(f"{job_id}/{relative}/"), b"")
                continue
            method = zipfile.ZIP_STORED if path.suffix.lower() in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            archive.write(path, f"{job_id}/{relative}", compress_type=method, compresslevel=6)
    with open(dest, "rb") as handle:
        os.fsync(handle.fileno())


def work_dir_owner(folder: Path) -> int | None:
    """The pid of the worker writing a ``.work-<job>-<pid>-*`` folder, or ``None`` for another name."""
    match = _WORK_PREFIX.match(folder.name)
    return int(match.group(1)) if match else None


def client_error(exc: BaseException) -> str:
    """A short reason for clients: the exception kind and its text with every absolute path cut to its name."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror} (the service log has the details)"
    text = re.sub(r"(?<![\w.])/(?:[^\s/'\":]+/)+([^\s/'\":]*)", r"\1", str(exc))
    return f"{type(exc).__name__}: {text}"[:500]


def run_job(
    job_id: str,
    generator_name: str,
    params: dict[str, Any],
    is_preview: bool,
    seed: int,
    results_dir: str,
    cancel_path: str,
) -> JobOutcome:
    """Render one job and publish ``<results_dir>/<job_id>.zip`` atomically."""
    global _current_job
    from opsin.synth.errors import JobCancelledError
    from opsin.synth.server.generators import get_generator

    _current_job = job_id
    if _marks is not None:
        with contextlib.suppress(OSError):
            (_marks.folder / f"{job_id}.pid").write_text(str(os.getpid()), encoding="ascii")
    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".work-{job_id}-{os.getpid()}-", dir=results))
    cancel_event = FlagFileCancelEvent(cancel_path)
    try:
        out_dir = work / job_id
        out_dir.mkdir()
        generator = get_generator(generator_name)
        frames = int(generator.run(dict(params), is_preview, seed, out_dir, cancel_event))
        if cancel_event.is_set():
            return JobOutcome(JobStatus.CANCELLED)
        partial = work / f"{job_id}.zip"
        zip_job_folder(out_dir, job_id, partial)
        size = partial.stat().st_size
        final = results / f"{job_id}.zip"
        os.replace(partial, final)
        return JobOutcome(JobStatus.SUCCEEDED, frames, str(final), size)
    except JobCancelledError:
        return JobOutcome(JobStatus.CANCELLED)
    except Exception as exc:
        _log.error("job %s (%s) failed", job_id, generator_name, exc_info=True)
        return JobOutcome(JobStatus.FAILED, error=client_error(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _current_job = None
        if _marks is not None:
            with contextlib.suppress(OSError):
                (_marks.folder / f"{job_id}.done").touch()
