"""Import guard of the ``[analysis]`` extra."""

from __future__ import annotations

__all__ = ["ANALYSIS_HINT", "require_analysis"]

ANALYSIS_HINT = "pip install 'opsin-synth-client[analysis]'"


def require_analysis(module: str) -> None:
    """Raise ``ImportError`` naming the ``[analysis]`` extra when one of its packages is missing.

    Args:
        module: the module that needs the extra (named in the message).
    """
    missing = []
    for name in ("numpy", "pandas", "matplotlib", "cv2"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        msg = f"{module} needs the [analysis] extra ({', '.join(missing)} missing): {ANALYSIS_HINT}"
        raise ImportError(msg)
