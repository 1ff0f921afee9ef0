from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _tasks import fail_on_three, slow_pid, square, worker_pid

from opsin.core import parallel_map, process_pool, refers_to_main

TESTS = Path(__file__).resolve().parent


def _run_script(tmp_path: Path, body: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "plain_script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path
    )


def test_unguarded_script_uses_worker_processes_once(tmp_path: Path) -> None:
    # No __main__ guard: a pool that re-ran the script in its workers would print the banner again, start pools of
    # its own and hang or fail.
    done = _run_script(
        tmp_path,
        """
        import os
        from _tasks import slow_pid
        from opsin.core import parallel_map, process_pool
        print("banner", flush=True)
        pool = process_pool(1)
        pids = parallel_map(slow_pid, list(range(12)), workers=2)
        print("parent", os.getpid(), "pids", sorted(set(pids)))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("banner") == 1
    line = done.stdout.splitlines()[-1]
    parent = int(line.split()[1])
    pids = {int(p) for p in line.split("[", 1)[1].rstrip("]").split(",")}
    assert parent in pids  # the calling thread works too
    assert len(pids) == 2  # ... and so does the one worker process


def test_python_c_and_main_defined_work_fall_back_to_threads(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import logging, threading
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        from opsin.core import parallel_map
        def cube(x):
            return (x ** 3, threading.current_thread().name)
        out = parallel_map(cube, list(range(6)), workers=2)
        print([v for v, _ in out], len({t for _, t in out}) >= 1)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 8, 27, 64, 125] True"
    warnings = [line for line in done.stderr.splitlines() if "__main__" in line]
    assert len(warnings) == 1
    assert "threads" in warnings[0]


def test_refers_to_main_sees_main_objects() -> None:
    assert not refers_to_main((square, 3))
    main_fn = type(square)(square.__code__, {}, "f")
    main_fn.__module__ = "__main__"
    main_fn.__qualname__ = "f"
    assert refers_to_main((main_fn, 3))  # cannot even be pickled by reference here
    assert refers_to_main(lambda x: x)


def test_small_job_stays_in_the_calling_process() -> None:
    assert set(parallel_map(worker_pid, list(range(5)), workers=2)) == {os.getpid()}


def test_results_in_order_and_inline_when_one_worker() -> None:
    assert parallel_map(square, list(range(7)), workers=1) == [i * i for i in range(7)]
    assert parallel_map(square, [], workers=2) == []


def test_warm_pool_is_shared_and_used() -> None:
    pool = process_pool(1)
    assert process_pool(1) is pool
    pids = parallel_map(slow_pid, list(range(10)), workers=2)
    assert os.getpid() in pids  # the calling thread and the warm worker share ten 50 ms items
    assert len(set(pids)) == 2


def test_first_failure_names_its_item() -> None:
    with pytest.raises(ValueError, match="three is not allowed") as info:
        parallel_map(fail_on_three, list(range(8)), workers=2)
    assert info.value.opsin_item == 3  # type: ignore[attr-defined]


def test_bad_worker_count() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        parallel_map(square, [1], workers=0)


def test_fallback_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="opsin.core")
    assert parallel_map(lambda x: x + 1, [1, 2, 3], workers=2) == [2, 3, 4]
    assert len([r for r in caplog.records if "threads" in r.getMessage()]) == 1


class _Holder:
    def __init__(self, *items: object) -> None:
        self.items = items


def test_refers_to_main_through_memoised_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not refers_to_main(_Holder("__main__", square))  # a string, not a reference
    assert not refers_to_main([_Holder(1), _Holder(2)])
    # A class that __main__ really holds pickles by reference; its module name, seen first as a plain string,
    # comes back from the pickle memo when the reference is written.
    monkeypatch.setattr(sys.modules["__main__"], "_Holder", _Holder, raising=False)
    monkeypatch.setattr(_Holder, "__module__", "__main__")
    assert refers_to_main(["__main__", _Holder(3)])
    assert refers_to_main((square, [_Holder(4), _Holder(5)]))
