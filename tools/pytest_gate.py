"""Run pytest and turn two quiet ways of testing nothing into failures.

* "No tests collected" (pytest's exit code 5) fails: a suite that silently collects nothing would look green.
* With ``--allow-skips REGEX`` (used by ``.ci/run``, where the real fixtures are present), every skipped test must
  give a reason matching REGEX (e.g. ``GPU|CUDA``); any other skip fails the run and is listed. Without the flag,
  skips are reported by pytest as usual (a fresh clone without the fixture folder skips only the real-data layer).

Usage: ``python tools/pytest_gate.py [--allow-skips REGEX] PYTEST_ARGS...``
"""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

NO_TESTS_COLLECTED = 5


class SkipCollector:
    """A pytest plugin that records the reason of every skipped test or collector."""

    def __init__(self) -> None:
        self.skips: list[tuple[str, str]] = []

    def _record(self, report: Any) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        self.skips.append((report.nodeid, str(reason).removeprefix("Skipped: ")))

    def pytest_runtest_logreport(self, report: Any) -> None:
        self._record(report)

    def pytest_collectreport(self, report: Any) -> None:
        self._record(report)


def split_args(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take ``--allow-skips REGEX`` (or ``--allow-skips=REGEX``) out of the pytest arguments."""
    allowed: str | None = None
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--allow-skips":
            allowed = next(it, "")
        elif arg.startswith("--allow-skips="):
            allowed = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return allowed, rest


def main(argv: list[str]) -> int:
    allowed, args = split_args(argv)
    collector = SkipCollector()
    code = int(pytest.main(args, plugins=[collector]))
    if code == NO_TESTS_COLLECTED:
        print(f"pytest collected no tests for {' '.join(args)}: failing on purpose", file=sys.stderr)
        return 1
    if allowed is not None:
        pattern = re.compile(allowed, re.IGNORECASE) if allowed else None
        unexpected = [(node, why) for node, why in collector.skips if pattern is None or not pattern.search(why)]
        if unexpected:
            print(f"{len(unexpected)} test(s) skipped for a reason other than /{allowed}/:", file=sys.stderr)
            for node, why in unexpected:
                print(f"  {node}: {why}", file=sys.stderr)
            return code or 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
