"""The function that runs one job inside a worker process (or a Dask worker).

It is module level and takes only plain values, so any executor can pickle it; the generator is looked up by name
inside the worker. Outcomes come back as plain tuples rather than exceptions, so an unpicklable exception raised
by a generator cannot break the executor.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["FlagFileCancelEvent", "run_job", "warm_up"]

_STORED_SUFFIXES = {".png", ".jpg", ".jpeg", ".mp4", ".zip", ".gz"}
_GENERATORS: dict[str, Any] = {}  # per worker process: the registry scan (entry points) happens once per name


def _generator(name: str) -> Any:
    from opsin.synth.server.generators import get_generator

    if name not in _GENERATORS:
        _GENERATORS[name] = get_generator(name)
    return _GENERATORS[name]


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


def warm_up(seconds: float = 0.2) -> int:
    """Import the generator registry in this worker (so the first job does not pay for it) and return its pid."""
    from opsin.synth.server.generators import available_generators

    available_generators()
    time.sleep(seconds)
    return os.getpid()


def zip_job_folder(folder: Path, job_id: str, dest: Path) -> None:
    """Zip ``folder`` as ``dest`` with the single root ``<job_id>/``, durably (fsync before returning)."""
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


def run_job(
    job_id: str,
    generator_name: str,
    params: dict[str, Any],
    is_preview: bool,
    seed: int,
    results_dir: str,
    cancel_path: str,
) -> tuple[str, int, str]:
    """Render one job and publish ``<results_dir>/<job_id>.zip`` atomically.

    Returns:
        ``("succeeded", frames, zip path)``, ``("cancelled", 0, reason)`` or ``("failed", 0, error text)``.
    """
    from opsin.synth.errors import JobCancelledError

    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".work-{job_id}-", dir=results))
    cancel_event = FlagFileCancelEvent(cancel_path)
    try:
        out_dir = work / job_id
        out_dir.mkdir()
        generator = _generator(generator_name)
        frames = int(generator.run(dict(params), is_preview, seed, out_dir, cancel_event))
        if cancel_event.is_set():
            return ("cancelled", 0, "cancelled while rendering")
        partial = work / f"{job_id}.zip"
        zip_job_folder(out_dir, job_id, partial)
        final = results / f"{job_id}.zip"
        os.replace(partial, final)
        return ("succeeded", frames, str(final))
    except JobCancelledError:
        return ("cancelled", 0, "cancelled while rendering")
    except Exception as exc:
        return ("failed", 0, f"{type(exc).__name__}: {exc}"[:4000])
    finally:
        shutil.rmtree(work, ignore_errors=True)
