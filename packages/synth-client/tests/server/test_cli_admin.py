"""`opsin-synth admin create-user` and `--help`: exit codes, token on the last line, same database as `serve`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from opsin.synth.cli import cli
from opsin.synth.server.models import Database, User, hash_token


def test_create_user_prints_token_alone_on_last_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["admin", "create-user", "carol", "--samples", "123", "--admin", "--data-dir", str(data)],
        env={"OPSIN_SYNTH_DB_URL": None},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.stdout.rstrip("\n").splitlines()[-1]
    assert len(token) == 40
    assert all(c in "0123456789abcdef" for c in token)
    assert result.stdout.count(token) == 1
    assert token not in result.stderr
    db = Database(f"sqlite:///{data / 'synth.db'}")  # the database `serve --data-dir` uses
    with db.read() as session:
        user = session.scalars(select(User).where(User.username == "carol")).one()
    db.dispose()
    assert user.token_hash == hash_token(token)
    assert token not in user.token_hash
    assert user.sample_balance == 123
    assert user.is_admin


def test_duplicate_user_is_error_exit_1_and_usage_is_2(tmp_path: Path) -> None:
    runner = CliRunner()
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    first = runner.invoke(cli, ["admin", "create-user", "dave", "--db", db_url])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["admin", "create-user", "dave", "--db", db_url])
    assert second.exit_code == 1
    assert "already exists" in second.output
    assert runner.invoke(cli, ["admin", "create-user"]).exit_code == 2
    assert runner.invoke(cli, ["serve", "--port", "notaport"]).exit_code == 2


def test_help_explains_commands() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for word in ("serve", "admin", "demo", "Exit codes"):
        assert word in top.output
    serve = runner.invoke(cli, ["serve", "--help"])
    for option in ("--host", "--port", "--data-dir", "--db", "--workers", "--scheduler", "--public-url"):
        assert option in serve.output
    create = runner.invoke(cli, ["admin", "create-user", "--help"])
    assert "--samples" in create.output
    assert "last line" in create.output
