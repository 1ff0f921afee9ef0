"""One progress-bar helper for every opsin package.

tqdm rather than rich: it is already a dependency of the scientific stack we sit on (mlflow, Lightning), it has a
notebook front end through ``tqdm.auto``, and it degrades to nothing cleanly, which matters for library code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress", "progress_enabled"]

T = TypeVar("T")


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    get_ipython = getattr(shell, "get_ipython", None)
    instance = get_ipython() if callable(get_ipython) else None
    return instance is not None and type(instance).__name__ == "ZMQInteractiveShell"


def progress_enabled() -> bool:
    """Tell whether progress bars would be shown now.

    They are shown on an interactive terminal (standard error is a TTY) or in a Jupyter notebook, and never when
    the environment variable ``OPSIN_NO_PROGRESS`` is ``1``/``true``/``yes``.

    Returns:
        True when a bar would be drawn.
    """
    if os.environ.get("OPSIN_NO_PROGRESS", "").strip().lower() in {"1", "true", "yes"}:
        return False
    if _in_notebook():
        return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def progress(
    iterable: Iterable[T] | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    **kwargs: Any,
) -> tqdm[T]:
    """Wrap ``iterable`` in a progress bar, or make a bar to advance by hand.

    The bar is disabled (and costs almost nothing) when :func:`progress_enabled` says so, so library code can call
    this unconditionally. Iterate the result, or call ``.update(n)`` and ``.close()`` (or use it as a context
    manager) when there is no iterable.

    Args:
        iterable: items to iterate; ``None`` for a manual bar.
        total: number of items, when ``len(iterable)`` is not available.
        desc: label shown before the bar.
        unit: name of one item.
        **kwargs: further tqdm options (``leave``, ``position``...); ``disable`` overrides the automatic choice.

    Returns:
        The tqdm object.
    """
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, total=total, desc=desc, unit=unit, **kwargs)
