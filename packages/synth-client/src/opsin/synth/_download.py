"""Batch download: parallel, resumable, status-checked, verified and safely extracted.

Layout of a batch folder: ``batch_id.txt`` (the id, no newline) and one ``<job_id>/`` folder per finished job. Work
in progress lives under ``.partial/`` (streamed zips and extraction staging) and is removed at the end. Nothing that
is already downloaded is ever deleted; a failure in one job leaves every other job in place.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from opsin.core import (
    DEFAULT_MAX_EXTRACT_BYTES,
    UnsafeArchiveError,
    atomic_write_text,
    get_logger,
    progress,
    replace_dir,
    safe_extract_zip,
)
from opsin.synth._http import error_detail, url_for
from opsin.synth.errors import DownloadError, _JobFailedError, _UrlExpiredError

if TYPE_CHECKING:
    from opsin.synth.batch import Batch

__all__ = ["DEFAULT_MAX_EXTRACT_BYTES", "PARTIAL_DIR", "download_batch", "is_job_downloaded"]

_log = get_logger("opsin.synth")

PARTIAL_DIR = ".partial"
_CHUNK = 1 << 20
_TRANSPORT_RETRIES = 3


def is_job_downloaded(path: Path, job_id: str) -> bool:
    """Whether ``path/<job_id>/job.json`` exists (the marker of a complete job folder)."""
    return (path / job_id / "job.json").is_file()


def _prepare_folder(path: Path, batch_id: str) -> None:
    marker = path / "batch_id.txt"
    if marker.is_file():
        found = marker.read_text(encoding="utf-8").strip()
        if found != batch_id:
            msg = f"{path} holds batch {found} (batch_id.txt), not batch {batch_id}; choose another folder"
            raise DownloadError(msg)
        return
    if path.exists() and not path.is_dir():
        msg = f"{path} exists and is not a folder; cannot download batch {batch_id} there"
        raise DownloadError(msg)
    if path.is_dir() and any(path.iterdir()):
        msg = f"{path} is not empty and has no batch_id.txt; refusing to download batch {batch_id} into it"
        raise DownloadError(msg)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, batch_id)


def _stream_zip(client: httpx.Client, url: str, dest: Path, job_id: str) -> None:
    """GET ``url`` (no auth header) into ``dest``; ``_UrlExpiredError`` on 403/410, ``_JobFailedError`` otherwise."""
    attempt = 0
    while True:
        try:
            with client.stream("GET", url) as response:
                if response.status_code in (403, 410):
                    response.read()
                    raise _UrlExpiredError(response.status_code, error_detail(response)[0])
                if response.status_code != 200:
                    response.read()
                    detail = error_detail(response)[0]
                    msg = f"result download answered HTTP {response.status_code}: {detail}"
                    raise _JobFailedError(msg)
                expected = response.headers.get("Content-Length")
                received = 0
                with open(dest, "wb") as handle:
                    for chunk in response.iter_bytes(_CHUNK):
                        handle.write(chunk)
                        received += len(chunk)
                if expected is not None and expected.isdigit() and int(expected) != received:
                    msg = f"result truncated: {received} of {expected} bytes received"
                    raise _JobFailedError(msg)
                return
        except httpx.TransportError as exc:
            if attempt >= _TRANSPORT_RETRIES:
                msg = f"transport error after {attempt + 1} attempts: {exc}"
                raise _JobFailedError(msg) from exc
            _log.warning("download of job %s failed (%s); retry %d/%d", job_id, exc, attempt + 1, _TRANSPORT_RETRIES)
            time.sleep(0.25 * 2**attempt)
            attempt += 1


def _install(path: Path, job_id: str, archive: Path, max_total_bytes: int) -> None:
    """Verify and extract ``archive`` (root folder ``<job_id>/``) and move the job folder into place atomically."""
    staging = path / PARTIAL_DIR / f"{job_id}.extract"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        safe_extract_zip(archive, staging, max_total_bytes=max_total_bytes, required_root=job_id)
    except UnsafeArchiveError as exc:
        msg = f"invalid result archive: {exc}"
        raise _JobFailedError(msg) from exc
    try:
        extracted = staging / job_id
        if not (extracted / "job.json").is_file():
            msg = f"result archive has no {job_id}/job.json"
            raise _JobFailedError(msg)
        replace_dir(extracted, path / job_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)


def _fetch_one(client: httpx.Client, server: str, path: Path, job_id: str, url: str, max_total_bytes: int) -> None:
    archive = path / PARTIAL_DIR / f"{job_id}.zip"
    try:
        _stream_zip(client, url_for(server, url), archive, job_id)
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    _install(path, job_id, archive, max_total_bytes)


def _run_round(
    batch: Batch,
    path: Path,
    urls: Mapping[str, str],
    max_workers: int,
    max_total_bytes: int,
    bar: Any,
) -> tuple[dict[str, str], dict[str, str]]:
    """Download ``urls`` in parallel; return ``(failed reasons, expired reasons)`` by job id."""
    failed: dict[str, str] = {}
    expired: dict[str, str] = {}
    if not urls:
        return failed, expired
    with cf.ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(urls))), thread_name_prefix="synth-dl") as pool:
        futures = {
            pool.submit(_fetch_one, batch.http_client, batch.server, path, job_id, url, max_total_bytes): job_id
            for job_id, url in urls.items()
        }
        for future in cf.as_completed(futures):
            job_id = futures[future]
            try:
                future.result()
            except _UrlExpiredError as exc:
                expired[job_id] = f"result URL refused ({exc}) even after refreshing it"
            except _JobFailedError as exc:
                failed[job_id] = str(exc)
            except OSError as exc:
                failed[job_id] = f"file system error: {exc}"
            else:
                bar.update(1)
                bar.set_description(f"Downloading {bar.n}/{bar.total}")
    return failed, expired


def download_batch(
    batch: Batch,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    quiet: bool = False,
    max_workers: int = 4,
    max_total_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
) -> bool:
    """Implement :meth:`Batch.download`; see there for the contract."""
    folder = Path(path).expanduser()
    _prepare_folder(folder, batch.batch_id)
    present = {job_id for job_id in batch.job_ids if is_job_downloaded(folder, job_id)}
    if present:
        _log.info("batch %s: %d of %d jobs already in %s", batch.batch_id, len(present), batch.num_jobs, folder)
    summary = batch.get_batch_summary_data()
    runs = list(summary["job_runs"])
    in_progress = sum(1 for run in runs if run["in_progress"])
    valid = {str(run["id"]): str(run["result_url"]) for run in runs if not run["in_progress"] and run["result_url"]}
    unsuccessful = [str(run["id"]) for run in runs if not run["in_progress"] and not run["result_url"]]
    if unsuccessful:
        _log.warning("batch %s: %d jobs failed or were cancelled (no result)", batch.batch_id, len(unsuccessful))
    todo = {job_id: url for job_id, url in valid.items() if overwrite or job_id not in present}
    done_before = len(valid) - len(todo)
    extra: dict[str, Any] = {"disable": True} if quiet else {}
    bar = progress(total=len(valid), desc=f"Downloading {done_before}/{len(valid)}", unit="job", **extra)
    bar.update(done_before)
    (folder / PARTIAL_DIR).mkdir(exist_ok=True)
    try:
        failed, expired = _run_round(batch, folder, todo, max_workers, max_total_bytes, bar)
        if expired:
            _log.info("batch %s: %d result URLs expired; refreshing the summary", batch.batch_id, len(expired))
            fresh = {
                str(run["id"]): str(run["result_url"])
                for run in batch.get_batch_summary_data()["job_runs"]
                if run["result_url"] and str(run["id"]) in expired
            }
            for job_id in set(expired) - set(fresh):
                failed[job_id] = "no result URL after refreshing the summary"
            more_failed, still_expired = _run_round(batch, folder, fresh, max_workers, max_total_bytes, bar)
            failed.update(more_failed)
            failed.update(still_expired)
        bar.set_description(f"Downloading {bar.n}/{len(valid)}")
    finally:
        bar.close()
        shutil.rmtree(folder / PARTIAL_DIR, ignore_errors=True)
    if failed:
        listing = "; ".join(f"{job_id}: {reason}" for job_id, reason in sorted(failed.items()))
        msg = (
            f"{len(failed)} of {len(todo)} jobs of batch {batch.batch_id} could not be downloaded into {folder} "
            f"(jobs already there are kept): {listing}"
        )
        raise DownloadError(msg, failed=failed)
    complete = all(is_job_downloaded(folder, job_id) for job_id in valid)
    return in_progress == 0 and complete
