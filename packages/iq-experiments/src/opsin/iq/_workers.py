"""The worker count: one name (``workers``) across the package, the original's spellings as aliases.

Per-image work (modifiers, metrics) runs through :func:`opsin.core.parallel_map`, which keeps worker processes
warm for the whole session and uses them only when a job outlasts their start. Their fork server imports
:data:`WORKER_MODULES` once, so later pools start in milliseconds instead of importing SciPy, scikit-image and
OpenCV in every worker.
"""

from __future__ import annotations

import os

__all__ = ["WORKER_MODULES", "resolve_workers"]

#: Modules every worker process needs; the fork server imports them once.
WORKER_MODULES: tuple[str, ...] = ("opsin.iq.datasets", "opsin.iq.metrics.sharpness_metric", "opsin.iq.io")


def resolve_workers(workers: int | None, alias: int | None = None, *, default: int = 1) -> int:
    """The worker count from ``workers`` or its alias (``n_jobs``, ``njobs``); ``-1`` (or below) means every CPU.

    Args:
        workers: the value given as ``workers`` (None: not given).
        alias: the value given under the original's name (used when ``workers`` is None).
        default: the count when neither is given (``-1``: every CPU).

    Returns:
        A count of at least 1.

    Raises:
        ValueError: a count of 0, or both names given with different values.
    """
    if workers is not None and alias is not None and int(workers) != int(alias):
        msg = f"workers={workers} and its alias n_jobs/njobs={alias} disagree: pass only workers"
        raise ValueError(msg)
    value = int(workers if workers is not None else alias if alias is not None else default)
    if value == 0:
        msg = "workers must be a positive count or -1 (every CPU), got 0"
        raise ValueError(msg)
    if value < 0:
        return os.cpu_count() or 1
    return value
