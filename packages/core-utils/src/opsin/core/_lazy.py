"""Lazy re-exports for package ``__init__`` modules, so importing a package stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    module_name: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build a module's ``__getattr__`` and ``__dir__`` that import public names on first use (PEP 562).

    Each name is imported from its module the first time it is read and then cached in the module's namespace,
    so later reads cost nothing::

        __getattr__, __dir__ = lazy_exports(__name__, {"Session": "opsin.synth.session"}, globals())

    Args:
        module_name: the package's ``__name__`` (used in error messages).
        where: public name -> module that defines it.
        namespace: the package's ``globals()``.

    Returns:
        The ``__getattr__`` and ``__dir__`` functions to assign at module level.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - it is the module's __getattr__
        module = where.get(name)
        if module is None:
            msg = f"module {module_name!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 - it is the module's __dir__
        return sorted(set(namespace) | set(namespace.get("__all__", ())) | set(where))

    return __getattr__, __dir__
