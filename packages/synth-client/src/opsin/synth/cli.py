"""The ``opsin-synth`` command line: ``serve``, ``demo``, ``admin ...`` and the client commands.

It follows the opsin command-line convention (:class:`opsin.core.OpsinGroup`): ``--log-level``, ``--debug`` and
``--version`` on every command, one ``Error: ...`` line on failure, and the exit codes of :class:`opsin.core.ExitCode`
(0 ok, 1 error, 2 usage or bad input, 3 authentication, 4 not found, 5 insufficient samples, 6 timeout).
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import typing as t
from pathlib import Path

import click

from opsin.core import CliError, ExitCode, OpsinGroup
from opsin.synth import __version__
from opsin.synth._admin_cli import admin, require_server
from opsin.synth._client_cli import register as register_client_commands

__all__ = ["EXIT_AUTH", "EXIT_ERROR", "EXIT_INSUFFICIENT", "EXIT_NOT_FOUND", "EXIT_TIMEOUT", "CliError", "cli", "main"]

# the package's former names of the shared exit codes
EXIT_ERROR = ExitCode.ERROR
EXIT_AUTH = ExitCode.AUTH
EXIT_NOT_FOUND = ExitCode.NOT_FOUND
EXIT_INSUFFICIENT = ExitCode.INSUFFICIENT_SAMPLES
EXIT_TIMEOUT = ExitCode.TIMEOUT


_HELP = """Synthetic-data generation: run the self-hosted service, manage it, and use it.

\b
Start a service and give someone access:
  opsin-synth serve --data-dir ./synth-data
  opsin-synth admin create-user alice --samples 10000 --data-dir ./synth-data
Try everything end to end on a temporary service:
  opsin-synth demo --out-dir ./demo
Render and fetch a batch as that user:
  export OPSIN_SYNTH_TOKEN=<token>
  opsin-synth submit --generator shapes-v0.1.0 --params jobs.json --yes
  opsin-synth download <batch id> --wait --out-dir ./batch

Exit codes: 0 ok, 1 error, 2 usage or bad input, 3 authentication, 4 not found, 5 insufficient samples,
6 timeout.
"""


@click.group(cls=OpsinGroup, version_text=__version__, help=_HELP)
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
    """The ``opsin-synth`` group: keeps ``--server``/``--token`` for the client commands."""
    ctx.ensure_object(dict)
    ctx.obj["server"] = server
    ctx.obj["token"] = token


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket before the app starts, so a busy port is one clear error, not a late crash."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        msg = f"--host {host!r} is not a usable address ({exc.strerror})"
        raise CliError(msg, ExitCode.USAGE) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        msg = f"port {port} on {host} {reason}; stop the other server or choose another --port"
        raise CliError(msg, ExitCode.ERROR) from None
    sock.set_inheritable(True)
    return sock


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
    "--api-workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="API processes sharing the database (one of them runs the job dispatcher).",
)
@click.option(
    "--retention-days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Delete result zips this many days after their job finished (default: keep forever).",
)
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    db_url: str | None,
    workers: int | None,
    scheduler: str | None,
    public_url: str | None,
    api_workers: int,
    retention_days: float | None,
) -> None:
    """Run the generator service (REST API, portal and job dispatcher) in this process.

    Zero configuration: without options it keeps a SQLite database and the results under the data dir. Log lines
    follow --log-level (default WARNING; INFO shows each job).
    """
    require_server()
    import logging

    import uvicorn

    from opsin.core import get_logger
    from opsin.synth._admin_cli import open_app
    from opsin.synth.server.settings import Settings

    settings = Settings.from_env(
        data_dir,
        db_url=db_url or "",
        workers=workers,
        scheduler=scheduler,
        public_url=public_url,
        retention_days=retention_days,
        api_workers=api_workers,
    )
    sock = _bind(host, port)
    app = open_app(settings)  # creates the tables once, and reports a database that cannot be opened
    level = logging.getLevelName(get_logger("opsin").getEffectiveLevel()).lower()
    level = level if level in ("debug", "info", "warning", "error", "critical") else "warning"
    shown = sock.getsockname()[1]
    click.echo(f"opsin-synth {__version__} serving on http://{host}:{shown}/ (data dir {settings.data_dir})", err=True)
    if api_workers == 1:
        config = uvicorn.Config(app, log_level=level, access_log=level == "debug", timeout_graceful_shutdown=10)
        uvicorn.Server(config).run(sockets=[sock])
        return
    os.environ["OPSIN_SYNTH_SETTINGS"] = settings.to_json()  # the worker processes build their own app from it
    sock.close()  # the port was free a moment ago; uvicorn's supervisor binds it for its worker processes
    uvicorn.run(
        "opsin.synth.server.app:app_from_environment",
        factory=True,
        host=host,
        port=shown,
        workers=api_workers,
        log_level=level,
        access_log=level == "debug",
        timeout_graceful_shutdown=10,
    )


@cli.command()
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("opsin-synth-demo"),
    show_default=True,
    help="Folder receiving the results (one folder per batch) and the demo service's data dir.",
)
@click.option("--keep-server", is_flag=True, help="Keep the demo service running until Ctrl-C afterwards.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="Give up after this many seconds (exit 6).")  # fmt: skip
def demo(out_dir: Path, keep_server: bool, timeout: float) -> None:
    """Run the whole service end to end with no configuration.

    Starts the service on a free 127.0.0.1 port with its data dir in OUT_DIR/service-data, creates a user, submits
    4 `shapes-v0.1.0` scenes and 2 short `visionfit-v0.4.0` videos at 128x128, waits, and downloads the results
    into OUT_DIR. It ends by printing how to look at them in the portal.
    """
    require_server()
    from opsin.synth.server._demo import run_demo

    click.echo(run_demo(out_dir, keep_server=keep_server, timeout=timeout, echo=click.echo))


cli.add_command(admin)
register_client_commands(cli)


def main(argv: t.Sequence[str] | None = None) -> None:
    """Console-script entry point (``opsin-synth``)."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli.main(args=list(argv) if argv is not None else None, prog_name="opsin-synth")


if __name__ == "__main__":  # pragma: no cover - `python -m opsin.synth.cli`
    main(sys.argv[1:])
