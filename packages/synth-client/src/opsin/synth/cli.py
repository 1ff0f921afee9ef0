"""The ``opsin-synth`` command line (§9): ``serve``, ``admin create-user``, ``demo`` and the client commands.

Exit codes: 0 ok, 1 error, 2 usage, 3 auth, 4 not found, 5 insufficient samples, 6 timeout.
"""

from __future__ import annotations

import os
import sys
import typing as t
from pathlib import Path

import click

from opsin.synth import __version__
from opsin.synth._client_cli import register as register_client_commands

__all__ = ["EXIT_AUTH", "EXIT_ERROR", "EXIT_INSUFFICIENT", "EXIT_NOT_FOUND", "EXIT_TIMEOUT", "CliError", "cli", "main"]

EXIT_ERROR = 1
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_INSUFFICIENT = 5
EXIT_TIMEOUT = 6

_SERVER_HINT = "the service needs the [server] extra: pip install 'opsin-synth-client[server]'"


class CliError(click.ClickException):
    """A failure reported as ``Error: <message>`` with one of the documented exit codes."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


def _require_server() -> None:
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CliError(f"{_SERVER_HINT} ({exc.name} is missing)") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="opsin-synth")
@click.option(
    "--server",
    envvar="OPSIN_SYNTH_SERVER",
    default="http://127.0.0.1:8000/",
    show_default=True,
    help="Service URL for client commands (env OPSIN_SYNTH_SERVER).",
)
@click.option("--token", envvar="OPSIN_SYNTH_TOKEN", default=None, help="API token (env OPSIN_SYNTH_TOKEN).")
@click.pass_context
def cli(ctx: click.Context, server: str, token: str | None) -> None:
    r"""Synthetic-data generation: run the self-hosted service and manage it.

    \b
    Start a service and give someone access:
      opsin-synth serve --data-dir ./synth-data
      opsin-synth admin create-user alice --samples 10000 --data-dir ./synth-data
    Try everything end to end on a temporary service:
      opsin-synth demo

    Exit codes: 0 ok, 1 error, 2 usage, 3 auth, 4 not found, 5 insufficient samples, 6 timeout.
    """
    ctx.ensure_object(dict)
    ctx.obj["server"] = server
    ctx.obj["token"] = token


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the SQLite database, results and secret key (env OPSIN_SYNTH_DATA_DIR; default: the user "
    "data dir + synth/).",
)
@click.option("--db", "db_url", default=None, help="SQLAlchemy database URL (env OPSIN_SYNTH_DB_URL).")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Jobs run at once (default: CPU count - 1).")
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:port); run jobs on that cluster.")
@click.option("--public-url", default=None, help="Base URL put in result links (env OPSIN_SYNTH_PUBLIC_URL).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Logging verbosity.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    db_url: str | None,
    workers: int | None,
    scheduler: str | None,
    public_url: str | None,
    log_level: str,
) -> None:
    """Run the generator service (REST API, portal and job dispatcher) in this process.

    Zero configuration: without options it keeps a SQLite database and the results under the data dir.
    """
    _require_server()
    import uvicorn

    from opsin.core import configure_logging
    from opsin.synth.server.app import create_app
    from opsin.synth.server.settings import Settings

    configure_logging(log_level.upper())
    settings = Settings.from_env(
        data_dir, db_url=db_url or "", workers=workers, scheduler=scheduler, public_url=public_url
    )
    try:
        app = create_app(settings)
    except Exception as exc:
        raise CliError(f"cannot start the service with database {settings.db_url}: {exc}") from exc
    click.echo(f"opsin-synth {__version__} serving on http://{host}:{port}/ (data dir {settings.data_dir})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")


@cli.group()
def admin() -> None:
    """Administrative commands working directly on the service database."""


@admin.command("create-user")
@click.argument("username")
@click.option("--samples", type=int, default=0, show_default=True, help="Initial sample balance.")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user an administrator.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data folder of the service (same default as `serve`), whose database is used.",
)
@click.option("--db", "db_url", default=None, help="SQLAlchemy database URL (overrides --data-dir's database).")
def create_user_command(username: str, samples: int, is_admin: bool, data_dir: Path | None, db_url: str | None) -> None:
    """Create USERNAME and print its new API token (alone on the last line; shown only once)."""
    _require_server()
    from opsin.synth.server.accounting import create_user
    from opsin.synth.server.models import Database
    from opsin.synth.server.settings import default_data_dir, default_db_url

    if db_url is None:
        folder = (data_dir or default_data_dir()).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        db_url = default_db_url(folder)
    db = Database(db_url)
    try:
        db.create_all()
        token = create_user(db, username, samples, is_admin=is_admin)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    finally:
        db.dispose()
    kind = "admin user" if is_admin else "user"
    click.echo(f"Created {kind} {username!r} with {samples} samples. Token (shown once):")
    click.echo(token)


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("opsin-synth-demo"),
    show_default=True,
    help="Folder receiving the downloaded results.",
)
@click.option("--keep-server", is_flag=True, help="Keep the temporary service running until Ctrl-C afterwards.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Give up after this many seconds.")
def demo(out: Path, keep_server: bool, timeout: float) -> None:
    """Run the whole service end to end on a temporary data dir, with no configuration.

    Starts the service on a free 127.0.0.1 port, creates a user, submits 4 `shapes-v0.1.0` scenes and 2 short
    `visionfit-v0.4.0` videos at 128x128 over HTTP, waits, downloads and safely extracts the results into --out.
    """
    _require_server()
    from opsin.synth.server._demo import DemoTimeoutError, run_demo

    try:
        summary = run_demo(out, keep_server=keep_server, timeout=timeout, echo=click.echo)
    except DemoTimeoutError as exc:
        raise CliError(str(exc), EXIT_TIMEOUT) from None
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    click.echo(summary)


# client commands (generators, submit, status, download, workflow) live in their own module
register_client_commands(cli)


def main(argv: t.Sequence[str] | None = None) -> None:
    """Console-script entry point (``opsin-synth``)."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli.main(args=list(argv) if argv is not None else None, prog_name="opsin-synth")


if __name__ == "__main__":  # pragma: no cover - `python -m opsin.synth.cli`
    main(sys.argv[1:])
