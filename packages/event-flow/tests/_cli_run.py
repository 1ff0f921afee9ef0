"""Running ``opsin-eventflow`` in-process for the command-line tests."""

from __future__ import annotations

from click.testing import CliRunner

from opsin.eventflow import cli


def run(args: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``opsin-eventflow ARGS``."""
    result = CliRunner().invoke(cli.main, args)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(err: str) -> str:
    """The single ``Error: ...`` line a failure must print (asserts there is exactly one)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    return lines[0]
