"""Writing one run to mlflow: creation, dataset params, ``results.json`` as params and metrics, artifacts, status.

Every write goes through an explicit :class:`mlflow.MlflowClient` by run id and is retried while SQLite is busy.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsin.core import get_logger
from opsin.iq.experiments._tracking import retry_locked
from opsin.iq.experiments._worker import JobResult, logs_dir_for

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "RESULTS_FILE",
    "STDERR_TAIL_LINES",
    "STDERR_TAIL_MAX_BYTES",
    "dataset_params",
    "finalize_run",
    "gather_json_values",
    "log_results",
    "owner_tag",
    "start_run",
    "stderr_tail",
]

logger = get_logger(__name__)

RESULTS_FILE = "results.json"
STDERR_TAIL_LINES = 200
STDERR_TAIL_MAX_BYTES = 64 * 1024
_MAX_PARAM_LEN = 6000
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000


def owner_tag() -> str:
    """``host:pid`` of this process, recorded on runs it is executing (to recognise runs left by dead processes)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:_MAX_PARAM_LEN]


def dataset_params(ds: Any, suffix: str = "") -> dict[str, str]:
    """Params of a dataset: a ``DSWrapper``'s ``params`` or ``{"ds_name": basename}`` for a plain path."""
    if ds is None or ds == "":
        return {}
    if hasattr(ds, "log_parameters"):
        raw = dict(ds.log_parameters())
    else:
        raw = {"ds_name": os.path.basename(os.path.normpath(os.fspath(ds)))}
    return {f"{k}{suffix}": _param_text(v) for k, v in raw.items()}


def dataset_path(ds: Any) -> str:
    """The folder of a ``DSWrapper`` or plain path (absolute), ``""`` for none."""
    if ds is None or ds == "":
        return ""
    path = ds.data_path if hasattr(ds, "data_path") else os.fspath(ds)
    return os.path.abspath(path)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def log_batch(
    client: MlflowClient,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Iterable[tuple[str, float, int]] = (),
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Log params, ``(key, value, step)`` metrics and tags in as few store calls as the batch limits allow."""
    from mlflow.entities import Metric, Param, RunTag

    ts = int(time.time() * 1000)
    plist = [Param(k, _param_text(v)) for k, v in (params or {}).items()]
    mlist = [Metric(k, float(v), ts, int(s)) for k, v, s in metrics]
    tlist = [RunTag(k, _param_text(v)) for k, v in (tags or {}).items()]
    for chunk in _chunks(plist, _BATCH_PARAMS):
        retry_locked(lambda c=chunk: client.log_batch(run_id, params=c))  # type: ignore[misc]
    for chunk in _chunks(tlist, _BATCH_PARAMS):
        retry_locked(lambda c=chunk: client.log_batch(run_id, tags=c))  # type: ignore[misc]
    for chunk in _chunks(mlist, _BATCH_METRICS):
        retry_locked(lambda c=chunk: client.log_batch(run_id, metrics=c))  # type: ignore[misc]


def start_run(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    *,
    params: Mapping[str, Any],
    tags: Mapping[str, Any],
    parent_run_id: str | None = None,
) -> str:
    """Create a RUNNING run (a child when ``parent_run_id``), log its params and tags; returns its id."""
    all_tags = {str(k): _param_text(v) for k, v in tags.items()}
    all_tags["opsin.iq.owner"] = owner_tag()
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = retry_locked(lambda: client.create_run(experiment_id, run_name=run_name, tags=all_tags))
    run_id = str(run.info.run_id)
    log_batch(client, run_id, params=params)
    return run_id


def gather_json_values(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``results.json`` from an output folder (or the file itself); ``{}`` when absent.

    Raises:
        ValueError: the file is not a JSON object (the message names the file).
    """
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.is_file():
        return {}
    with p.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        msg = f"{p}: results.json must hold a JSON object, found {type(data).__name__}"
        raise ValueError(msg)
    return data


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _series(key: str, value: list[Any]) -> list[tuple[str, float, int]] | None:
    if all(_is_number(v) for v in value):
        return [(key, float(v), i) for i, v in enumerate(value)]
    pairs = all(isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_number(x) for x in v) for v in value)
    if pairs and all(float(v[0]).is_integer() for v in value):
        return [(key, float(v[1]), int(v[0])) for v in value]
    return None


def results_to_mlflow(
    results: Mapping[str, Any], suffix: str = ""
) -> tuple[dict[str, Any], list[tuple[str, float, int]]]:
    """Apply the ``results.json`` rules: ``(params, metrics)`` to log.

    Numbers (bools included) and strings become params; finite non-bool numbers also a metric at step 0; non-empty
    lists of numbers a metric with step = index; lists of ``[step, value]`` pairs those steps; anything else
    (``null``, empty lists, objects, mixed lists) is not logged.
    """
    params: dict[str, Any] = {}
    metrics: list[tuple[str, float, int]] = []
    for raw_key, value in results.items():
        key = f"{raw_key}{suffix}"
        if isinstance(value, (bool, int, float, str)):
            params[key] = value
            if _is_number(value) and math.isfinite(float(value)):
                metrics.append((key, float(value), 0))
        elif isinstance(value, list) and value:
            series = _series(key, value)
            if series is None:
                logger.warning("results.json key %r: list is neither numbers nor [step, value] pairs; not logged", key)
            else:
                metrics.extend(series)
    return params, metrics


def log_results(client: MlflowClient, run_id: str, results: Mapping[str, Any], suffix: str = "") -> None:
    """Log a ``results.json`` dict to a run; params that already exist with another value become conflict tags."""
    params, metrics = results_to_mlflow(results, suffix)
    existing = retry_locked(lambda: client.get_run(run_id)).data.params
    new_params: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for key, value in params.items():
        text = _param_text(value)
        if key not in existing:
            new_params[key] = text
        elif existing[key] != text:
            tags[f"opsin.iq.param_conflict.{key}"] = text
    log_batch(client, run_id, params=new_params, metrics=metrics, tags=tags)


def stderr_tail(path: str | os.PathLike[str]) -> str:
    """The last 200 lines of a text file, at most 64 KiB (``""`` when missing)."""
    p = Path(path)
    if not p.is_file():
        return ""
    size = p.stat().st_size
    with p.open("rb") as fh:
        if size > STDERR_TAIL_MAX_BYTES:
            fh.seek(size - STDERR_TAIL_MAX_BYTES)
        data = fh.read()
    text = data.decode("utf-8", errors="replace")
    if size > STDERR_TAIL_MAX_BYTES and "\n" in text:
        text = text.split("\n", 1)[1]  # drop the partial first line
    lines = text.splitlines(keepends=True)[-STDERR_TAIL_LINES:]
    out = "".join(lines)
    encoded = out.encode("utf-8")
    if len(encoded) > STDERR_TAIL_MAX_BYTES:
        out = encoded[-STDERR_TAIL_MAX_BYTES:].decode("utf-8", errors="ignore")
    return out


def finalize_run(client: MlflowClient, run_id: str, output_dir: str, result: JobResult) -> str:
    """Log what a finished job left behind and set the run's final status; returns the status.

    ``results.json`` is logged as :func:`results_to_mlflow` says, the output folder becomes the artifact root, the job's
    stdout/stderr go under ``logs/``; a failure adds ``logs/stderr_tail.txt`` and the tags
    ``opsin.iq.returncode``/``opsin.iq.failure``.
    """
    status = "FINISHED" if result.returncode == 0 and not result.failure else "FAILED"
    tags: dict[str, Any] = {
        "opsin.iq.returncode": result.returncode,
        "opsin.iq.duration_s": f"{result.duration_s:.3f}",
    }
    logs_dir = logs_dir_for(output_dir)
    try:
        results = gather_json_values(output_dir)
    except ValueError as exc:
        logger.warning("run %s: %s", run_id, exc)
        tags["opsin.iq.results_error"] = str(exc)
        results = {}
    if results:
        log_results(client, run_id, results)
    if status == "FAILED":
        tags["opsin.iq.failure"] = result.failure or "returncode"
        os.makedirs(logs_dir, exist_ok=True)
        tail = stderr_tail(os.path.join(logs_dir, "stderr.txt"))
        if result.error:
            tail = (tail + ("\n" if tail and not tail.endswith("\n") else "") + result.error)[-STDERR_TAIL_MAX_BYTES:]
        Path(logs_dir, "stderr_tail.txt").write_text(tail, encoding="utf-8")
        logger.warning("run %s failed (%s, return code %s)", run_id, tags["opsin.iq.failure"], result.returncode)
    log_batch(client, run_id, tags=tags)
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        retry_locked(lambda: client.log_artifacts(run_id, output_dir))
    if os.path.isdir(logs_dir) and os.listdir(logs_dir):
        retry_locked(lambda: client.log_artifacts(run_id, logs_dir, "logs"))
    retry_locked(lambda: client.set_terminated(run_id, status))
    return status
