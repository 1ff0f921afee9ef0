"""Generator registry: the built-in generators plus plugins from the ``opsin.synth.generators`` entry-point group.

This module holds the one cache of generators of a process (service routes and worker processes alike): the
entry points are scanned on first use, and scanned again only when a name is missing (a plugin installed since) or
when :func:`available_generators` is asked for the full list.
"""

from __future__ import annotations

import threading
import time
from importlib.metadata import entry_points

from opsin.core import get_logger
from opsin.synth.errors import UnknownGeneratorError
from opsin.synth.server.generators._base import Generator

__all__ = ["ENTRY_POINT_GROUP", "available_generators", "builtin_generators", "generator_registry", "get_generator"]

ENTRY_POINT_GROUP = "opsin.synth.generators"

_log = get_logger("opsin.synth.generators")
_lock = threading.Lock()
_cache: dict[str, Generator] | None = None
_last_scan = 0.0
_RESCAN_AFTER_S = 5.0  # a stream of unknown names must not turn into a stream of entry-point scans


def builtin_generators() -> list[Generator]:
    """Return fresh instances of the generators shipped with the package."""
    from opsin.synth.server.generators.shapes import ShapesGenerator
    from opsin.synth.server.generators.testgen import TestGenerator
    from opsin.synth.server.generators.visionfit import VisionFitFlagshipGenerator, VisionFitGenerator

    return [VisionFitGenerator(), VisionFitFlagshipGenerator(), ShapesGenerator(), TestGenerator()]


def _plugin_generators(taken: set[str]) -> list[Generator]:
    found: list[Generator] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
            generator = obj() if isinstance(obj, type) else obj
        except Exception:
            _log.exception("generator plugin %r (%s) failed to load; skipped", ep.name, ep.value)
            continue
        if not isinstance(generator, Generator):
            _log.warning("entry point %r (%s) is not an opsin Generator; skipped", ep.name, ep.value)
            continue
        if generator.name in taken:
            _log.warning(
                "generator plugin %r (%s) reuses the taken name %r; skipped", ep.name, ep.value, generator.name
            )
            continue
        taken.add(generator.name)
        found.append(generator)
    return found


def _scan() -> dict[str, Generator]:
    global _cache, _last_scan
    builtins = builtin_generators()
    found = builtins + _plugin_generators({g.name for g in builtins})
    registry = {generator.name: generator for generator in found}
    with _lock:
        _cache, _last_scan = registry, time.monotonic()
    return registry


def generator_registry() -> dict[str, Generator]:
    """Name -> generator for every registered generator, built-ins first (cached per process; a copy)."""
    with _lock:
        cached = _cache
    return dict(cached if cached is not None else _scan())


def available_generators() -> list[Generator]:
    """The built-in generators followed by the entry-point plugins (sorted by entry-point name), scanned afresh."""
    return list(_scan().values())


def get_generator(name: str) -> Generator:
    """Return the generator registered as ``name`` (from the cache; a missing name rescans the entry points once).

    Raises:
        UnknownGeneratorError: no generator has that name (the message lists the available ones).
    """
    registry = generator_registry()
    found = registry.get(name)
    if found is None:
        if time.monotonic() - _last_scan > _RESCAN_AFTER_S:
            registry = _scan()
        found = registry.get(name)
        if found is None:
            msg = f"unknown generator {name[:200]!r}; available generators: {', '.join(registry)}"
            raise UnknownGeneratorError(msg)
    return found
