"""Service configuration: where data lives, which database, secrets, limits and execution knobs."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import attrs

from opsin.core import data_dir as _core_data_dir

__all__ = ["Settings", "default_data_dir", "resolve_secret_key"]

_SECRET_FILE = "secret_key"


def default_data_dir() -> Path:
    """``OPSIN_SYNTH_DATA_DIR`` when set, else the ``opsin.core`` user data dir plus ``synth/``."""
    env = os.environ.get("OPSIN_SYNTH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return _core_data_dir("opsin") / "synth"


def default_db_url(data_dir: Path) -> str:
    """``OPSIN_SYNTH_DB_URL`` when set, else a SQLite file ``synth.db`` in ``data_dir``."""
    return os.environ.get("OPSIN_SYNTH_DB_URL") or f"sqlite:///{Path(data_dir).resolve() / 'synth.db'}"


def resolve_secret_key(data_dir: Path) -> str:
    """Return ``OPSIN_SYNTH_SECRET_KEY``, else the key stored in ``<data_dir>/secret_key`` (created once, mode 0600).

    Creation uses an exclusive open, so two processes starting together end up with the same key.
    """
    env = os.environ.get("OPSIN_SYNTH_SECRET_KEY")
    if env:
        return env
    path = Path(data_dir) / _SECRET_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
        msg = f"secret key file {path} is empty; delete it to generate a new key"
        raise RuntimeError(msg) from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    return key


def _to_path(value: str | os.PathLike[str]) -> Path:
    return Path(value).expanduser().resolve()


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the service needs to run.

    Attributes:
        data_dir: folder holding the SQLite database (by default), ``results/`` and the secret key.
        db_url: SQLAlchemy URL; default ``sqlite:///<data_dir>/synth.db``.
        secret_key: HMAC key for result URLs and portal cookies; default per :func:`resolve_secret_key`.
        public_url: base URL put in front of result links; default: the URL the request came in on.
        workers: concurrent jobs (local process-pool size); default CPU count - 1 (at least 1).
        scheduler: Dask scheduler address; when set, jobs run on that cluster instead of local processes.
        result_url_ttl_s: lifetime of a signed result URL.
        max_body_bytes: request bodies above this answer 413.
        max_jobs_per_batch / max_name_length / max_params_per_job / max_string_bytes / max_frames_per_job: limits
            answering 400.
        job_deadline_base_s / job_deadline_per_sample_s: a running job fails after ``base + per_sample * estimate``.
        poll_interval_s: how often the dispatcher looks for work when nobody wakes it.
        start_dispatcher: run the dispatcher thread (off for pure API tests or admin tools).
        idempotency_ttl_s: how long an ``Idempotency-Key`` is remembered.
        retention_days: result zips are deleted this many days after their job finished; ``None`` keeps them.
        purge_interval_s: how often the dispatcher looks for results past their retention.
        api_workers: API processes sharing the database; one of them (the holder of ``<data_dir>/dispatcher.lock``)
            runs the dispatcher, and per-process caches of job states are off when there is more than one.
    """

    data_dir: Path = attrs.field(converter=_to_path)
    db_url: str = ""
    secret_key: str = ""
    public_url: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    result_url_ttl_s: int = 24 * 3600
    max_body_bytes: int = 4 * 1024 * 1024
    max_jobs_per_batch: int = 1000
    max_name_length: int = 256
    max_params_per_job: int = 200
    max_string_bytes: int = 1024
    max_frames_per_job: int = 20_000
    job_deadline_base_s: float = 60.0
    job_deadline_per_sample_s: float = 2.0
    poll_interval_s: float = 0.25
    start_dispatcher: bool = True
    idempotency_ttl_s: int = 24 * 3600
    retention_days: float | None = None
    purge_interval_s: float = 600.0
    api_workers: int = 1

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from the ``OPSIN_SYNTH_*`` environment variables, explicit arguments winning.

        Args:
            data_dir: data folder; default :func:`default_data_dir`.
            **overrides: any other attribute.
        """
        folder = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir().resolve()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: tokens' hashes, results, the secret key
        if not overrides.get("db_url"):
            overrides["db_url"] = default_db_url(folder)
        if not overrides.get("secret_key"):
            overrides["secret_key"] = resolve_secret_key(folder)
        if overrides.get("public_url") is None and os.environ.get("OPSIN_SYNTH_PUBLIC_URL"):
            overrides["public_url"] = os.environ["OPSIN_SYNTH_PUBLIC_URL"]
        return cls(data_dir=folder, **overrides)

    def to_json(self) -> str:
        """The settings as JSON (to hand them to API worker processes)."""
        import json

        return json.dumps(
            {key: str(value) if isinstance(value, Path) else value for key, value in attrs.asdict(self).items()}
        )

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Settings written by :meth:`to_json`."""
        import json

        return cls(**json.loads(text))

    @property
    def results_dir(self) -> Path:
        """``<data_dir>/results``: one ``<job_id>.zip`` per finished job."""
        return self.data_dir / "results"

    @property
    def cancel_dir(self) -> Path:
        """``<data_dir>/cancel``: flag files telling running jobs to stop."""
        return self.data_dir / "cancel"

    @property
    def effective_workers(self) -> int:
        """Number of jobs run at once."""
        if self.workers:
            return max(1, int(self.workers))
        return max(1, (os.cpu_count() or 2) - 1)
