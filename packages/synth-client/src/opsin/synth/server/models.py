"""Database models and connection handling, portable between SQLite and PostgreSQL.

UUIDs are ``String(36)``, documents are generic ``JSON``, times are timezone-aware UTC. On SQLite, write
transactions start with ``BEGIN IMMEDIATE`` (on a separate engine) so concurrent writers queue on the busy timeout
instead of failing on a lock upgrade; reads use WAL snapshots and never block.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = [
    "FINISHED_STATES",
    "IN_PROGRESS_STATES",
    "SCHEMA_VERSION",
    "Base",
    "Batch",
    "Database",
    "IdempotencyKey",
    "Job",
    "JobStatus",
    "PortalSession",
    "SchemaVersion",
    "User",
    "hash_token",
    "new_id",
    "utcnow",
]

SCHEMA_VERSION = 2


class JobStatus(enum.StrEnum):
    """The states of a job; ``queued`` and ``running`` are "in progress", the others are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def in_progress(self) -> bool:
        """Whether a job in this state may still change."""
        return self in IN_PROGRESS_STATES


IN_PROGRESS_STATES: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)
"""States of a job still in progress (``in_progress`` true in the API)."""
FINISHED_STATES: tuple[JobStatus, ...] = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
"""Final states."""


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    """A new lowercase UUID4 string."""
    return str(uuid.uuid4())


def hash_token(token: str) -> str:
    """SHA-256 hex digest of an API token (tokens are never stored in clear)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the service's tables."""


class SchemaVersion(Base):
    """One row recording the schema version the tables were created with."""

    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class User(Base):
    """An account: token hash, admin flag, active flag and sample balance."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    sample_balance: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Batch(Base):
    """A submitted list of jobs sharing generator and job type."""

    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(256), default="", nullable=False)
    generator: Mapped[str] = mapped_column(String(200), nullable=False)
    is_preview: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class Job(Base):
    """One generator run: parameters, seed, state, accounting and result."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), nullable=False, index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    generator: Mapped[str] = mapped_column(String(200), nullable=False)
    is_preview: Mapped[bool] = mapped_column(Boolean, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=JobStatus.QUEUED)
    # decimal string: the seed is an unsigned 64-bit integer, wider than a portable BIGINT
    seed: Mapped[str] = mapped_column(String(20), nullable=False)
    seed_source_job: Mapped[str] = mapped_column(String(36), nullable=False)
    estimated_samples: Mapped[int] = mapped_column(Integer, nullable=False)
    actual_samples: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    started: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    purged: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    charged: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    __table_args__ = (
        Index("ix_jobs_status_created_position", "status", "created", "position"),
        Index("ix_jobs_owner_completed", "owner_id", "completed"),
    )


class PortalSession(Base):
    """A portal login; deleting the row (logout, new token, deactivation) ends it, whatever the cookie says."""

    __tablename__ = "portal_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class IdempotencyKey(Base):
    """A remembered ``Idempotency-Key``: body hash and, once finished, the stored response."""

    __tablename__ = "idempotency_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    body_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[Any] = mapped_column(JSON, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (UniqueConstraint("owner_id", "key", name="uq_idempotency_owner_key"),)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# columns added after schema version 1, with the SQL type each needs on every backend (all nullable)
_ADDED_COLUMNS = {"jobs": {"result_bytes": "INTEGER", "purged": "TIMESTAMP WITH TIME ZONE"}}


def _add_missing_columns(engine: Engine) -> None:
    """Bring a version-1 database up to date: ``ALTER TABLE ... ADD COLUMN`` for each nullable column it lacks."""
    inspector = inspect(engine)
    for table, columns in _ADDED_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        missing = {name: kind for name, kind in columns.items() if name not in present}
        if not missing:
            continue
        with engine.begin() as connection:
            for name, kind in missing.items():
                sql_type = "TIMESTAMP" if engine.dialect.name == "sqlite" and kind.startswith("TIMESTAMP") else kind
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))


def _create_private_sqlite_file(url: str) -> None:
    """Create the SQLite file readable by its owner only (SQLite gives the WAL and SHM files the same mode)."""
    path_text = url.split("///", 1)[1] if "///" in url else ""
    if not path_text or path_text.startswith((":memory:", "file:")):
        return
    path = Path(path_text.split("?", 1)[0])
    if not path.parent.is_dir():
        return  # let SQLAlchemy report the bad location on first use
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


class Database:
    """Engines and session factories for one database URL.

    Args:
        url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        # a fresh, never-repeated number after every write transaction of this process (itertools.count is atomic
        # under the GIL): readers cache results keyed by the number they saw before querying
        self._versions = itertools.count(1)
        self.write_version = 0
        if url.startswith("sqlite"):
            _create_private_sqlite_file(url)
            self.engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
            self.write_engine = self.engine

    def create_all(self) -> None:
        """Create missing tables, add the columns later versions introduced, and record the schema version."""
        Base.metadata.create_all(self.write_engine)
        _add_missing_columns(self.write_engine)
        with self.write() as session:
            row = session.get(SchemaVersion, 1)
            if row is None:
                session.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
            elif row.version < SCHEMA_VERSION:
                row.version = SCHEMA_VERSION

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads (no commit)."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        try:
            with Session(self.write_engine, expire_on_commit=False) as session, session.begin():
                yield session
        finally:
            self.write_version = next(self._versions)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()

    def user_by_token(self, token: str) -> User | None:
        """The user owning ``token`` (by hash), or ``None``."""
        with self.read() as session:
            return session.scalars(select(User).where(User.token_hash == hash_token(token))).first()
