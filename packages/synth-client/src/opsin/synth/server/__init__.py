"""The self-hosted generator service (extra ``[server]``): REST app, database, dispatcher and procedural generators.

``create_app(settings)`` builds the FastAPI app (``opsin.synth.server.app``); ``Settings`` configures it. Both are
imported lazily, so worker processes that only need :mod:`opsin.synth.server.generators` never import FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsin.synth.server.app import create_app
    from opsin.synth.server.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from opsin.synth.server.app import create_app

        return create_app
    if name == "Settings":
        from opsin.synth.server.settings import Settings

        return Settings
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
