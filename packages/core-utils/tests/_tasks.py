"""Module-level task functions: process pools and Dask workers import them by name."""

from __future__ import annotations

import os
import time


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        msg = f"three is not allowed (got {x})"
        raise ValueError(msg)
    return x


def worker_pid(_: int) -> int:
    return os.getpid()


def slow_pid(_: int) -> int:
    """Busy for 50 ms, then report the process that ran it."""
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:
        pass
    return os.getpid()


_tag: str | None = None


def set_tag(value: str) -> None:
    """Pool initializer: remembers ``value`` in this worker."""
    global _tag  # the per-worker state an initializer exists to set
    _tag = value


def tag_and_pid(_: int) -> tuple[str | None, int]:
    return _tag, os.getpid()
