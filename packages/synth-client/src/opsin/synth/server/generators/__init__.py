"""Procedural generators of the synth service and their plugin interface.

``get_generator(name)`` returns a registered generator; ``available_generators()`` lists the built-ins followed by
plugins of the ``opsin.synth.generators`` entry-point group. A generator describes its schema (``describe()``,
``parameter_info``), counts its frames exactly (``estimate``), adds cross-parameter rules (``check``) and renders a
job into a folder (``run``).
"""

from opsin.synth.server.generators._base import CancelEvent, Generator, ParamSpec
from opsin.synth.server.generators._registry import (
    ENTRY_POINT_GROUP,
    available_generators,
    builtin_generators,
    generator_registry,
    get_generator,
)

__all__ = [
    "CancelEvent",
    "ENTRY_POINT_GROUP",
    "Generator",
    "ParamSpec",
    "available_generators",
    "builtin_generators",
    "generator_registry",
    "get_generator",
]
