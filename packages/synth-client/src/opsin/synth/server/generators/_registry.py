"""Generator registry: the built-in generators plus plugins from the ``opsin.synth.generators`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from opsin.core import get_logger
from opsin.synth.errors import UnknownGeneratorError
from opsin.synth.server.generators._base import Generator

__all__ = ["ENTRY_POINT_GROUP", "available_generators", "builtin_generators", "get_generator"]

ENTRY_POINT_GROUP = "opsin.synth.generators"

_log = get_logger("opsin.synth.generators")


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


def available_generators() -> list[Generator]:
    """Return the built-in generators followed by the entry-point plugins (sorted by entry-point name)."""
    builtins = builtin_generators()
    return builtins + _plugin_generators({g.name for g in builtins})


def get_generator(name: str) -> Generator:
    """Return the generator registered as ``name``.

    Raises:
        UnknownGeneratorError: no generator has that name (the message lists the available ones).
    """
    builtins = builtin_generators()
    for generator in builtins:  # no entry-point scan for the common case
        if generator.name == name:
            return generator
    generators = builtins + _plugin_generators({g.name for g in builtins})
    for generator in generators:
        if generator.name == name:
            return generator
    names = ", ".join(g.name for g in generators)
    msg = f"unknown generator {name!r}; available generators: {names}"
    raise UnknownGeneratorError(msg)
