"""Course plots of the Results page as SVG (matplotlib through the reliability plots' helpers;
pure: frames in, text out)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rater.reliability.plots import figure_svg, message_svg, new_figure
from rater.results.models import GROUP, TIME


def course_table(data: pd.DataFrame, code: str) -> pd.DataFrame:
    """Per session number: n, mean, SD and the 95 % interval of the mean (normal)."""
    values = data[[TIME, code]].astype({code: "float64"}).dropna()
    table = values.groupby(TIME)[code].agg(n="size", mean="mean", sd="std").reset_index()
    half = 1.96 * table["sd"] / np.sqrt(table["n"])
    table["ci_low"], table["ci_high"] = table["mean"] - half, table["mean"] + half
    return table


def course_svg(data: pd.DataFrame, code: str, label: str) -> str:
    """Two panels: each patient's course over the session numbers (broken where a session has
    no value), and the average course (mean per session number with its 95 % interval)."""
    values = data[[GROUP, TIME, code]].astype({code: "float64"}).dropna()
    if values.empty:
        return message_svg(f"{label}: no sessions with a value yet.")
    fig = new_figure(8.0, 3.2)
    per_patient, average = fig.subplots(1, 2, sharey=True)
    for _, rows in values.groupby(GROUP):
        course = rows.set_index(TIME)[code].sort_index()
        span = np.arange(course.index.min(), course.index.max() + 1)
        course = course.reindex(span)  # a missing session breaks the line: no bridged gaps
        per_patient.plot(course.index, course.to_numpy(), color="#1f5fa8", alpha=0.35, lw=0.8,
                         marker="o", ms=2)  # fmt: skip
    per_patient.set_title(f"{label}: per patient ({values[GROUP].nunique()})")
    table = course_table(values, code)
    err = np.vstack([table["mean"] - table["ci_low"], table["ci_high"] - table["mean"]])
    average.errorbar(table[TIME], table["mean"], yerr=np.nan_to_num(err), color="#1d2430",
                     marker="o", ms=4, capsize=3, lw=1.2)  # fmt: skip
    average.set_title(f"{label}: mean, 95 % interval")
    for ax in (per_patient, average):
        ax.set_xlabel("session number")
        ax.set_xticks(sorted(values[TIME].unique().astype(int)))
    per_patient.set_ylabel(label)
    return figure_svg(fig)
