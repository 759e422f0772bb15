"""Tests of lesionres.analysis.figures (and the plotting helpers they share)."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_tables import paired_table, two_empty_predictions
from matplotlib.figure import Figure

from lesionres.analysis import (
    plot_distributions,
    plot_metric_bars,
    plot_resolution_curve,
    plot_stratified,
    plot_volume_agreement,
    stratify,
    synthetic_results,
)
from lesionres.errors import LesionresError


def test_figures_write_png_and_pdf(tmp_path):
    df = synthetic_results(n_subjects=15, n_other_cohort=10)
    for name, fig in {
        "bars": plot_metric_bars(df, n_boot=50, out=tmp_path / "bars"),
        "bars_sd": plot_metric_bars(df, error="sd", out=tmp_path / "bars_sd"),
        "dist": plot_distributions(df, "dice", out=tmp_path / "dist"),
        "res": plot_resolution_curve(df, n_boot=50, out=tmp_path / "res"),
        "vol": plot_volume_agreement(df, out=tmp_path / "vol"),
        "strat": plot_stratified(stratify(df, by="gt_lesions"), out=tmp_path / "strat"),
    }.items():
        assert isinstance(fig, Figure), name
        for ext in ("png", "pdf"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 1000
    assert "bootstrap CI" in plot_metric_bars(df, n_boot=10).axes[0].get_ylabel()
    assert "SD" in plot_metric_bars(df, error="sd").axes[0].get_ylabel()


def test_plots_refuse_to_pool_models():
    df = pd.concat([paired_table(8).assign(model="a"), paired_table(8).assign(model="b")])
    with pytest.raises(LesionresError, match="model="):
        plot_distributions(df, "dice")
    assert isinstance(plot_distributions(df, "dice", model="b"), Figure)


def test_bar_chart_marks_means_over_fewer_scans():
    df = two_empty_predictions()
    fig = plot_metric_bars(df, model="b", n_boot=50)
    assert [t.get_text() for t in fig.axes[0].texts] == ["n=7/9"]  # precision under linear_x4
