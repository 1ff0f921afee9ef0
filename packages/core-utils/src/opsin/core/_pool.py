"""Warm worker processes that never re-run the user's script, and a map that uses them only when it pays.

``multiprocessing`` normally prepares every new worker by importing the parent's ``__main__``: the script file
(``init_main_from_path``) or the module run with ``-m``. A plain top-level script without an
``if __name__ == "__main__":`` guard then runs again in every worker, which starts pools of its own; pools hang or
break. The pools made here hide ``__main__`` while a worker is launched, so workers import only the modules named
in the pickled tasks. Work that refers to objects defined in ``__main__`` (a function typed into a notebook, a
modifier class in a script) cannot be unpickled there and runs on threads instead, announced by one log line.

Starting a pool costs seconds (each worker imports the scientific stack), more than many jobs take. So
:func:`parallel_map` keeps pools alive for the whole process (one per size), measures the first item in the
calling thread, starts a pool only when the rest of the job is longer than the start, and keeps working in the
calling thread while the pool starts: a job is never slower on a pool than inline by more than a few dispatches.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import io
import multiprocessing
import multiprocessing.context as mp_context
import multiprocessing.spawn as mp_spawn
import pickle
import pickletools
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from opsin.core._logging import get_logger
from opsin.core._progress import progress as _progress_bar

__all__ = ["parallel_map", "process_pool", "refers_to_main", "shutdown_pools"]

T = TypeVar("T")
R = TypeVar("R")

logger = get_logger(__name__)

# A pool start is dominated by the workers' imports; until one has been measured in this process, assume this.
_DEFAULT_START_S = 3.0
# Per-item cost of sending a task to a worker and its result back (pickling, pipes, the executor's threads).
_DISPATCH_S = 0.002
# Below this much remaining work even a warm pool gains less than a worker's wake-up and scheduling jitter cost.
_MIN_POOL_WORK_S = 0.25

_lock = threading.RLock()
_pools: dict[int, cf.ProcessPoolExecutor] = {}
_preloaded: set[str] = set()
_start_s: float | None = None


_hiding = threading.local()
_patch_lock = threading.Lock()


def _preparation_data_without_main(original: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    def preparation_data(name: str) -> dict[str, Any]:
        data = original(name)
        if getattr(_hiding, "active", False):
            for key in ("init_main_from_path", "init_main_from_name", "main_path"):
                data.pop(key, None)
        return data

    preparation_data.opsin_hides_main = True  # type: ignore[attr-defined]
    return preparation_data


def _install_main_filter() -> None:
    """Wrap ``multiprocessing.spawn.get_preparation_data`` once; it drops ``__main__`` only for our launches.

    The filter is gated by a thread-local flag that only :class:`_NoMainProcess` sets, so processes started by any
    other code are prepared exactly as before.
    """
    with _patch_lock:
        if not getattr(mp_spawn.get_preparation_data, "opsin_hides_main", False):
            mp_spawn.get_preparation_data = _preparation_data_without_main(  # type: ignore[assignment]
                mp_spawn.get_preparation_data
            )


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Launch worker processes in this thread without ``__main__`` in their preparation data."""
    _install_main_filter()
    _hiding.active = True
    try:
        yield
    finally:
        _hiding.active = False


_BASE_METHOD = "forkserver" if sys.platform.startswith("linux") else "spawn"
_BaseProcess: Any = type(getattr(multiprocessing.get_context(_BASE_METHOD), "Process")())  # noqa: B009


class _NoMainProcess(_BaseProcess):
    """A worker process launched without ``__main__`` in its preparation data (module level: it is pickled)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - the multiprocessing hook's name
        with _main_hidden():
            return _BaseProcess._Popen(process_obj)


def _no_main_context() -> mp_context.BaseContext:
    ctx = type(multiprocessing.get_context(_BASE_METHOD))()
    ctx.Process = _NoMainProcess  # type: ignore[attr-defined]
    return ctx


def _import_modules(modules: Sequence[str]) -> None:
    """Pool initializer: import the modules the tasks will need (no-op when the fork server preloaded them)."""
    for name in modules:
        with contextlib.suppress(ImportError):
            __import__(name)


def _ready() -> None:
    """A task that only proves a worker is up."""


def process_pool(workers: int, *, preload: Sequence[str] = ()) -> cf.ProcessPoolExecutor:
    """A process pool of ``workers`` processes, started once and reused for the rest of this process.

    The workers never import ``__main__``, so the pool works from unguarded scripts, notebooks and ``python -c``;
    tasks must be picklable by reference to importable modules (see :func:`refers_to_main`). On Linux the workers
    are forked from a fork server that imported ``preload`` once, so a new pool starts in milliseconds after the
    first one. The pool is shut down at interpreter exit or by :func:`shutdown_pools`; do not shut it down yourself.

    Args:
        workers: number of processes (at least 1).
        preload: modules every worker needs (imported by the fork server when it starts, else by each worker).

    Returns:
        The shared executor for that size, with all its workers started.

    Raises:
        ValueError: ``workers`` below 1.
    """
    global _start_s
    if workers < 1:
        msg = f"workers must be at least 1, got {workers}"
        raise ValueError(msg)
    with _lock:
        pool = _pools.get(workers)
        if pool is not None and not getattr(pool, "_broken", False):
            return pool
        ctx = _no_main_context()
        wanted = set(preload) - _preloaded
        if _BASE_METHOD == "forkserver" and wanted:
            # Takes effect when the server (one per process) starts; later pools then fork already-imported workers.
            ctx.set_forkserver_preload(sorted(_preloaded | wanted))
            _preloaded.update(wanted)
        started = time.perf_counter()
        pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_import_modules, initargs=(tuple(preload),)
        )
        # Submitting one no-op per worker launches them all now, not lazily in the middle of a job.
        for future in [pool.submit(_ready) for _ in range(workers)]:
            future.result()
        _start_s = time.perf_counter() - started
        logger.debug("started %d worker processes in %.2f s", workers, _start_s)
        _pools[workers] = pool
        return pool


def shutdown_pools() -> None:
    """Stop every pool made by :func:`process_pool` (also done at interpreter exit)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)


def _pickled_modules(payload: Any) -> set[str] | None:
    """Modules a pickle of ``payload`` refers to by name, or None when it cannot be pickled."""
    try:
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
    modules: set[str] = set()
    pushed: list[str | None] = []  # strings pushed so far, including those fetched back from the memo
    memo: dict[Any, str | None] = {}
    last: str | None = None  # the object on top of the stack, when it is a string
    for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            last = str(arg)
            pushed.append(last)
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = last
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            last = memo.get(arg)
            pushed.append(last)
        elif op.name == "STACK_GLOBAL" and len(pushed) >= 2 and pushed[-2] is not None:
            modules.add(str(pushed[-2]))
            last = None
        elif op.name in ("GLOBAL", "INST"):
            modules.add(str(arg).split(" ", 1)[0])
            last = None
        else:
            last = None
    return modules


def refers_to_main(payload: Any) -> bool:
    """Tell whether ``payload`` needs ``__main__`` (or cannot be pickled), so it cannot go to a worker process."""
    modules = _pickled_modules(payload)
    return modules is None or "__main__" in modules or "__mp_main__" in modules


class _Starter:
    """Starts (or fetches) the shared pool in a background thread while the caller keeps working."""

    def __init__(self, workers: int, preload: Sequence[str]) -> None:
        self.pool: cf.ProcessPoolExecutor | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(workers, preload), name="opsin-pool-start")
        self._thread.daemon = True
        self._thread.start()

    def _run(self, workers: int, preload: Sequence[str]) -> None:
        try:
            self.pool = process_pool(workers, preload=preload)
        except BaseException as exc:  # reported by the caller, which then carries on inline
            self.error = exc

    def ready(self) -> bool:
        return not self._thread.is_alive()


def _note_item(exc: BaseException, item: Any) -> None:
    exc.add_note(f"raised while processing item {item!r}")
    with contextlib.suppress(AttributeError):
        exc.opsin_item = item  # type: ignore[attr-defined]


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = 1,
    desc: str = "",
    progress: bool = False,
    preload: Sequence[str] = (),
) -> list[R]:
    """``[fn(item) for item in items]``, on worker processes where that is safe and faster.

    The first item runs in the calling thread and is timed. The rest goes to the shared pool of
    ``workers - 1`` processes (the calling thread is the last worker) when the remaining work is longer than a
    quarter second and, for a pool not yet running, than starting it; otherwise it runs inline. A cold pool starts
    in the background
    while the calling thread goes on with the items. Work that refers to ``__main__`` runs on ``workers``
    threads instead, with one log line.

    Args:
        fn: a function of one item; module level in an importable module to run on processes.
        items: the inputs.
        workers: parallelism (1: inline).
        desc: progress-bar label.
        progress: show a progress bar (see :func:`opsin.core.progress`).
        preload: modules the workers need (see :func:`process_pool`).

    Returns:
        The results, in the order of ``items``.

    Raises:
        ValueError: ``workers`` below 1.
        Exception: the first failure of ``fn``, with a note (and an ``opsin_item`` attribute) naming its item.
    """
    if workers < 1:
        msg = f"workers must be at least 1, got {workers}"
        raise ValueError(msg)
    items = list(items)
    n = len(items)
    results: list[Any] = [None] * n
    bar = _progress_bar(total=n, desc=desc) if progress else _progress_bar(total=n, desc=desc, disable=True)
    try:
        if workers == 1 or n <= 1:
            _run_inline(fn, items, range(n), results, bar)
            return results
        if refers_to_main((fn, items[0])):
            logger.warning(
                "%s: the work refers to objects defined in __main__, which worker processes cannot load; "
                "running on %d threads instead",
                desc or getattr(fn, "__qualname__", "parallel_map"),
                workers,
            )
            _run_threads(fn, items, results, bar, workers)
            return results
        started = time.perf_counter()
        _run_inline(fn, items, [0], results, bar)
        first_s = time.perf_counter() - started
        rest_s = first_s * (n - 1)
        with _lock:
            pool = _pools.get(workers - 1)
            if pool is not None and getattr(pool, "_broken", False):
                pool = None
        start_s = _start_s if _start_s is not None else _DEFAULT_START_S
        label = desc or getattr(fn, "__qualname__", "parallel_map")
        too_small = rest_s <= max(_MIN_POOL_WORK_S, 2 * _DISPATCH_S * (n - 1))
        if too_small or (pool is None and rest_s <= start_s):
            logger.debug("%s: %d more items inline (%.3f s each)", label, n - 1, first_s)
            _run_inline(fn, items, range(1, n), results, bar)
            return results
        logger.debug(
            "%s: %d more items on %d %s worker processes and the calling thread",
            label,
            n - 1,
            workers - 1,
            "warm" if pool is not None else "starting",
        )
        _run_hybrid(fn, items, results, bar, workers - 1, preload, pool)
        return results
    finally:
        bar.close()


def _run_inline(fn: Callable[[Any], Any], items: list[Any], indices: Any, results: list[Any], bar: Any) -> None:
    for i in indices:
        try:
            results[i] = fn(items[i])
        except BaseException as exc:
            _note_item(exc, items[i])
            raise
        bar.update(1)


def _run_threads(fn: Callable[[Any], Any], items: list[Any], results: list[Any], bar: Any, workers: int) -> None:
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="opsin") as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        while futures:
            _collect(futures, items, results, bar, wait=True)


def _collect(futures: dict[cf.Future[Any], int], items: list[Any], results: list[Any], bar: Any, *, wait: bool) -> None:
    """Move finished futures' results into ``results``; block for the first one when ``wait``."""
    if not futures:
        return
    done, _ = cf.wait(list(futures), timeout=None if wait else 0, return_when=cf.FIRST_COMPLETED)
    for future in done:
        i = futures.pop(future)
        try:
            results[i] = future.result()
        except BaseException as exc:
            for other in futures:
                other.cancel()
            _note_item(exc, items[i])
            raise
        bar.update(1)


def _run_hybrid(
    fn: Callable[[Any], Any],
    items: list[Any],
    results: list[Any],
    bar: Any,
    processes: int,
    preload: Sequence[str],
    pool: cf.ProcessPoolExecutor | None,
) -> None:
    """Items 1.. on the pool and in the calling thread together; the pool only gets work once it is up."""
    starter = None if pool is not None else _Starter(processes, preload)
    futures: dict[cf.Future[Any], int] = {}
    todo = list(range(1, len(items)))
    position = 0
    try:
        while position < len(todo) or futures:
            if pool is None and starter is not None and starter.ready():
                pool = starter.pool
                if pool is None:
                    logger.warning("worker processes did not start (%s); running inline", starter.error)
                starter = None
            if pool is not None:
                # Keep each process one task ahead, so none waits while the calling thread is busy.
                while position < len(todo) and len(futures) < 2 * processes:
                    i = todo[position]
                    futures[pool.submit(fn, items[i])] = i
                    position += 1
                _collect(futures, items, results, bar, wait=False)
            if position < len(todo):
                i = todo[position]
                position += 1
                _run_inline(fn, items, [i], results, bar)
            elif futures:
                _collect(futures, items, results, bar, wait=True)
    except cf.process.BrokenProcessPool:
        with _lock:
            for size, known in list(_pools.items()):
                if known is pool:
                    del _pools[size]
        raise
    finally:
        # A pool still starting finishes in the background and serves the next call.
        for future in futures:
            future.cancel()
