"""Tests of lesionres.analysis.tables: Markdown, LaTeX, atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lesionres.analysis import (
    latex_table,
    markdown_table,
    write_table,
)


def test_markdown_and_latex_tables_escape_and_format():
    df = pd.DataFrame(
        {
            "condition": ["a|b", "x_1 & 50%"],
            "n": [3, 4],
            "p_value": [1e-20, 0.0312],
            "mean": [0.61234, np.nan],
        }
    )
    md = markdown_table(df)
    assert "a\\|b" in md and "<1e-16" in md and "0.0312" in md and "0.6123" in md
    assert md.splitlines()[1].startswith("|---")
    tex = latex_table(df, caption="Dice & co", label="tab:x")
    assert r"x\_1 \& 50\%" in tex and r"\toprule" in tex and r"\caption{Dice \& co}" in tex


def test_write_table_is_atomic(tmp_path):
    df = pd.DataFrame({"condition": ["a"], "dice": [0.5]})
    written = write_table(df, tmp_path, "t")
    assert sorted(p.name for p in written) == ["t.csv", "t.md", "t.tex"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), df)
