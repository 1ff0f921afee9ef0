"""Run the service app under uvicorn in a background thread on a free loopback port (demo, tests, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

__all__ = ["EmbeddedServer"]


class EmbeddedServer:
    """A uvicorn server in a daemon thread, bound to ``host`` on a free port unless ``port`` is given.

    Args:
        app: the ASGI app (usually from :func:`opsin.synth.server.app.create_app`).
        host: interface to bind (loopback by default).
        port: port; 0 picks a free one.
        log_level: uvicorn log level.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        # proto IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
        # without it Nagle's algorithm adds ~40-100 ms to every keep-alive response
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False, timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL with a trailing slash, e.g. ``http://127.0.0.1:53211/``."""
        return f"http://{self.host}:{self.port}/"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # surfaced by start()
            self._error = exc

    def start(self, timeout: float = 60.0) -> EmbeddedServer:
        """Start serving and wait until the server accepts requests.

        Raises:
            RuntimeError: the server did not start within ``timeout`` seconds.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                msg = f"embedded server on port {self.port} failed to start: {self._error!r}"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = f"embedded server on port {self.port} did not start within {timeout} s"
                raise RuntimeError(msg)
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to exit (running the app's shutdown) and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
