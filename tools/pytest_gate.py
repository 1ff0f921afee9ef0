"""Run pytest and treat "no tests collected" (exit code 5) as the failure it is in CI.

A suite that silently collects nothing would otherwise look green; this makes the reason explicit.
"""

from __future__ import annotations

import sys

import pytest

NO_TESTS_COLLECTED = 5


def main(argv: list[str]) -> int:
    code = int(pytest.main(argv))
    if code == NO_TESTS_COLLECTED:
        print(f"pytest collected no tests for {' '.join(argv)}: failing on purpose", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
