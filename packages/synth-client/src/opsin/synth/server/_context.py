"""The per-app service context (settings, database, dispatcher) and the request dependencies built on it."""

from __future__ import annotations

import time
from typing import Annotated

import attrs
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import select

from opsin.synth.server._responses import ServiceHTTPError
from opsin.synth.server.dispatcher import Dispatcher
from opsin.synth.server.generators import Generator, generator_registry, get_generator
from opsin.synth.server.models import Batch, Database, Job, User
from opsin.synth.server.settings import Settings

__all__ = ["CurrentUser", "ServiceContext", "get_context", "require_user"]

_token_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="`Token <40 hex characters>` (from `opsin-synth admin create-user`).",
    scheme_name="TokenAuth",
)


_TOKEN_CACHE_TTL_S = 2.0
_TOKEN_CACHE_MAX = 4096
_SUMMARY_CACHE_MAX = 4096


@attrs.define
class ServiceContext:
    """What the routes share: settings, database and (optionally) the dispatcher."""

    settings: Settings
    db: Database
    dispatcher: Dispatcher | None = None

    _tokens: dict[str, tuple[float, User | None]] = attrs.field(factory=dict, init=False)

    def user_by_token(self, token: str) -> User | None:
        """The token's user, looked up by hash; remembered for 2 s so status polling costs no extra query.

        A deactivation or a new token therefore takes effect within 2 seconds.
        """
        now = time.monotonic()
        hit = self._tokens.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        user = self.db.user_by_token(token)
        if len(self._tokens) >= _TOKEN_CACHE_MAX:
            self._tokens.clear()
        self._tokens[token] = (now + _TOKEN_CACHE_TTL_S, user)
        return user

    _summaries: dict[tuple[str, str], tuple[int, list[tuple[str, str, str, str | None]]]] = attrs.field(
        factory=dict, init=False
    )

    def summary_rows(self, batch_id: str, owner_id: str) -> list[tuple[str, str, str, str | None]]:
        """``(job id, generator, status, result path)`` of the owner's batch in order; ``[]`` for unknown/foreign.

        With one API process (the only writer of job states) the rows are cached until its next committed write; the
        version is read before the query, so a write racing the query invalidates it. With several, no caching.
        """
        key = (batch_id, owner_id)
        version = self.db.write_version
        shared = self.settings.api_workers > 1  # other processes write too: this process's version says nothing
        hit = None if shared else self._summaries.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        query = (
            select(Job.id, Job.generator, Job.status, Job.result_path)
            .join(Batch, Batch.id == Job.batch_id)
            .where(Batch.id == batch_id, Batch.owner_id == owner_id)
            .order_by(Job.position)
        )
        with self.db.engine.connect() as connection:
            rows = [(str(a), str(b), str(c), d) for a, b, c, d in connection.execute(query).all()]
        if rows:
            if len(self._summaries) >= _SUMMARY_CACHE_MAX:
                self._summaries.clear()
            self._summaries[key] = (version, rows)
        return rows

    @staticmethod
    def generators() -> dict[str, Generator]:
        """The process's generator registry (built-ins + entry points)."""
        return generator_registry()

    @staticmethod
    def generator(name: str) -> Generator:
        """The generator called ``name``.

        Raises:
            UnknownGeneratorError: no such generator.
        """
        return get_generator(name)

    def public_base(self, request: Request) -> str:
        """Base URL for links: the configured public URL, else the URL the request came in on."""
        return (self.settings.public_url or str(request.base_url)).rstrip("/")


def get_context(request: Request) -> ServiceContext:
    """The app's :class:`ServiceContext`."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def require_user(request: Request, authorization: Annotated[str | None, Depends(_token_header)] = None) -> User:
    """Authenticate ``Authorization: Token <token>``: 401 when missing/unknown, 403 when deactivated.

    Async on purpose: a sync dependency costs a thread-pool round trip on every request, which dominated the
    status-poll path; the token cache answers almost every call, and a miss is one indexed SQLite read.
    """
    challenge = {"WWW-Authenticate": "Token"}
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "token" or not token:
        raise ServiceHTTPError(401, "Authentication credentials were not provided.", headers=challenge)
    user = get_context(request).user_by_token(token)
    if user is None:
        raise ServiceHTTPError(401, "Invalid token.", headers=challenge)
    if not user.is_active:
        raise ServiceHTTPError(403, "User inactive or deleted.")
    return user


CurrentUser = Annotated[User, Depends(require_user)]
