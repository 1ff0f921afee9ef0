"""Precomputation of HDF5 feature files from event recordings (atomic, parallel, skipping existing outputs)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opsin.core import get_logger, make_executor, map_unordered
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.io._open import is_event_file, open_events
from opsin.eventflow.io.h5_features import FeatureWriter
from opsin.eventflow.preprocessing import downsampling_factor_for, get_preprocess_info

__all__ = ["PrecomputeJob", "collect_inputs", "feature_stem", "precompute_file", "precompute_files"]

_log = get_logger("opsin.eventflow.precompute")
_BLOCK_ROWS = 32


def feature_stem(path: str | Path) -> str:
    """The basename without extension and without a trailing ``_td`` / ``_cd``."""
    return re.sub(r"_(td|cd)$", "", Path(path).stem)


@dataclass(frozen=True)
class PrecomputeJob:
    """One recording to convert; see :func:`precompute_file` for the fields."""

    input_path: str
    out_dir: str
    preprocess: str = "event_cube"
    delta_t: int = 50000
    height: int | None = None
    width: int | None = None
    max_duration: int | None = None
    store_as_uint8: bool = False
    preprocess_kwargs: Mapping[str, Any] = field(default_factory=dict)
    overwrite: bool = False


def precompute_file(job: PrecomputeJob) -> dict[str, Any]:
    """Converts one recording into ``{stem}.h5`` (or ``{stem}_{i}.h5`` parts of ``max_duration`` us).

    Row i holds the feature of [i*dt, (i+1)*dt) computed on its own (num_tbins = 1, timestamps relative to the row
    start); N = floor(t_last / dt) + 1 rows. Existing outputs are skipped unless ``overwrite``.

    Returns:
        ``{"input", "outputs", "skipped", "rows", "events"}``.

    Raises:
        ConfigError: ``max_duration`` not a multiple of ``delta_t``, a non power-of-2 downsampling, or uint8
            storage of a signed feature.
    """
    info = get_preprocess_info(job.preprocess, job.preprocess_kwargs)
    if job.delta_t <= 0:
        message = f"delta_t must be > 0, got {job.delta_t}"
        raise ConfigError(message)
    if job.max_duration is not None and (job.max_duration <= 0 or job.max_duration % job.delta_t):
        message = f"max_duration={job.max_duration} must be a positive multiple of delta_t={job.delta_t}"
        raise ConfigError(message)
    if job.store_as_uint8 and info["signed"]:
        message = f"--store-as-uint8 is refused for the signed feature {job.preprocess!r}"
        raise ConfigError(message)
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = feature_stem(job.input_path)
    reader = open_events(job.input_path)
    try:
        sensor = (reader.height, reader.width)
        target = (job.height or sensor[0], job.width or sensor[1])
        ds = downsampling_factor_for(sensor, target)
        n_events = reader.event_count
        n_rows = reader.duration_us // job.delta_t + 1 if n_events else 0
        rows_per_part = (job.max_duration // job.delta_t) if job.max_duration else max(n_rows, 1)
        n_parts = max(1, -(-n_rows // rows_per_part))
        outputs, skipped = [], []
        shape = (int(info["cin"]), target[0], target[1])
        for part in range(n_parts):
            name = f"{stem}_{part}.h5" if job.max_duration else f"{stem}.h5"
            path = out_dir / name
            if path.exists() and not job.overwrite:
                skipped.append(str(path))
                continue
            first, last = part * rows_per_part, min(n_rows, (part + 1) * rows_per_part)
            with FeatureWriter(
                path,
                shape,
                job.preprocess,
                job.delta_t,
                sensor[0],
                sensor[1],
                start_ts=first * job.delta_t,
                store_as_uint8=job.store_as_uint8,
                preprocess_kwargs=info["kwargs"],
                signed=info["signed"],
            ) as writer:
                reader.seek_time(first * job.delta_t)
                for block in range(first, last, _BLOCK_ROWS):
                    n = min(_BLOCK_ROWS, last - block)
                    events = reader.load_delta_t(n * job.delta_t)
                    rel = events["t"] - block * job.delta_t
                    cuts = np.searchsorted(rel, np.arange(1, n) * job.delta_t, side="left")
                    rows = np.zeros((n, *shape), dtype=np.float32)
                    for i, chunk in enumerate(np.split(events, cuts)):
                        chunk["t"] -= (block + i) * job.delta_t
                        info["fn"](chunk, rows[i : i + 1], job.delta_t, ds, True, **info["kwargs"])
                    writer.write(rows)
            outputs.append(str(path))
        return {"input": job.input_path, "outputs": outputs, "skipped": skipped, "rows": n_rows, "events": n_events}
    finally:
        reader.close()


def collect_inputs(inputs: Sequence[str | Path], out_dir: str | Path) -> list[tuple[Path, Path]]:
    """Pairs each recording with its output folder.

    A folder input is searched recursively and its sub-folders are mirrored under ``out_dir``.

    Raises:
        FileNotFoundError: an input does not exist.
    """
    pairs = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                if found.is_file() and not found.stem.endswith("_flow") and is_event_file(found):
                    pairs.append((found, Path(out_dir) / found.parent.relative_to(path)))
        elif path.is_file():
            pairs.append((path, Path(out_dir)))
        else:
            message = f"{path}: no such file or folder"
            raise FileNotFoundError(message)
    return pairs


def precompute_files(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    preprocess: str = "event_cube",
    delta_t: int = 50000,
    height: int | None = None,
    width: int | None = None,
    max_duration: int | None = None,
    store_as_uint8: bool = False,
    preprocess_kwargs: Mapping[str, Any] | None = None,
    processes: int = 1,
    overwrite: bool = False,
    executor: str | None = None,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """Converts many recordings in parallel (an ``opsin.core`` executor), with a progress bar.

    Args:
        inputs: files or folders of recordings.
        out_dir: the output folder.
        preprocess: preprocessing name.
        delta_t: row duration (us).
        height: output height (default: sensor height).
        width: output width (default: sensor width).
        max_duration: split outputs into parts of this many us.
        store_as_uint8: store features as uint8.
        preprocess_kwargs: keyword arguments of the preprocessing.
        processes: worker processes (1: in the calling process).
        overwrite: recompute existing outputs.
        executor: an ``opsin.core.make_executor`` spec overriding ``processes`` (e.g. ``"dask://host:8786"``).
        show_progress: show a progress bar.

    Returns:
        One summary per input, in completion order.
    """
    get_preprocess_info(preprocess, preprocess_kwargs)
    jobs = [
        PrecomputeJob(
            str(src),
            str(dst),
            preprocess,
            int(delta_t),
            height,
            width,
            max_duration,
            store_as_uint8,
            dict(preprocess_kwargs or {}),
            overwrite,
        )
        for src, dst in collect_inputs(inputs, out_dir)
    ]
    spec = executor or ("local" if processes > 1 else "sync")
    pool = make_executor(spec, max_workers=max(1, processes))
    results = []
    try:
        for job, result in map_unordered(pool, precompute_file, jobs, progress=show_progress, desc="precompute"):
            _log.info(
                "%s: %d rows -> %s%s",
                job.input_path,
                result["rows"],
                result["outputs"],
                f" (skipped {result['skipped']})" if result["skipped"] else "",
            )
            results.append(result)
    finally:
        pool.shutdown()
    return results
