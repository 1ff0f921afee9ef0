"""``ExperimentVisual``: plots of an experiment's data frame (line, bars, scatter), saved as PNG."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from opsin.core import get_logger

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["ExperimentVisual"]

logger = get_logger(__name__)

_PANDAS_KINDS = {"lineplot": "line", "bars": "bar"}


def _is_aggregated(df: pd.DataFrame) -> bool:
    return isinstance(df.columns, pd.MultiIndex)


def _ordered(values: pd.Series) -> list[Any]:
    """Unique values: sorted when numeric, else in order of first appearance."""
    uniq = list(pd.unique(values))
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in uniq):
        return sorted(uniq)
    return uniq


class ExperimentVisual:
    """Plots from a data frame made by :meth:`ExperimentInfo.get_df`.

    Args:
        df: a flat frame (one row per run) or an aggregated one (``(yvar, "mean"|"std")`` columns, index levels
            ``xvar``[, ``legend_var``]).
        out_fullfn: save every plot to this PNG path (folders created).
    """

    def __init__(self, df: pd.DataFrame, out_fullfn: str | os.PathLike[str] | None = None) -> None:
        self.df = df
        self.out_fullfn = os.fspath(out_fullfn) if out_fullfn else None

    # -- data shaping --------------------------------------------------------------------------------------------
    def _adapt_agg(self, var: str = "val_rmse", only_mean: bool = False) -> pd.DataFrame:
        """Flatten an aggregated frame: index levels as columns plus ``var`` = the means.

        With ``only_mean=False`` the frame is three stacked copies with ``var`` = mean - std, mean, mean + std
        (so that a plain line plot's mean and spread show the aggregate).
        """
        if not _is_aggregated(self.df):
            msg = "_adapt_agg needs an aggregated frame (columns (var, 'mean'|'std'))"
            raise ValueError(msg)
        mean = self.df[(var, "mean")]
        std = self.df[(var, "std")].fillna(0.0)
        base = self.df.index.to_frame(index=False)
        if only_mean:
            return base.assign(**{var: mean.to_numpy()})
        parts = [base.assign(**{var: (mean + k * std).to_numpy()}) for k in (-1, 0, 1)]
        return pd.concat(parts, ignore_index=True)

    def _stats(self, xvar: str, yvar: str, legend_var: str | None) -> list[tuple[Any, list[Any], Any, Any, Any]]:
        """Per legend value: ``(label, x values, means, stds, counts)``."""
        df = self.df
        if _is_aggregated(df):
            flat = df.index.to_frame(index=False)
            flat["_mean"] = df[(yvar, "mean")].to_numpy()
            flat["_std"] = df[(yvar, "std")].to_numpy() if (yvar, "std") in df.columns else np.nan
            flat["_n"] = 2  # aggregated: std shown where available
        else:
            self._require(df, [xvar, yvar] + ([legend_var] if legend_var else []))
            keys = [xvar] + ([legend_var] if legend_var else [])
            values = pd.to_numeric(df[yvar], errors="coerce")
            g = values.groupby([df[k] for k in keys], sort=False)
            flat = pd.DataFrame({"_mean": g.mean(), "_std": g.std(), "_n": g.count()}).reset_index()
        self._require(flat, [xvar] + ([legend_var] if legend_var else []))
        xs_all = _ordered(flat[xvar])
        out = []
        labels = _ordered(flat[legend_var]) if legend_var else [None]
        for label in labels:
            sub = flat if label is None else flat[flat[legend_var] == label]
            sub = sub.set_index(xvar).reindex([x for x in xs_all if x in set(sub[xvar])])
            out.append(
                (
                    label,
                    list(sub.index),
                    sub["_mean"].to_numpy(float),
                    sub["_std"].to_numpy(float),
                    sub["_n"].to_numpy(float),
                )
            )
        return out

    @staticmethod
    def _require(df: pd.DataFrame, cols: list[str]) -> None:
        missing = [c for c in cols if c not in df.columns]
        if missing:
            msg = f"columns {missing} not in the data frame (has {list(map(str, df.columns))})"
            raise ValueError(msg)

    # -- plotting ------------------------------------------------------------------------------------------------
    def visualize(
        self,
        plot_kind: str = "lineplot",
        xvar: str = "ds_modifier",
        yvar: str = "val_rmse",
        legend_var: str | None = "min_size",
        title: str | None = None,
        plot_mean_std: bool = False,
    ) -> Axes:
        """Draw one plot on a new figure (saved to ``out_fullfn`` when set).

        Args:
            plot_kind: ``"lineplot"`` (mean line per legend value, shaded mean +/- std where repeated), ``"bars"``
                (grouped bars of the mean), ``"scatter"`` (points coloured by legend value); with
                ``plot_mean_std`` any pandas plot kind.
            xvar: the x column (or index level of an aggregated frame).
            yvar: the y column (or the metric of an aggregated frame).
            legend_var: one series per value of this column; ``None`` = one series.
            title: the plot title.
            plot_mean_std: plot an aggregated frame's mean and std columns with pandas.

        Returns:
            The matplotlib ``Axes`` (its ``.figure`` is the figure).

        Raises:
            ValueError: unknown plot kind, missing columns, or ``plot_mean_std`` on a flat frame.
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.add_subplot()
        if plot_mean_std:
            if not _is_aggregated(self.df):
                msg = "plot_mean_std=True needs an aggregated frame (get_df(..., grouped=[...]))"
                raise ValueError(msg)
            self.df[yvar].plot(kind=_PANDAS_KINDS.get(plot_kind, plot_kind), ax=ax)
        elif plot_kind == "lineplot":
            self._line(ax, xvar, yvar, legend_var)
        elif plot_kind == "bars":
            self._bars(ax, xvar, yvar, legend_var)
        elif plot_kind == "scatter":
            self._scatter(ax, xvar, yvar, legend_var)
        else:
            msg = f"unknown plot_kind {plot_kind!r}: use 'lineplot', 'bars' or 'scatter'"
            raise ValueError(msg)
        ax.set_xlabel(xvar)
        ax.set_ylabel(yvar)
        if title:
            ax.set_title(title)
        if self.out_fullfn:
            folder = os.path.dirname(os.path.abspath(self.out_fullfn))
            os.makedirs(folder, exist_ok=True)
            fig.savefig(self.out_fullfn, dpi=100)
            logger.info("saved plot %s", self.out_fullfn)
        return ax

    def _x_positions(self, series: list[tuple[Any, list[Any], Any, Any, Any]]) -> tuple[dict[Any, float], bool]:
        xs: list[Any] = []
        for _, x, *_ in series:
            xs.extend(v for v in x if v not in xs)
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in xs)
        if numeric:
            return {v: float(v) for v in xs}, True
        return {v: float(i) for i, v in enumerate(xs)}, False

    def _label(self, legend_var: str | None, label: Any) -> str:
        return yvar_label(legend_var, label)

    def _line(self, ax: Axes, xvar: str, yvar: str, legend_var: str | None) -> None:
        series = self._stats(xvar, yvar, legend_var)
        pos, numeric = self._x_positions(series)
        for label, x, mean, std, n in series:
            px = np.array([pos[v] for v in x])
            ax.plot(px, mean, marker="o", label=self._label(legend_var, label))
            spread = np.where((n > 1) & np.isfinite(std), std, np.nan)
            if np.isfinite(spread).any():
                ax.fill_between(px, mean - np.nan_to_num(spread), mean + np.nan_to_num(spread), alpha=0.2)
        self._finish_axes(ax, pos, numeric, legend_var)

    def _bars(self, ax: Axes, xvar: str, yvar: str, legend_var: str | None) -> None:
        series = self._stats(xvar, yvar, legend_var)
        pos, _ = self._x_positions(series)
        order = {v: i for i, v in enumerate(pos)}
        width = 0.8 / max(1, len(series))
        for k, (label, x, mean, _std, _n) in enumerate(series):
            px = np.array([order[v] for v in x], dtype=float) - 0.4 + width * (k + 0.5)
            ax.bar(px, mean, width=width, label=self._label(legend_var, label))
        ax.set_xticks(range(len(order)), [str(v) for v in order], rotation=30, ha="right")
        if legend_var:
            ax.legend(title=legend_var)

    def _scatter(self, ax: Axes, xvar: str, yvar: str, legend_var: str | None) -> None:
        df = self.df
        if _is_aggregated(df):
            series = self._stats(xvar, yvar, legend_var)
            pos, numeric = self._x_positions(series)
            for label, x, mean, _std, _n in series:
                ax.scatter([pos[v] for v in x], mean, label=self._label(legend_var, label))
            self._finish_axes(ax, pos, numeric, legend_var)
            return
        self._require(df, [xvar, yvar] + ([legend_var] if legend_var else []))
        labels = _ordered(df[legend_var]) if legend_var else [None]
        xs = _ordered(df[xvar])
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in xs)
        pos = {v: (float(v) if numeric else float(i)) for i, v in enumerate(xs)}
        for label in labels:
            sub = df if label is None else df[df[legend_var] == label]
            y = pd.to_numeric(sub[yvar], errors="coerce")
            ax.scatter([pos[v] for v in sub[xvar]], y, label=self._label(legend_var, label))
        self._finish_axes(ax, pos, numeric, legend_var)

    @staticmethod
    def _finish_axes(ax: Axes, pos: dict[Any, float], numeric: bool, legend_var: str | None) -> None:
        if not numeric:
            ax.set_xticks(list(pos.values()), [str(v) for v in pos], rotation=30, ha="right")
        if legend_var:
            ax.legend(title=legend_var)


def yvar_label(legend_var: str | None, label: Any) -> str:
    """Legend text of one series."""
    return "all runs" if legend_var is None else str(label)
