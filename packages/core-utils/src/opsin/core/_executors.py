"""Executors behind one interface: local processes, threads, in-process, or a Dask cluster.

Every opsin package that fans work out (generator jobs, modifier passes, training grids, feature precomputation)
asks :func:`make_executor` for a :class:`concurrent.futures.Executor`, so scaling out is a configuration string,
not a code change.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from opsin.core._progress import progress as _progress_bar
from opsin.core.errors import ExecutorSpecError

__all__ = ["ExecutorSpecError", "SyncExecutor", "make_executor", "map_unordered"]

T = TypeVar("T")
R = TypeVar("R")

_DASK_PREFIXES = ("dask://", "tcp://", "tls://", "inproc://")


class SyncExecutor(cf.Executor):
    """Runs each task in the calling thread at submit time (for debugging and deterministic tests)."""

    def __init__(self) -> None:
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> cf.Future[R]:
        """Run ``fn(*args, **kwargs)`` now and return a finished future holding its result or exception."""
        with self._lock:
            if self._shutdown:
                msg = "cannot submit to a SyncExecutor after shutdown"
                raise RuntimeError(msg)
        future: cf.Future[R] = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further submissions."""
        with self._lock:
            self._shutdown = True


class _DaskExecutor(cf.Executor):
    """A Dask ``ClientExecutor`` that also owns (and closes) its client."""

    def __init__(self, address: str, max_workers: int | None) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the install
            msg = f"executor {address!r} needs Dask: pip install 'opsin-core-utils[dask]'"
            raise ExecutorSpecError(msg) from exc
        try:
            self._client = Client(address, timeout="10s", set_as_default=False)
        except OSError as exc:
            msg = f"cannot reach the Dask scheduler at {address!r}: {exc}"
            raise ExecutorSpecError(msg) from exc
        # Dask schedules by itself; max_workers is only meaningful for local pools.
        self.max_workers = max_workers
        self._inner = self._client.get_executor(pure=False)

    @property
    def client(self) -> Any:
        """The underlying ``distributed.Client``."""
        return self._client

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> cf.Future[R]:
        """Submit ``fn(*args, **kwargs)`` to the cluster."""
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the executor and close the client connection (the cluster itself keeps running)."""
        try:
            self._inner.shutdown(wait=wait)
        finally:
            self._client.close()


def _process_context() -> multiprocessing.context.BaseContext:
    # fork is unsafe in processes that already run threads (web servers, dispatcher threads, Dask clients);
    # forkserver starts workers from a clean single-threaded server and is much cheaper than spawn.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def make_executor(
    spec: str | cf.Executor = "local",
    max_workers: int | None = None,
    *,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> cf.Executor:
    """Build an executor from a short specification.

    Args:
        spec: ``"local"`` (process pool), ``"thread"`` (thread pool), ``"sync"`` (runs in the calling thread),
            ``"dask://host:port"`` or any Dask scheduler address (``tcp://``, ``tls://``), needing the ``[dask]``
            extra. An existing executor is returned unchanged.
        max_workers: pool size for ``local`` and ``thread``; default: the number of CPUs (processes) or
            ``min(32, cpus + 4)`` (threads).
        initializer: called with ``initargs`` once in every new worker of a ``local`` or ``thread`` pool (e.g. to
            tie a worker's life to its parent); other kinds have no workers of their own and refuse it.
        initargs: the initializer's arguments.

    Returns:
        A :class:`concurrent.futures.Executor`; use it as a context manager or call ``shutdown()``.

    Raises:
        ExecutorSpecError: unknown specification, bad worker count, an initializer for an executor without
            workers of its own, or an unreachable Dask scheduler.
    """
    if isinstance(spec, cf.Executor):
        if initializer is not None:
            msg = "an initializer needs a 'local' or 'thread' pool built here, not an existing executor"
            raise ExecutorSpecError(msg)
        return spec
    if max_workers is not None and max_workers < 1:
        msg = f"max_workers must be at least 1, got {max_workers}"
        raise ExecutorSpecError(msg)
    text = spec.strip()
    if text == "local":
        workers = max_workers or os.cpu_count() or 1
        return cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=_process_context(), initializer=initializer, initargs=initargs
        )
    if text == "thread":
        return cf.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="opsin", initializer=initializer, initargs=initargs
        )
    if initializer is not None:
        msg = f"an initializer needs a 'local' or 'thread' pool, not {spec!r}"
        raise ExecutorSpecError(msg)
    if text == "sync":
        return SyncExecutor()
    if text.startswith(_DASK_PREFIXES):
        address = "tcp://" + text.removeprefix("dask://") if text.startswith("dask://") else text
        return _DaskExecutor(address, max_workers)
    msg = f"unknown executor {spec!r}: use 'local', 'thread', 'sync' or 'dask://host:port'"
    raise ExecutorSpecError(msg)


def map_unordered(
    executor: cf.Executor,
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    progress: bool = False,
    desc: str = "",
    max_pending: int | None = None,
) -> Iterator[tuple[T, R]]:
    """Apply ``fn`` to every item on ``executor``, yielding ``(item, result)`` as each finishes.

    At most ``max_pending`` tasks are in flight, so a long iterable is never materialised as futures all at once.
    On the first failure the tasks not yet started are cancelled and the exception is re-raised, with a note (and
    an ``opsin_item`` attribute) naming the item that caused it.

    Args:
        executor: where to run.
        fn: a function of one item (module-level, for process pools).
        items: the inputs; consumed lazily.
        progress: show a progress bar (see :func:`opsin.core.progress`).
        desc: the bar's label.
        max_pending: bound on tasks in flight; default ``4 x workers`` when known, else 64.

    Yields:
        ``(item, fn(item))`` in completion order.
    """
    if max_pending is None:
        workers = getattr(executor, "_max_workers", None) or getattr(executor, "max_workers", None)
        max_pending = 4 * workers if isinstance(workers, int) else 64
    sized = items if hasattr(items, "__len__") else None
    total = len(sized) if sized is not None else None  # type: ignore[arg-type]
    source = iter(items)
    pending: dict[cf.Future[R], T] = {}
    bar = _progress_bar(total=total, desc=desc) if progress else _progress_bar(total=total, disable=True)
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < max_pending:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending[executor.submit(fn, item)] = item
            if not pending:
                return
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                try:
                    result = future.result()
                except BaseException as exc:
                    for other in pending:
                        other.cancel()
                    exc.add_note(f"raised while processing item {item!r}")
                    with contextlib.suppress(AttributeError):  # exceptions with __slots__ cannot carry it
                        exc.opsin_item = item  # type: ignore[attr-defined]
                    raise
                bar.update(1)
                yield item, result
    finally:
        bar.close()
