"""Example training scripts shipped with the package (run as scripts, never imported by the library)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["example_script_path"]


def example_script_path(name: str = "objectness") -> str:
    """Absolute path of a bundled example training script.

    Args:
        name: ``"objectness"``: a numpy/OpenCV patch-objectness detector trained on a COCO dataset.

    Raises:
        FileNotFoundError: no bundled script of that name.
    """
    path = Path(__file__).resolve().parent / f"train_{name}.py"
    if not path.is_file():
        known = sorted(p.stem.removeprefix("train_") for p in Path(__file__).parent.glob("train_*.py"))
        msg = f"no bundled example script {name!r} (known: {known})"
        raise FileNotFoundError(msg)
    return str(path)
