"""Reliability plots as SVG strings (matplotlib, Agg; pure: frames in, text out).

* :func:`heatmap_svg` — rater x rater matrix of the pairs' ICC(A,2) for one measure;
* :func:`bland_altman_svg` — difference against mean of one rater pair for one measure, with
  the mean difference and the 95 % limits of agreement;
* :func:`drift_svg` — each rater's mean signed difference from their partners by month (or by
  blocks of sessions, or by batch of released work), with the threshold band;
  :func:`drift_table` gives the numbers.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, safe in threads).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from rater.formatting import format_number
from rater.reliability.results import MIN_SESSIONS, Estimate, PairResult

DRIFT_THRESHOLD = 0.5  # score points: a rater's mean signed difference beyond this is flagged
DRIFT_MIN_N = 3  # sessions in a period before it can be flagged
BLOCK_SIZE = 10  # sessions per block when drift is shown by blocks
DRIFT_BY = ("month", "block", "batch")  # the periods drift can be read by
NO_BATCH = "no batch"  # the period of work released without a batch (never held)
DRIFT_AXIS = {"month": "month of submission", "block": "block of sessions", "batch": "batch"}
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: small, selectable, accessible
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "rater",
}


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def message_svg(message: str, width: float = 5.0, height: float = 1.2) -> str:
    """A figure holding only ``message``: what a plot without data shows instead."""
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return _svg(fig)


def heatmap_svg(
    pairs: Sequence[PairResult],
    raters: Sequence[str],
    title: str,
    no_pairs: str = "No rater pairs yet.",
) -> str:
    """Rater x rater ICC(A,2) of one measure; cells without enough data are blank, marked 'n<5'.

    Without a pair of this measure the figure is ``no_pairs`` (the reason), not an empty grid.
    """
    raters = list(raters)
    if len(raters) < 2 or not pairs:
        return message_svg(no_pairs)
    index = {r: i for i, r in enumerate(raters)}
    k = len(raters)
    # Lower triangle only (each pair once): row = the later rater, column = the earlier one;
    # the first rater has no row and the last no column.
    values = np.full((k - 1, k - 1), np.nan)
    labels = [["" for _ in range(k - 1)] for _ in range(k - 1)]
    for p in pairs:
        if p.rater_1 not in index or p.rater_2 not in index:
            continue
        i, j = sorted((index[p.rater_1], index[p.rater_2]))
        result = p.coefficients["ICC(A,2)"]
        shown = f"{format_number(result.value)}\n" if isinstance(result, Estimate) else ""
        labels[j - 1][i] = f"{shown}n={p.n}"
        if isinstance(result, Estimate):
            values[j - 1, i] = result.value
    cell = 0.75  # inches: room for two lines of 9-point text
    fig = _figure(1.8 + cell * (k - 1) + 1.2, 1.6 + cell * (k - 1))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#f2f2f2")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=1)
    for row in range(k - 1):
        for col in range(k - 1):
            if labels[row][col]:
                value = values[row, col]
                dark = not math.isnan(value) and (value < 0.2 or value > 0.85)
                ax.text(col, row, labels[row][col], ha="center", va="center", fontsize=9,
                        color="white" if dark else "#1d2430")  # fmt: skip
    long_names = max(len(r) for r in raters) > 6
    rotation, align = (30, "right") if long_names else (0, "center")
    ax.set_xticks(range(k - 1), raters[:-1], rotation=rotation, ha=align)
    ax.set_yticks(range(k - 1), raters[1:])
    ax.tick_params(labelsize=9, length=0)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="ICC(A,2)")
    ax.set_xlabel(f"grey: no pair, or fewer than {MIN_SESSIONS} shared sessions", fontsize=8)
    return _svg(fig)


Limits = tuple[tuple[float, float], tuple[float, float]]


def bland_altman_limits(paired: pd.DataFrame, min_n: int = MIN_SESSIONS) -> Limits | None:
    """One (x, y) scale for the Bland–Altman plots of every pair of a measure with ``min_n``+
    shared sessions: every point and every pair's limits of agreement fit (None: no pair)."""
    groups = paired.groupby(["rater_1", "rater_2"])
    x_low = y_low = math.inf
    x_high = y_high = -math.inf
    for _, data in groups:
        if len(data) < min_n:
            continue
        a, b = data["value_1"].to_numpy(float), data["value_2"].to_numpy(float)
        mean, diff = (a + b) / 2, a - b
        spread = 1.96 * diff.std(ddof=1)
        x_low, x_high = min(x_low, mean.min()), max(x_high, mean.max())
        y_low = min(y_low, diff.min(), diff.mean() - spread)
        y_high = max(y_high, diff.max(), diff.mean() + spread)
    if x_low == math.inf:
        return None
    x_pad, y_pad = max(0.1, 0.05 * (x_high - x_low)), max(0.1, 0.05 * (y_high - y_low))
    y_edge = max(abs(y_low), abs(y_high)) + y_pad  # symmetric around 0: signs read alike
    return (float(x_low - x_pad), float(x_high + x_pad)), (float(-y_edge), float(y_edge))


def bland_altman_svg(
    paired: pd.DataFrame,
    rater_1: str,
    rater_2: str,
    title: str,
    limits: Limits | None = None,
    min_n: int = 2,
) -> str:
    """Bland–Altman plot of one pair and measure: ``paired`` rows have value_1, value_2.

    ``limits`` (from :func:`bland_altman_limits`) puts every pair's plot on one scale; a pair
    with fewer than ``min_n`` shared sessions gets a message instead of a plot."""
    data = paired[(paired["rater_1"] == rater_1) & (paired["rater_2"] == rater_2)]
    if len(data) < max(2, min_n):
        return message_svg(f"{rater_1} and {rater_2}: fewer than {max(2, min_n)} shared sessions.")
    a, b = data["value_1"].to_numpy(float), data["value_2"].to_numpy(float)
    mean, diff = (a + b) / 2, a - b
    bias, sd = diff.mean(), diff.std(ddof=1)
    fig = _figure(4.6, 3.6)
    ax = fig.add_subplot()
    jitter = np.random.default_rng(0).uniform(-0.04, 0.04, (2, len(diff)))
    ax.scatter(mean + jitter[0], diff + jitter[1], s=14, alpha=0.6, color="#1f5fa8")
    ax.axhline(
        bias, color="#1d2430", lw=1, label=f"mean difference {format_number(bias, signed=True)}"
    )
    for limit in (bias - 1.96 * sd, bias + 1.96 * sd):
        ax.axhline(limit, color="#b42318", lw=1, ls="--")
    ax.axhline(0, color="#999999", lw=0.6)
    ax.plot([], [], color="#b42318", ls="--", label=f"95 % limits ±{format_number(1.96 * sd)}")
    if limits is not None:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    ax.set_xlabel(f"mean of {rater_1} and {rater_2}")
    ax.set_ylabel(f"{rater_1} − {rater_2}")
    ax.set_title(f"{title}: {rater_1} vs {rater_2} (n = {len(diff)})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)
    return _svg(fig)


def drift_table(paired: pd.DataFrame, by: str = "month") -> pd.DataFrame:
    """Each rater's mean signed difference from their partners per period.

    Every double-coded session counts for both raters (rater minus partner), at the time the
    rater submitted it.  ``by`` is ``"month"`` (YYYY-MM of submission), ``"block"``
    (consecutive blocks of ``BLOCK_SIZE`` sessions in the rater's submission order) or
    ``"batch"`` (the batch that released the session to that rater: ``batch_1`` /
    ``batch_2``; "batch 1", "batch 2", ..., and ``NO_BATCH`` for work never held).
    Columns: rater, period, n, mean_difference, flagged (|mean| > ``DRIFT_THRESHOLD`` and
    n >= ``DRIFT_MIN_N``); rows by rater, then period in time order (batches by number,
    ``NO_BATCH`` first).
    """
    if by not in DRIFT_BY:
        raise ValueError(f"by must be 'month', 'block' or 'batch', got {by!r}")
    columns = ["rater", "period", "n", "mean_difference", "flagged"]
    if paired.empty:
        return pd.DataFrame(columns=columns)
    if by == "batch" and "batch_1" not in paired:
        paired = paired.assign(batch_1=pd.NA, batch_2=pd.NA)
    keep = ["rater", "at", "diff", *(["batch"] if by == "batch" else [])]
    one = paired.rename(
        columns={"rater_1": "rater", "submitted_at_1": "at", "batch_1": "batch"}
    ).assign(diff=paired["value_1"] - paired["value_2"])
    two = paired.rename(
        columns={"rater_2": "rater", "submitted_at_2": "at", "batch_2": "batch"}
    ).assign(diff=paired["value_2"] - paired["value_1"])
    both = pd.concat([one[keep], two[keep]])
    both = both.sort_values(["rater", "at"], kind="mergesort")
    if by == "month":
        both["period"] = pd.to_datetime(both["at"]).dt.strftime("%Y-%m").fillna("unknown")
    elif by == "block":
        rank = both.groupby("rater").cumcount()
        start = rank // BLOCK_SIZE * BLOCK_SIZE
        both["period"] = [f"{s + 1:03d}–{s + BLOCK_SIZE:03d}" for s in start]
    else:
        both["period"] = [batch_label(b) for b in both["batch"]]
    table = both.groupby(["rater", "period"])["diff"].agg(n="size", mean_difference="mean")
    table = table.reset_index()
    table["flagged"] = (table["mean_difference"].abs() > DRIFT_THRESHOLD) & (
        table["n"] >= DRIFT_MIN_N
    )
    order = {p: i for i, p in enumerate(period_order(table["period"], by))}
    table = table.sort_values(
        ["rater", "period"], key=lambda c: c.map(order) if c.name == "period" else c
    )
    return table[columns].reset_index(drop=True)


def batch_label(number: Any) -> str:
    """'batch 3' for batch number 3; ``NO_BATCH`` for a missing number."""
    return NO_BATCH if pd.isna(number) else f"batch {int(number)}"


def period_order(periods: Any, by: str) -> list[str]:
    """The distinct periods in time order: months and blocks as text sorts them, batches by
    their number (``NO_BATCH`` first: that work went out before any batch)."""
    distinct = set(periods)
    if by != "batch":
        return sorted(distinct)
    return sorted(distinct, key=lambda p: -1 if p == NO_BATCH else int(p.split()[-1]))


def drift_svg(
    paired: pd.DataFrame,
    title: str,
    by: str = "month",
    no_pairs: str = "No double-coded sessions yet.",
) -> str:
    """Lines per rater of the mean signed difference from partners; flagged points in red.

    Without a double-coded session of this measure the figure is ``no_pairs`` (the reason).
    """
    table = drift_table(paired, by)
    if table.empty:
        return message_svg(no_pairs)
    periods = period_order(table["period"], by)
    x_of = {p: i for i, p in enumerate(periods)}
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    ax.axhspan(-DRIFT_THRESHOLD, DRIFT_THRESHOLD, color="#e6f4ea", zorder=0)
    ax.axhline(0, color="#999999", lw=0.6)
    for rater, rows in table.groupby("rater"):
        xs = [x_of[p] for p in rows["period"]]
        ax.plot(xs, rows["mean_difference"], marker="o", ms=3, lw=1, label=str(rater))
        flagged = rows[rows["flagged"]]
        ax.scatter(
            [x_of[p] for p in flagged["period"]],
            flagged["mean_difference"],
            s=60,
            facecolors="none",
            edgecolors="#b42318",
            linewidths=1.5,
            zorder=3,
        )
    ax.set_xticks(range(len(periods)), periods, rotation=45 if len(periods) > 6 else 0)
    ax.set_xlabel(DRIFT_AXIS[by])
    ax.set_ylabel("mean difference from partners")
    limit = max(1.0, math.ceil(table["mean_difference"].abs().max() * 2) / 2)
    ax.set_ylim(-limit, limit)
    ax.set_title(f"{title}: drift (band ±{DRIFT_THRESHOLD}, red circle: flagged)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return _svg(fig)


# Public names of the figure helpers for the plots of other packages (rater.results.plots).
new_figure = _figure
figure_svg = _svg
