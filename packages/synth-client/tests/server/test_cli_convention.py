"""`opsin-synth` follows the opsin command-line convention: every --help reads well, bad input is one line + code."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opsin.core import ExitCode
from opsin.synth.cli import cli


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _paths(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_help_page_renders_cleanly() -> None:
    paths = _paths(cli)
    assert ("admin", "rotate-token") in paths
    assert ("serve",) in paths
    for path in paths:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.stdout
        assert "\\b" not in result.stdout, path
        assert "\b" not in result.stdout, path
        for common in ("--log-level", "--debug", "--version"):
            assert common in result.stdout, (path, common)
    top = CliRunner().invoke(cli, ["--help"]).stdout
    assert "\n    opsin-synth serve --data-dir ./synth-data\n" in top  # examples keep their own lines
    assert "\n    opsin-synth demo --out-dir ./demo\n" in top


@pytest.fixture(scope="module")
def table_db(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("cli-table")
    corrupt = folder / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 200)
    good = f"sqlite:///{folder / 'good.db'}"
    made = CliRunner().invoke(cli, ["admin", "create-user", "erin", "--db", good])
    assert made.exit_code == 0, made.output
    return {"good": good, "corrupt": f"sqlite:///{corrupt}", "missing_dir": f"sqlite:///{folder}/no/such/dir/x.db"}


BAD_INPUTS = [
    (["status", "not-a-uuid"], ExitCode.USAGE, "not a batch id"),
    (["download", "1234"], ExitCode.USAGE, "not a batch id"),
    (["nosuchcommand"], ExitCode.USAGE, "nosuchcommand"),
    (["--log-level", "LOUD", "admin", "list-users"], ExitCode.USAGE, "LOUD"),
    (["serve", "--port", "notaport"], ExitCode.USAGE, "notaport"),
    (["serve", "--retention-days", "0"], ExitCode.USAGE, "retention"),
    (["admin", "create-user", "x", "--samples", "-1", "--db", "{good}"], ExitCode.USAGE, "-1"),
    (["admin", "create-user", "erin", "--db", "{good}"], ExitCode.ERROR, "already exists"),
    (["admin", "deactivate", "nobody", "--db", "{good}"], ExitCode.NOT_FOUND, "nobody"),
    (["admin", "add-samples", "nobody", "5", "--db", "{good}"], ExitCode.NOT_FOUND, "nobody"),
    (["admin", "list-users", "--db", "{corrupt}"], ExitCode.ERROR, "corrupt.db"),
    (["admin", "list-users", "--db", "{missing_dir}"], ExitCode.ERROR, "x.db"),
    (["admin", "list-users", "--db", "nosuchdialect://x"], ExitCode.ERROR, "nosuchdialect"),
    (["--token", "", "generators"], ExitCode.AUTH, "token"),
    (["--server", "http://127.0.0.1:9/", "--token", "t", "generators"], ExitCode.ERROR, "cannot reach"),
]


@pytest.mark.parametrize(("args", "code", "names"), BAD_INPUTS, ids=[" ".join(a[:3]) for a, _, _ in BAD_INPUTS])
def test_bad_input_is_one_error_line_with_its_code(
    args: list[str], code: int, names: str, table_db: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSIN_SYNTH_TOKEN", raising=False)
    result = CliRunner().invoke(cli, [arg.format(**table_db) for arg in args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert names in lines[0]


def test_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == ExitCode.ERROR
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is already in use; stop the other server or choose another --port"
    ]


def test_admin_commands_manage_users(table_db: dict[str, str]) -> None:
    db = ["--db", table_db["good"]]
    runner = CliRunner()
    assert runner.invoke(cli, ["admin", "create-user", "frank", "--samples", "10", *db]).exit_code == 0
    assert (
        runner.invoke(cli, ["admin", "add-samples", "frank", "15", *db]).stdout.strip() == "'frank' now has 25 samples."
    )
    assert runner.invoke(cli, ["admin", "set-admin", "frank", *db]).exit_code == 0
    assert runner.invoke(cli, ["admin", "deactivate", "frank", *db]).exit_code == 0
    listing = runner.invoke(cli, ["admin", "list-users", "--json", *db])
    frank = next(user for user in json.loads(listing.stdout) if user["username"] == "frank")
    assert (frank["is_admin"], frank["is_active"], frank["sample_balance"]) == (True, False, 25)
    assert runner.invoke(cli, ["admin", "activate", "frank", *db]).exit_code == 0
    rotated = runner.invoke(cli, ["admin", "rotate-token", "frank", *db])
    token = rotated.stdout.rstrip("\n").splitlines()[-1]
    assert len(token) == 40
    assert all(ch in "0123456789abcdef" for ch in token)
    with sqlite3.connect(table_db["good"].removeprefix("sqlite:///")) as connection:
        row = connection.execute("SELECT is_active, is_admin FROM users WHERE username = 'frank'").fetchone()
    assert row == (1, 1)
    text = runner.invoke(cli, ["admin", "list-users", *db]).stdout
    assert "frank" in text
    assert "erin" in text
