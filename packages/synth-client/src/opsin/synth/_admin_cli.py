"""``opsin-synth admin``: user administration working directly on the service database.

Every command takes ``--data-dir`` (same default as ``serve``, so it reaches the database ``serve --data-dir``
uses) or ``--db URL``. A database that cannot be opened (bad URL, unreachable server, a file that is not a database)
is reported in one line naming it.
"""

from __future__ import annotations

import functools
import json
import typing as t
from pathlib import Path

import click

from opsin.core import CliError, ExitCode

if t.TYPE_CHECKING:
    from fastapi import FastAPI

    from opsin.synth.server.models import Database
    from opsin.synth.server.settings import Settings

__all__ = ["admin", "open_app", "open_db", "require_server"]

_SERVER_HINT = "the service needs the [server] extra: pip install 'opsin-synth-client[server]'"

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def require_server() -> None:
    """Fail with the install hint when the ``[server]`` extra is missing."""
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CliError(f"{_SERVER_HINT} ({exc.name} is missing)") from None


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _database_failure(url: str, exc: Exception) -> CliError:
    reason = getattr(exc, "orig", None) or exc
    text = " ".join(str(reason).split("\n")[0].split())
    return CliError(f"cannot use the database {_shown(url)}: {text} (check --db / --data-dir)", ExitCode.ERROR)


def open_db(db_url: str | None, data_dir: Path | None) -> Database:
    """Open (creating tables when missing) the service database named by ``--db`` or ``--data-dir``.

    Raises:
        CliError: the URL is malformed, the server unreachable or the file is not a database.
    """
    from opsin.synth.server.models import Database
    from opsin.synth.server.settings import default_data_dir, default_db_url

    if db_url is None:
        folder = (data_dir or default_data_dir()).expanduser().resolve()
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create the data dir {folder}: {exc.strerror}") from None
        db_url = default_db_url(folder)
    try:
        db = Database(db_url)
        db.create_all()
    except Exception as exc:
        raise _database_failure(db_url, exc) from None
    return db


def open_app(settings: Settings) -> FastAPI:
    """Build the service app, turning a database that cannot be opened into one error line."""
    from opsin.synth.server.app import create_app

    try:
        return create_app(settings)
    except Exception as exc:
        raise _database_failure(settings.db_url, exc) from None


def _db_options(func: F) -> F:
    func = click.option(
        "--db", "db_url", default=None, help="SQLAlchemy database URL (overrides --data-dir's database)."
    )(func)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data folder of the service (same default as `serve`), whose database is used.",
    )(func)


def _with_db(func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """Open the database from ``--db``/``--data-dir`` and pass it as ``db``; dispose of it afterwards."""

    @functools.wraps(func)
    def wrapper(*args: t.Any, db_url: str | None, data_dir: Path | None, **kwargs: t.Any) -> t.Any:
        require_server()
        db = open_db(db_url, data_dir)
        try:
            return func(*args, db=db, **kwargs)
        finally:
            db.dispose()

    return wrapper


_ADMIN_HELP = """Administrative commands working directly on the service database.

\b
Examples:
  opsin-synth admin create-user alice --samples 10000 --data-dir ./synth-data
  opsin-synth admin list-users --data-dir ./synth-data
  opsin-synth admin rotate-token alice --data-dir ./synth-data
"""


@click.group(help=_ADMIN_HELP)
def admin() -> None:
    """Administrative commands working directly on the service database."""


@admin.command("create-user")
@click.argument("username")
@click.option("--samples", type=click.IntRange(min=0), default=0, show_default=True, help="Initial sample balance.")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user an administrator.")
@_db_options
@_with_db
def create_user_command(username: str, samples: int, is_admin: bool, db: Database) -> None:
    """Create USERNAME and print its new API token (alone on the last line; shown only once)."""
    from opsin.synth.server.accounting import create_user

    try:
        token = create_user(db, username, samples, is_admin=is_admin)
    except ValueError as exc:  # an empty name is bad input; a taken name is a conflict
        raise CliError(str(exc), ExitCode.USAGE if not username.strip() else ExitCode.ERROR) from None
    kind = "admin user" if is_admin else "user"
    click.echo(f"Created {kind} {username!r} with {samples} samples. Token (shown once):")
    click.echo(token)


@admin.command("list-users")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_db_options
@_with_db
def list_users_command(as_json: bool, db: Database) -> None:
    """List every user: name, flags, balance and samples rendered."""
    from opsin.synth.server.users import list_users

    users = list_users(db)
    if as_json:
        click.echo(json.dumps(users, indent=2))
        return
    click.echo(f"{'username':<24} {'active':<6} {'admin':<5} {'balance':>10} {'rendered':>10}  created")
    for user in users:
        click.echo(
            f"{user['username']:<24} {'yes' if user['is_active'] else 'no':<6} {'yes' if user['is_admin'] else 'no':<5}"
            f" {user['sample_balance']:>10} {user['samples_rendered_total']:>10}  {user['created']}"
        )


@admin.command("deactivate")
@click.argument("username")
@_db_options
@_with_db
def deactivate_command(username: str, db: Database) -> None:
    """Lock USERNAME out (API answers 403; portal sessions end). Data and balance stay."""
    from opsin.synth.server.users import set_active

    set_active(db, username, False)
    click.echo(f"Deactivated {username!r}.")


@admin.command("activate")
@click.argument("username")
@_db_options
@_with_db
def activate_command(username: str, db: Database) -> None:
    """Let USERNAME in again."""
    from opsin.synth.server.users import set_active

    set_active(db, username, True)
    click.echo(f"Activated {username!r}.")


@admin.command("rotate-token")
@click.argument("username")
@_db_options
@_with_db
def rotate_token_command(username: str, db: Database) -> None:
    """Give USERNAME a new token (the old one stops working; portal sessions end); prints it alone on the last line."""
    from opsin.synth.server.users import rotate_token

    token = rotate_token(db, username)
    click.echo(f"New token for {username!r} (shown once; the old token no longer works):")
    click.echo(token)


@admin.command("add-samples")
@click.argument("username")
@click.argument("samples", type=int)
@_db_options
@_with_db
def add_samples_command(username: str, samples: int, db: Database) -> None:
    """Add SAMPLES to USERNAME's balance (a negative number takes samples away); prints the new balance."""
    from opsin.synth.server.users import add_samples

    balance = add_samples(db, username, samples)
    click.echo(f"{username!r} now has {balance} samples.")


@admin.command("set-admin")
@click.argument("username")
@click.option("--revoke", is_flag=True, help="Withdraw the admin flag instead of granting it.")
@_db_options
@_with_db
def set_admin_command(username: str, revoke: bool, db: Database) -> None:
    """Make USERNAME an administrator (or, with --revoke, no longer one)."""
    from opsin.synth.server.users import set_admin

    set_admin(db, username, not revoke)
    click.echo(f"{username!r} is {'no longer' if revoke else 'now'} an administrator.")
