"""The self-hosted generator service (extra ``[server]``): REST app, database, dispatcher and procedural generators.

``create_app(settings)`` builds the FastAPI app (``opsin.synth.server.app``); ``Settings`` configures it. Both are
imported lazily, so worker processes that only need :mod:`opsin.synth.server.generators` never import FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsin.core import lazy_exports

if TYPE_CHECKING:
    from opsin.synth.server.app import create_app
    from opsin.synth.server.settings import Settings

__all__ = ["Settings", "create_app"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"Settings": "opsin.synth.server.settings", "create_app": "opsin.synth.server.app"}, globals()
)
