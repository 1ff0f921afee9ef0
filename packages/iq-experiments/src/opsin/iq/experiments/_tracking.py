"""Where experiments are tracked: URI resolution, the mlflow client, retries on a busy SQLite store.

mlflow is imported lazily (inside functions) so that importing :mod:`opsin.iq.experiments` stays cheap and never
touches mlflow state; nothing here changes global mlflow state except :func:`set_global_uris`, which
:class:`~opsin.iq.experiments.ExperimentSetup` calls at construction for compatibility with the original.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from opsin.core import get_logger
from opsin.iq.errors import TrackingServerError

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "check_server",
    "default_artifact_location",
    "get_or_create_experiment",
    "local_path_from_uri",
    "make_client",
    "resolve_registry_uri",
    "resolve_tracking_uri",
    "retry_locked",
    "set_global_uris",
]

logger = get_logger(__name__)

T = TypeVar("T")

_LOCK_RETRY_S = 30.0
_CONNECT_TIMEOUT_S = 3.0

#: The experiment tag mlflow 3's UI reads to choose an experiment's first page, and the value for model training.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def mlflow_dir() -> Path:
    """The folder of the default embedded store: ``$OPSIN_IQ_MLFLOW_DIR`` or ``./mlflow`` (absolute)."""
    return Path(os.environ.get("OPSIN_IQ_MLFLOW_DIR", "").strip() or "mlflow").resolve()


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """Pick the tracking URI: explicit > ``MLFLOW_TRACKING_URI`` > set earlier in this process > default SQLite.

    The default is ``sqlite:///<abs dir>/mlflow.db`` with ``dir`` = ``$OPSIN_IQ_MLFLOW_DIR`` or ``./mlflow``; the
    folder is created when this default is chosen.

    Args:
        explicit: a URI given by the caller (``cloud_options["tracking_uri"]``, ``tracking_uri=``); empty = unset.

    Returns:
        The tracking URI.
    """
    if explicit:
        return str(explicit)
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    from mlflow.tracking._tracking_service import utils as tracking_utils

    if tracking_utils.is_tracking_uri_set():
        return str(tracking_utils.get_tracking_uri())
    folder = mlflow_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def resolve_registry_uri(explicit: str | None, tracking_uri: str) -> str:
    """The registry URI: the explicit one, else the tracking URI."""
    return str(explicit) if explicit else tracking_uri


def set_global_uris(tracking_uri: str, registry_uri: str) -> None:
    """Set mlflow's process-wide tracking and registry URIs (compatibility with code using the fluent API)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)


def _scheme(uri: str) -> str:
    return urllib.parse.urlparse(uri).scheme.split("+", 1)[0].lower()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for other URIs or in-memory databases)."""
    if _scheme(uri) != "sqlite":
        return None
    rest = uri.split(":///", 1)[1] if ":///" in uri else ""
    if not rest or rest.startswith(":memory:"):
        return None
    return Path(rest.split("?", 1)[0])


def default_artifact_location(tracking_uri: str) -> str | None:
    """Artifact root for experiments created here, so that nothing lands in ``./mlruns``.

    SQLite stores keep artifacts in ``<db folder>/artifacts``; other database stores in ``<mlflow dir>/artifacts``;
    tracking servers decide themselves (``None``).
    """
    db = sqlite_path(tracking_uri)
    if db is not None:
        return str(db.resolve().parent / "artifacts")
    if _scheme(tracking_uri) in _DB_SCHEMES:
        return str(mlflow_dir() / "artifacts")
    return None


def check_server(tracking_uri: str, timeout_s: float = _CONNECT_TIMEOUT_S) -> None:
    """Fail fast when the host of an ``http(s)://`` tracking URI does not accept connections.

    mlflow itself retries an unreachable server for minutes; one TCP connection attempt answers in seconds.
    Other URIs (databases, files) are not checked.

    Raises:
        TrackingServerError: the server refuses the connection or does not answer within ``timeout_s``.
    """
    parsed = urllib.parse.urlparse(tracking_uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        msg = (
            f"mlflow tracking server {tracking_uri} is not reachable ({reason}); start it or pass another "
            "--tracking-uri / MLFLOW_TRACKING_URI"
        )
        raise TrackingServerError(msg) from exc


def make_client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """An explicit :class:`mlflow.MlflowClient` (no fluent active-run state); creates a SQLite file's folder.

    Raises:
        TrackingServerError: an ``http(s)://`` tracking server does not answer (see :func:`check_server`).
    """
    check_server(tracking_uri)  # before importing mlflow: an unreachable server answers in milliseconds
    from mlflow import MlflowClient

    db = sqlite_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    return retry_locked(lambda: MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri))


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def retry_locked(fn: Callable[[], T], *, timeout_s: float = _LOCK_RETRY_S) -> T:
    """Call ``fn``, retrying while SQLite reports "database is locked" (at most ``timeout_s`` seconds)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return fn()
        except Exception as exc:
            if not _is_locked(exc) or time.monotonic() >= deadline:
                raise
            logger.debug("mlflow store busy (%s); retrying in %.2f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def get_or_create_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, creating it (with :func:`default_artifact_location`) when missing.

    A deleted experiment of that name is restored. The experiment gets the tag :data:`EXPERIMENT_KIND_TAG` =
    ``custom_model_development`` when it has none, so the mlflow 3 UI opens it on its runs table (without the tag
    it guesses the kind and may open the GenAI traces view).
    """
    exp = retry_locked(lambda: client.get_experiment_by_name(name))
    if exp is not None:
        exp_id = str(exp.experiment_id)
        if exp.lifecycle_stage == "deleted":
            retry_locked(lambda: client.restore_experiment(exp_id))
        if EXPERIMENT_KIND_TAG not in exp.tags:
            retry_locked(lambda: client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND))
        return exp_id
    location = default_artifact_location(tracking_uri)
    tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    try:
        return str(retry_locked(lambda: client.create_experiment(name, artifact_location=location, tags=tags)))
    except Exception:
        # another process created it between the lookup and the creation
        exp = retry_locked(lambda: client.get_experiment_by_name(name))
        if exp is None:
            raise
        return str(exp.experiment_id)


def local_path_from_uri(uri: str) -> str | None:
    """The local folder of a ``file:`` (or scheme-less) artifact URI, else ``None``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return uri
    return None


def run_query(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``retry_locked`` for a call with arguments."""
    return retry_locked(lambda: fn(*args, **kwargs))
