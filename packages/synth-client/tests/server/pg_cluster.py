"""A throw-away PostgreSQL cluster for the service tests: Debian's server binaries, a temporary data folder, 127.0.0.1.

``OPSIN_SYNTH_TEST_POSTGRES=1`` (set by ``nox -s tests_postgres``) makes every test service use its own database in
such a cluster instead of SQLite.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ENABLED = os.environ.get("OPSIN_SYNTH_TEST_POSTGRES") == "1"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        found = [path for path in (shutil.which("initdb"),) if path]
    if not found:
        msg = "PostgreSQL server binaries not found (Debian: apt-get install postgresql)"
        raise RuntimeError(msg)
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """initdb + pg_ctl start on a free loopback port; :meth:`stop` removes everything."""

    def __init__(self) -> None:
        self.bin = _binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="opsin-pg-"))
        self.port = _free_port()
        self._user: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root: use the postgres system account
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._user = ["runuser", "-u", "postgres", "--"]
        data = self.folder / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run([*self._user, *command], check=True, capture_output=True, text=True)

    def new_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import sqlalchemy

        name = f"synth_{secrets.token_hex(6)}"
        engine = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        engine.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


_cluster: Cluster | None = None


def database_url() -> str | None:
    """A fresh PostgreSQL database when the PostgreSQL mode is on (cluster started on first use), else ``None``."""
    global _cluster
    if not ENABLED:
        return None
    if _cluster is None:
        _cluster = Cluster()
    return _cluster.new_database()


def stop() -> None:
    """Stop the cluster if one was started."""
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None
