"""Per-application data and cache folders."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "data_dir"]

_APP_AUTHOR = "opsin"


def _checked_app(app: str) -> str:
    # The app name becomes one path component; anything that could climb out of the base folder is refused.
    if not app or app in {".", ".."} or "/" in app or "\\" in app or "\0" in app:
        msg = f"application name {app!r} must be a single, non-empty path component"
        raise ValueError(msg)
    return app


def _home() -> Path | None:
    value = os.environ.get("OPSIN_HOME", "").strip()
    return Path(value).expanduser() if value else None


def data_dir(app: str) -> Path:
    """Return (creating it) the folder where ``app`` keeps its persistent data.

    ``$OPSIN_HOME/<app>`` when ``OPSIN_HOME`` is set, else the platform's user data folder
    (``~/.local/share/opsin/<app>`` on Linux).

    Args:
        app: application name, one path component (e.g. ``"synth"``).

    Returns:
        The existing folder.
    """
    home = _home()
    base = home if home is not None else platformdirs.user_data_path(_APP_AUTHOR, appauthor=False)
    path = base / _checked_app(app)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(app: str) -> Path:
    """Return (creating it) the folder where ``app`` keeps data it can recompute.

    ``$OPSIN_HOME/cache/<app>`` when ``OPSIN_HOME`` is set, else the platform's user cache folder
    (``~/.cache/opsin/<app>`` on Linux).

    Args:
        app: application name, one path component.

    Returns:
        The existing folder.
    """
    home = _home()
    base = home / "cache" if home is not None else platformdirs.user_cache_path(_APP_AUTHOR, appauthor=False)
    path = base / _checked_app(app)
    path.mkdir(parents=True, exist_ok=True)
    return path
