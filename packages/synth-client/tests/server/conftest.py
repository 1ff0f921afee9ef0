"""Fixtures of the service tests: a shared session-wide service and a factory for dedicated ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service tests need the [server] extra")

from svc_helpers import Service, start_service


@pytest.fixture(scope="session", autouse=True)
def _postgres_cluster() -> Iterator[None]:
    """With OPSIN_SYNTH_TEST_POSTGRES=1 the services run on a temporary PostgreSQL cluster; stop it at the end."""
    import pg_cluster

    yield
    pg_cluster.stop()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for the whole session (users are per test, so tests stay independent)."""
    svc = start_service(tmp_path_factory.mktemp("synth-service"))
    try:
        yield svc
    finally:
        svc.close()
        svc.server.stop()


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Factory for a dedicated service (own data dir and settings), stopped at the end of the test."""
    started: list[Service] = []

    def factory(**overrides: Any) -> Service:
        svc = start_service(tmp_path / f"svc{len(started)}", **overrides)
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        svc.close()
        svc.server.stop()
