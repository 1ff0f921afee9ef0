"""VisionFit analysis helpers ([analysis] extra): parameter distributions, batch summaries and label videos.

Every plotting helper builds a :class:`matplotlib.figure.Figure` directly (no pyplot state, safe under the Agg
backend and in threads) and returns it; in a notebook a returned figure is shown inline. Job folders without labels
(the real sample batch has three) are summarised with NaN metrics and skipped in image grids instead of failing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opsin.synth.common.vis._deps import require_analysis

require_analysis(__name__)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from opsin.synth.common.vis.images import get_subdirectories, view_previews  # noqa: E402
from opsin.synth.visionfit._labels import LABEL_VIDEO_NAMES, render_label_videos  # noqa: E402

__all__ = [
    "LABEL_VIDEO_NAMES",
    "get_subdirectories",
    "summarize_batch_results_as_dataframe",
    "view_previews",
    "visualize_all_labels",
    "visualize_batch_results",
    "visualize_job_params",
]

_SUMMARY_FIRST = ("job_path", "job_id", "num_frames", "avg_percent_in_fov", "avg_percent_occlusion")


def _truncate(text: Any, size: int) -> str:
    value = str(text)
    return value if len(value) <= size else value[:size]


def _is_bool_series(values: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(values) or (
        values.dtype == object and len(values) > 0 and all(isinstance(v, bool | np.bool_) for v in values)
    )


def _plot_column(ax: Axes, df: pd.DataFrame, column: str, stratify_var: str | None, max_label: int) -> None:
    series = df[column]
    values = series.dropna()
    ax.set_title(_truncate(column, 40), fontsize=9)
    if values.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    as_text = values.astype(str)
    if as_text.nunique() <= 1:
        ax.pie([len(values)], labels=[_truncate(as_text.iloc[0], max_label)], autopct=lambda _: str(len(values)))
        return
    strata = None
    if stratify_var and stratify_var != column and stratify_var in df.columns:
        strata = df.loc[values.index, stratify_var].astype(str)
    numeric = pd.api.types.is_numeric_dtype(values) and not _is_bool_series(values)
    if numeric:
        bins = int(min(20, max(5, math.sqrt(len(values)))))
        if strata is None:
            ax.hist(values.astype(float), bins=bins)
        else:
            groups = sorted(strata.unique())
            ax.hist([values[strata == g].astype(float) for g in groups], bins=bins, stacked=True, label=groups)
            ax.legend(fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        return
    if strata is None:
        counts = as_text.value_counts().sort_index()
        ax.bar(range(len(counts)), counts.to_numpy())
        labels = list(counts.index)
    else:
        table = pd.crosstab(as_text, strata).sort_index()
        bottom = np.zeros(len(table))
        for group in table.columns:
            ax.bar(range(len(table)), table[group].to_numpy(), bottom=bottom, label=str(group))
            bottom += table[group].to_numpy()
        ax.legend(fontsize=7)
        labels = list(table.index)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([_truncate(label, max_label) for label in labels], rotation=45, ha="right", fontsize=7)


def _grid(
    df: pd.DataFrame,
    num_per_row: int,
    subplot_size: float,
    stratify_var: str | None,
    max_label: int,
    title: str,
) -> Figure:
    columns = [str(c) for c in df.columns]
    count = max(1, len(columns))
    cols = max(1, min(int(num_per_row), count))
    rows = -(-count // cols)
    inches = float(subplot_size) / 100.0
    height = inches * rows + 0.6
    fig = Figure(figsize=(inches * cols, height), dpi=100)
    # fixed spacing (a constrained layout costs seconds per draw with dozens of subplots)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.1 / rows, top=1 - 0.6 / height, wspace=0.35, hspace=0.75)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, column in zip(axes.flat, columns):
        _plot_column(ax, df, column, stratify_var, max_label)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_axis_off()
    fig.suptitle(title, y=1 - 0.15 / height)
    return fig


def visualize_job_params(
    job_params: Sequence[Mapping[str, Any]],
    num_per_row: int = 4,
    subplot_size: int = 300,
    stratify_var: str | None = None,
    output_path: str | os.PathLike[str] | None = None,
    max_xaxis_label_size: int = 7,
    plot_title: str = "Job Parameters",
) -> Figure:
    """Plot the distribution of every job parameter (``state`` excluded), one subplot per parameter.

    A constant column is a pie; numbers get a histogram; strings and bools get bar counts (stacked by
    ``stratify_var`` when given).

    Args:
        job_params: the job dicts.
        num_per_row: subplots per row.
        subplot_size: size of one subplot in pixels (at 100 dpi).
        stratify_var: parameter whose values split each bar/histogram into stacked parts.
        output_path: save the figure there (format from the suffix) when given.
        max_xaxis_label_size: tick labels are cut to this many characters.
        plot_title: the figure's title.

    Returns:
        The figure.
    """
    df = pd.DataFrame.from_records([dict(jp) for jp in job_params])
    df = df.drop(columns=["state"], errors="ignore")
    fig = _grid(df, num_per_row, subplot_size, stratify_var, max_xaxis_label_size, plot_title)
    if output_path is not None:
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(str(output_path))
    return fig


def _load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _person_category(categories: Sequence[Mapping[str, Any]]) -> Any:
    for category in categories:
        if category.get("name") == "person":
            return category.get("id")
    for category in categories:
        if category.get("keypoints"):
            return category.get("id")
    return None


def _label_stats(labels: Mapping[str, Any]) -> tuple[int, float, float]:
    person = _person_category(labels.get("categories") or [])
    fov: list[float] = []
    occlusion: list[float] = []
    if person is not None:
        for annotation in labels.get("annotations") or []:
            if annotation.get("category_id") != person:
                continue
            if annotation.get("percent_in_fov") is not None:
                fov.append(float(annotation["percent_in_fov"]))
            if annotation.get("percent_occlusion") is not None:
                occlusion.append(float(annotation["percent_occlusion"]))
    mean_fov = float(np.mean(fov)) if fov else math.nan
    mean_occlusion = float(np.mean(occlusion)) if occlusion else math.nan
    return len(labels.get("images") or []), mean_fov, mean_occlusion


def _coerce_numeric(df: pd.DataFrame) -> pd.DataFrame:
    for column in df.columns:
        series = df[column]
        if not (series.dtype == object or pd.api.types.is_string_dtype(series)):
            continue
        present = series.dropna()
        if present.empty or all(isinstance(v, bool | np.bool_) for v in present):
            continue
        try:
            df[column] = pd.to_numeric(series)
        except (TypeError, ValueError):
            continue
    return df


def summarize_batch_results_as_dataframe(batch_folder: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per job folder holding ``job.json``, sorted by ``job_id``.

    Columns: ``job_path``, ``job_id`` (folder name), ``num_frames`` (``len(images)`` of ``labels.json``, else
    ``timing.json``'s ``num_frames``, else NaN), ``avg_percent_in_fov`` and ``avg_percent_occlusion`` (means over the
    person category's annotations; NaN without labels), then every ``job.json`` parameter. Numeric-looking columns
    are converted to numbers; bools are kept.
    """
    rows: list[dict[str, Any]] = []
    for folder in map(Path, get_subdirectories(batch_folder)):
        job_file = folder / "job.json"
        if not job_file.is_file():
            continue
        job = _load_json(job_file)
        row: dict[str, Any] = {"job_path": str(folder), "job_id": folder.name}
        num_frames: float = math.nan
        fov = occlusion = math.nan
        if (folder / "labels.json").is_file():
            frames, fov, occlusion = _label_stats(_load_json(folder / "labels.json"))
            num_frames = frames
        elif (folder / "timing.json").is_file():
            timing = _load_json(folder / "timing.json")
            if isinstance(timing, Mapping) and timing.get("num_frames") is not None:
                num_frames = timing["num_frames"]
        row.update(num_frames=num_frames, avg_percent_in_fov=fov, avg_percent_occlusion=occlusion)
        params = job.get("params", {}) if isinstance(job, Mapping) else {}
        for key, value in params.items():
            if key not in row:
                row[key] = value
        rows.append(row)
    df = pd.DataFrame.from_records(rows, columns=None if rows else list(_SUMMARY_FIRST))
    if rows:
        df = df.sort_values("job_id", kind="stable").reset_index(drop=True)
    return _coerce_numeric(df)


def visualize_batch_results(
    batch_folder: str | os.PathLike[str],
    num_per_row: int = 4,
    subplot_size: int = 300,
    output_path: str | os.PathLike[str] | None = None,
    max_xaxis_label_size: int = 7,
    plot_title: str = "Batch Results",
) -> Figure:
    """Plot every column of :func:`summarize_batch_results_as_dataframe` (minus paths, ids and ``state``).

    Every column gets a subplot (an all-NaN column says "no data").

    Returns:
        The figure.
    """
    df = summarize_batch_results_as_dataframe(batch_folder)
    df = df.drop(columns=["job_path", "job_id", "state"], errors="ignore")
    fig = _grid(df, num_per_row, subplot_size, None, max_xaxis_label_size, plot_title)
    if output_path is not None:
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(str(output_path))
    return fig


def visualize_all_labels(video_job_folder: str | os.PathLike[str]) -> str:
    """Render the six label videos of a video job and their 2x3 grid; returns the grid's path.

    Writes ``<job>/output/{bounding_box,skeleton,cuboids,3D_keypoints,segmentation,timeseries}.mp4`` (one frame per
    labelled frame, at the job's ``frame_rate``) and ``<job>/output/all_labels.mp4``.

    Raises:
        FileNotFoundError: the folder has no ``video.mp4`` (a preview) or no ``labels.json``.
    """
    return render_label_videos(Path(video_job_folder))
