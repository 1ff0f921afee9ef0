"""Image helpers ([analysis] extra): list job folders of a batch and show their previews in a grid."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opsin.synth.common.vis._deps import require_analysis

require_analysis(__name__)

import matplotlib.image as mpimg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["get_subdirectories", "view_previews"]

_PREVIEW = "video_preview.png"


def get_subdirectories(base_path: str | os.PathLike[str]) -> list[str]:
    """Immediate sub-folders of ``base_path`` as full paths, sorted, hidden ones (``.name``) skipped."""
    base = Path(base_path)
    return sorted(str(p) for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def view_previews(folder_paths: Iterable[Any], num_cols: int = 5, subplot_size: float = 3.0) -> Figure:
    """Show each folder's ``video_preview.png`` in a grid, titled with the folder name's first 7 characters + "...".

    Folders without a preview (label-less jobs) are skipped.

    Args:
        folder_paths: job folders (any iterable, NumPy arrays included).
        num_cols: images per row.
        subplot_size: inches per image.

    Returns:
        The figure (also displayed inline in a notebook when returned from a cell).
    """
    previews = [Path(str(p)) / _PREVIEW for p in list(folder_paths)]
    previews = [p for p in previews if p.is_file()]
    cols = max(1, min(num_cols, len(previews)))
    rows = max(1, -(-len(previews) // cols))
    fig = Figure(figsize=(subplot_size * cols, subplot_size * rows))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92, wspace=0.05, hspace=0.2)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, preview in zip(axes.flat, previews):
        ax.imshow(mpimg.imread(str(preview)))
        ax.set_title(f"{preview.parent.name[:7]}...", fontsize=9)
    if not previews:
        axes[0, 0].text(0.5, 0.5, "no previews", ha="center", va="center")
    return fig
