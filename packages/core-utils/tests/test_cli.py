from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opsin.core import CliError, ExitCode, OpsinGroup, exit_code_for, one_line


def _cli() -> click.Group:
    @click.group(cls=OpsinGroup, version_text="9.9.9")
    def root() -> None:
        """Root."""

    @root.command()
    @click.option("--n", type=int, default=1)
    def ok(n: int) -> None:
        """Print n."""
        click.echo(f"n={n}")

    @root.command()
    def bad_value() -> None:
        """Raise a ValueError."""
        raise ValueError("--size must be positive,\n got -3")

    @root.command()
    def missing() -> None:
        """Raise FileNotFoundError."""
        raise FileNotFoundError("no such file: x.dat")

    @root.command()
    def auth() -> None:
        """Raise a CliError with the auth code."""
        raise CliError("invalid token", ExitCode.AUTH)

    @root.group()
    def sub() -> None:
        """Nested group."""

    @sub.command()
    def deep() -> None:
        """Deep command."""
        raise TimeoutError("gave up after 3 s")

    return root


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(_cli(), args, standalone_mode=True)
    return result.exit_code, result.stdout, result.stderr


def test_exit_code_table_is_the_documented_one() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["bad-value"], 2, "--size must be positive, got -3"),
        (["missing"], 4, "no such file: x.dat"),
        (["auth"], 3, "invalid token"),
        (["sub", "deep"], 6, "gave up after 3 s"),
        (["ok", "--n", "x"], 2, "'x' is not a valid integer"),
        (["nope"], 2, "No such command"),
        (["ok", "--log-level", "LOUD"], 2, "--log-level"),
    ],
)
def test_failures_print_one_error_line_with_the_documented_code(args: list[str], code: int, needle: str) -> None:
    exit_code, _out, err = _run(args)
    assert exit_code == code
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    assert needle in lines[0]


def test_common_options_work_before_and_after_the_subcommand() -> None:
    assert _run(["--log-level", "debug", "ok", "--n", "3"])[:2] == (0, "n=3\n")
    assert _run(["ok", "--log-level", "ERROR", "--n", "4"])[:2] == (0, "n=4\n")
    assert _run(["sub", "deep", "--log-level", "INFO"])[0] == 6
    for args in (["--version"], ["ok", "--version"], ["sub", "deep", "--version"]):
        code, out, _ = _run(args)
        assert code == 0
        assert "9.9.9" in out


def test_debug_shows_the_traceback() -> None:
    code, _out, err = _run(["bad-value", "--debug"])
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("Error: ")


def test_help_lists_common_options_on_every_command() -> None:
    for args in (["--help"], ["ok", "--help"], ["sub", "--help"], ["sub", "deep", "--help"]):
        code, out, _ = _run(args)
        assert code == 0
        for flag in ("--log-level", "--debug", "--version"):
            assert flag in out, (args, flag)


def test_exit_code_for_prefers_an_explicit_attribute() -> None:
    class InsufficientError(RuntimeError):
        exit_code = ExitCode.INSUFFICIENT_SAMPLES

    assert exit_code_for(InsufficientError("x")) == 5
    assert exit_code_for(PermissionError("x")) == 1
    assert exit_code_for(KeyError("k")) == 2
    assert one_line(KeyError("missing key")) == "missing key"
    assert one_line(RuntimeError()) == "RuntimeError"


def test_a_real_console_script_exits_with_the_code(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(
        textwrap.dedent(
            """
            import click
            from opsin.core import OpsinGroup

            @click.group(cls=OpsinGroup, version_text="1.0")
            def cli():
                pass

            @cli.command()
            def boom():
                raise OSError("disk /x is full")

            cli.main(prog_name="prog")
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script), "boom"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error: disk /x is full"
