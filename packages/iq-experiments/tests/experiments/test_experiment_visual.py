"""ExperimentVisual on synthetic frames: line/bars/scatter PNGs, aggregated frames, mean +/- std, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opsin.iq.experiments import ExperimentVisual

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def frame() -> pd.DataFrame:
    rows = []
    for mod, base in (("jpg10_modifier", 0.3), ("jpg50_modifier", 0.2), ("jpg90_modifier", 0.1)):
        for size in (8, 16):
            for rep in range(3):
                rows.append({"name": f"r{len(rows)}", "ds_modifier": mod, "min_size": size,
                             "val_rmse": base + size / 100 + rep * 0.01})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kind", ["lineplot", "bars", "scatter"])
def test_plot_kinds_write_png(tmp_path, frame, kind):
    out = tmp_path / "plots" / f"{kind}.png"
    ax = ExperimentVisual(frame, out).visualize(plot_kind=kind, title=kind)
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert ax.get_title() == kind
    assert ax.get_xlabel() == "ds_modifier"
    assert ax.get_ylabel() == "val_rmse"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["8", "16"]


def test_lineplot_draws_means_and_shades_spread(frame):
    ax = ExperimentVisual(frame).visualize(xvar="ds_modifier", yvar="val_rmse", legend_var="min_size")
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), [0.39, 0.29, 0.19])  # base + 0.08 + mean(0, .01, .02)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["jpg10_modifier", "jpg50_modifier", "jpg90_modifier"]
    assert len(ax.collections) == 2  # one shaded band per series (3 repetitions each)


def test_numeric_x_is_sorted_and_single_series(tmp_path):
    df = pd.DataFrame({"lr": [0.5, 0.1, 0.3], "rmse": [3.0, 1.0, 2.0]})
    ax = ExperimentVisual(df, tmp_path / "a.png").visualize(xvar="lr", yvar="rmse", legend_var=None)
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [0.1, 0.3, 0.5]
    assert list(line.get_ydata()) == [1.0, 2.0, 3.0]
    assert not ax.collections  # no repetitions, no band


def test_aggregated_frame_plots_and_adapt_agg(tmp_path, frame):
    agg = frame.groupby(["ds_modifier", "min_size"]).agg({"val_rmse": ["mean", "std"]})
    ax = ExperimentVisual(agg, tmp_path / "agg.png").visualize(legend_var="min_size")
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.47, 0.37, 0.27])
    mean_std = ExperimentVisual(agg, tmp_path / "ms.png").visualize(plot_kind="bars", plot_mean_std=True)
    assert len(mean_std.patches) == 2 * len(agg)
    assert (tmp_path / "ms.png").read_bytes()[:8] == PNG_MAGIC
    flat = ExperimentVisual(agg)._adapt_agg("val_rmse", only_mean=True)
    assert list(flat.columns) == ["ds_modifier", "min_size", "val_rmse"]
    np.testing.assert_allclose(flat["val_rmse"], agg[("val_rmse", "mean")])
    stacked = ExperimentVisual(agg)._adapt_agg("val_rmse")
    assert len(stacked) == 3 * len(agg)
    np.testing.assert_allclose(stacked["val_rmse"][: len(agg)], agg[("val_rmse", "mean")] - 0.01)


def test_errors_are_clear(frame):
    with pytest.raises(ValueError, match="needs an aggregated frame"):
        ExperimentVisual(frame).visualize(plot_mean_std=True)
    with pytest.raises(ValueError, match=r"columns \['nope'\] not in the data frame"):
        ExperimentVisual(frame).visualize(legend_var="nope")
    with pytest.raises(ValueError, match="unknown plot_kind"):
        ExperimentVisual(frame).visualize(plot_kind="pie3d")
