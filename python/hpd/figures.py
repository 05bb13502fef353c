"""The paper's figures, drawn from the marts (SPEC §5).

Every function takes DataFrames read from the warehouse and returns a
matplotlib `Figure`; nothing here reads or writes files. The figures are
built on the Agg canvas directly (no pyplot state, no GUI backend), so they
can be drawn in a server process or a test without a display.

A warehouse may hold a million subjects. The per-subject drawings of the
paper (a marker, a label, a line or a bar per subject) are kept while they
stay readable, and past that the figures summarise: Figure 2 shades the
density of the subjects (hexagonal bins) above `SCATTER_POINT_LIMIT`
subjects and labels the hyperprogressors only up to `LABEL_LIMIT`; Figure 4
draws the median and interquartile range of the hyperprogressors, with a
fixed random sample of them, above `LABEL_LIMIT`; the waterfall draws the
sorted changes as about `WATERFALL_COLUMNS` filled columns above
`WATERFALL_BAR_LIMIT` subjects. Every such figure says so in its title or
legend, and the large drawings are rasterized.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Patch

DAYS_PER_MONTH = 30.4375  # SPEC §2: 365.25 / 12

HPD_COLOUR = "#c0392b"
NON_HPD_COLOUR = "#2e6f9e"
GREY = "#7f7f7f"

RESPONSE_COLOURS: dict[str, str] = {
    "PD": "#c0392b",
    "SD": "#e0a526",
    "PR": "#2e6f9e",
    "CR": "#27865a",
    "NE": "#9e9e9e",
}
RESPONSE_NAMES: dict[str, str] = {
    "PD": "PD (progressive disease)",
    "SD": "SD (stable disease)",
    "PR": "PR (partial response)",
    "CR": "CR (complete response)",
    "NE": "NE (not evaluable)",
}

# How the flowchart names each evaluability status (SPEC §2, rule 16): the
# reason a subject leaves the analysis, and what the subjects left have.
EXCLUSION_LABELS: dict[str, str] = {
    "no_baseline_scan": "No baseline CT scan",
    "no_first_evaluation": "Treatment stopped before the first tumor evaluation",
    "no_pre_baseline_scan": "No pre-baseline CT scan available",
    "incomplete_measurements": "Incomplete target-lesion measurements",
}
REMAINING_LABELS: dict[str, str] = {
    "no_baseline_scan": "with a baseline CT scan",
    "no_first_evaluation": "with a first tumor evaluation",
    "no_pre_baseline_scan": "with a pre-baseline CT scan",
    "incomplete_measurements": "with complete measurements",
}
EVALUABLE_STATUS = "evaluable"

# Up to this many hyperprogressors are labelled (Figure 2) and drawn one by
# one (Figure 4): the paper has 5; labels past a dozen overlap.
LABEL_LIMIT = 12
# Figure 2 draws a marker per subject up to this many, then a density.
SCATTER_POINT_LIMIT = 2000
SCATTER_GRID = 80  # hexagons across the x axis of the density
# The waterfall draws a bar per subject up to this many, then columns.
WATERFALL_BAR_LIMIT = 500
WATERFALL_COLUMNS = 1000
# Figure 4 past LABEL_LIMIT: a fixed random sample of individual trajectories.
BURDEN_SAMPLE = 100
BURDEN_SAMPLE_SEED = 20190705  # any fixed seed: the figure must be reproducible
# Kaplan-Meier curves mark censoring times with ticks up to this many per curve.
KM_CENSOR_TICK_LIMIT = 100


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _label(status: str, labels: Mapping[str, str]) -> str:
    return labels.get(status, status.replace("_", " ").capitalize())


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "-"


def _as_bool(values: pd.Series) -> pd.Series:
    """A nullable boolean column as plain booleans, null meaning false."""
    return values.astype("boolean").fillna(False).astype(bool)


def _evaluable(kinetics: pd.DataFrame) -> pd.DataFrame:
    if "evaluability" not in kinetics.columns:
        return kinetics.copy()
    return kinetics.loc[kinetics["evaluability"] == EVALUABLE_STATUS].copy()


def _ramp(colour: str) -> LinearSegmentedColormap:
    """A colour map from a light tint of `colour` through it to a dark shade,
    for a density whose lowest counts must stay visible on white."""
    red, green, blue = to_rgb(colour)
    light = (0.75 + 0.25 * red, 0.75 + 0.25 * green, 0.75 + 0.25 * blue)
    dark = (0.35 * red, 0.35 * green, 0.35 * blue)
    return LinearSegmentedColormap.from_list(f"ramp{colour}", [light, colour, dark])


def _empty_message(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=GREY)


# --------------------------------------------------------------------------- Figure 1


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    width: float
    height: float
    text: str
    face: str


def flowchart(attrition: pd.DataFrame) -> Figure:
    """Figure 1: treated subjects → exclusions, step by step → evaluable.

    `attrition` is `analytics.cohort_attrition` (step, status, n,
    n_remaining). Each status other than `evaluable` with subjects in it
    becomes an exclusion box beside the main column; statuses with no
    subject are listed in a note under the chart rather than drawn.
    """
    rows = attrition.sort_values("step") if "step" in attrition.columns else attrition
    records = [(str(r.status), int(r.n), int(r.n_remaining)) for r in rows.itertuples()]
    treated = records[0][2] if records else 0
    exclusions = [(s, n) for s, n, _ in records if s != EVALUABLE_STATUS and n > 0]
    empty = [s for s, n, _ in records if s != EVALUABLE_STATUS and n == 0]
    evaluable = next((n for s, n, _ in records if s == EVALUABLE_STATUS), None)
    if evaluable is None:
        evaluable = treated - sum(n for _, n in exclusions)

    main_x, side_x, main_w, side_w, box_h, level = 3.0, 8.2, 4.6, 4.6, 1.0, 2.2
    boxes: list[_Box] = []
    arrows: list[tuple[tuple[float, float], tuple[float, float]]] = []
    y = 0.0
    boxes.append(_Box(main_x, y, main_w, box_h, f"Treated subjects\n(n = {treated})", "#dce9f5"))
    remaining = treated
    for index, (status, n) in enumerate(exclusions):
        remaining -= n
        exclusion_y = y - level / 2
        boxes.append(
            _Box(
                side_x,
                exclusion_y,
                side_w,
                box_h,
                f"{_label(status, EXCLUSION_LABELS)}\n(n = {n}, {_percent(n, treated)})",
                "#f7e1dc",
            )
        )
        arrows.append(((main_x, exclusion_y), (side_x - side_w / 2, exclusion_y)))
        next_y = y - level
        last = index == len(exclusions) - 1
        text = (
            f"Evaluable for TGK$_{{pre}}$ and TGK$_{{post}}$\n"
            f"(n = {evaluable}, {_percent(evaluable, treated)})"
            if last
            else f"Subjects {_label(status, REMAINING_LABELS)}\n(n = {remaining})"
        )
        boxes.append(_Box(main_x, next_y, main_w, box_h, text, "#dff0e3" if last else "#dce9f5"))
        arrows.append(((main_x, y - box_h / 2), (main_x, next_y + box_h / 2)))
        y = next_y
    if not exclusions:
        next_y = y - level
        boxes.append(
            _Box(
                main_x,
                next_y,
                main_w,
                box_h,
                f"Evaluable for TGK$_{{pre}}$ and TGK$_{{post}}$\n(n = {evaluable})",
                "#dff0e3",
            )
        )
        arrows.append(((main_x, y - box_h / 2), (main_x, next_y + box_h / 2)))
        y = next_y

    bottom = y - box_h / 2 - (0.9 if empty else 0.3)
    top = box_h / 2 + 0.3
    figure = _figure(9.0, 0.55 * (top - bottom) + 0.4)
    ax = figure.add_subplot()
    for box in boxes:
        ax.add_patch(
            FancyBboxPatch(
                (box.x - box.width / 2, box.y - box.height / 2),
                box.width,
                box.height,
                boxstyle="round,pad=0.02,rounding_size=0.15",
                facecolor=box.face,
                edgecolor="#404040",
                linewidth=1.0,
            )
        )
        ax.text(box.x, box.y, box.text, ha="center", va="center", fontsize=10.5, wrap=False)
    for start, end in arrows:
        ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops={"arrowstyle": "-|>", "color": "#404040", "linewidth": 1.2},
        )
    if empty:
        names = "; ".join(_lower_first(_label(s, EXCLUSION_LABELS)) for s in empty)
        ax.text(
            0.4,
            y - box_h / 2 - 0.55,
            f"No subject excluded for: {names}.",
            ha="left",
            va="center",
            fontsize=8.5,
            color="#505050",
            wrap=True,
        )
    ax.set_xlim(0.4, side_x + side_w / 2 + 0.3)
    ax.set_ylim(bottom, top)
    ax.set_axis_off()
    ax.set_title("Figure 1. Flowchart of the study selection", loc="left", fontsize=12)
    return figure


# --------------------------------------------------------------------------- Figure 2


def _spread(values: Sequence[float], gap: float) -> list[float]:
    """Positions as near as possible to `values`, at least `gap` apart (in
    the order of the values), for labels that must not overlap."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    placed = [float(values[i]) for i in order]
    for _ in range(len(placed)):
        for k in range(1, len(placed)):
            if placed[k] - placed[k - 1] < gap:
                middle = (placed[k] + placed[k - 1]) / 2
                placed[k - 1], placed[k] = middle - gap / 2, middle + gap / 2
    result = [0.0] * len(values)
    for position, index in zip(placed, order, strict=True):
        result[index] = position
    return result


def _label_points(
    ax: Axes,
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    colours: Sequence[str],
    gap_fraction: float = 0.045,
    align_x: float | None = None,
) -> None:
    """Label points to their right, nudging labels apart vertically; with
    `align_x`, in one column starting there, joined to their points."""
    low, high = ax.get_ylim()
    left, right = ax.get_xlim()
    shift = 0.015 * (right - left)
    targets = _spread(list(ys), gap_fraction * (high - low))
    for x, y, target, label, colour in zip(xs, ys, targets, labels, colours, strict=True):
        start = x + shift if align_x is None else align_x
        if align_x is not None:
            ax.plot([x, start - shift / 3], [y, target], color=colour, linewidth=0.6, linestyle=":")
        ax.text(start, target, label, fontsize=8.5, color=colour, va="center", ha="left")


def tgk_scatter(
    kinetics: pd.DataFrame, hpd_column: str = "hpd", label_column: str = "usubjid"
) -> Figure:
    """Figure 2: TGK_post against TGK_pre for the evaluable subjects.

    The lines through the origin are TGK_post = TGK_pre (ratio 1) and
    TGK_post = 2 x TGK_pre (ratio 2); above the ratio-2 line with TGK_pre > 0
    (shaded) is hyperprogression by the TGK ratio. HPD subjects (`hpd_column`)
    are drawn in red, and labelled when there are at most `LABEL_LIMIT` of
    them (the legend says when they are not). Above `SCATTER_POINT_LIMIT`
    subjects, a marker each would only blot the plane: the subjects are
    counted in hexagonal bins instead, shaded on a log scale (not HPD in
    blue, HPD in red), rasterized, and the title says so.
    """
    data = _evaluable(kinetics).dropna(subset=["tgk_pre", "tgk_post"])
    dense = len(data) > SCATTER_POINT_LIMIT
    figure = _figure(7.5, 6.0)
    ax = figure.add_subplot()
    ax.set_xlabel("TGK$_{pre}$ (mm/month, pre-baseline → baseline)")
    ax.set_ylabel("TGK$_{post}$ (mm/month, baseline → first evaluation)")
    ax.set_title(
        f"Figure 2. TGK on immunotherapy vs before it (n = {len(data)})"
        + (", density of subjects" if dense else ""),
        loc="left",
        fontsize=12,
    )
    if data.empty:
        _empty_message(ax, "No evaluable subject")
        return figure

    x = data["tgk_pre"].astype(float).to_numpy()
    y = data["tgk_post"].astype(float).to_numpy()
    hpd = _as_bool(data[hpd_column]).to_numpy() if hpd_column in data else np.zeros(len(x), bool)

    x_low, x_high = min(0.0, float(x.min())), max(0.0, float(x.max()))
    y_low, y_high = min(0.0, float(y.min())), max(0.0, float(y.max()))
    x_pad = 0.08 * (x_high - x_low or 1.0)
    y_pad = 0.08 * (y_high - y_low or 1.0)
    x_low, x_high = x_low - x_pad, x_high + 2.5 * x_pad
    y_low, y_high = y_low - y_pad, y_high + y_pad
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)

    ax.axhline(0, color="#b0b0b0", linewidth=0.8, zorder=1)
    ax.axvline(0, color="#b0b0b0", linewidth=0.8, zorder=1)
    line_x = np.array([x_low, x_high])
    ax.plot(line_x, line_x, color="#555555", linestyle="--", linewidth=1.0, zorder=2)
    ax.plot(line_x, 2 * line_x, color=HPD_COLOUR, linestyle="-", linewidth=1.0, zorder=2)
    zone_x = np.linspace(0.0, x_high, 50)
    ax.fill_between(
        zone_x,
        np.minimum(2 * zone_x, y_high),
        y_high,
        color=HPD_COLOUR,
        alpha=0.06,
        linewidth=0,
        zorder=0,
    )

    hpd_count = int(hpd.sum())
    labelled = 0 < hpd_count <= LABEL_LIMIT and label_column in data
    if dense:
        density = {
            "gridsize": (SCATTER_GRID, round(SCATTER_GRID * 0.8)),
            "extent": (x_low, x_high, y_low, y_high),
            "bins": "log",
            "mincnt": 1,
            "linewidths": 0,
            "rasterized": True,
        }
        if (~hpd).any():
            ax.hexbin(x[~hpd], y[~hpd], cmap=_ramp(NON_HPD_COLOUR), zorder=3, **density)
        if hpd.any():
            ax.hexbin(x[hpd], y[hpd], cmap=_ramp(HPD_COLOUR), zorder=4, **density)
    else:
        ax.scatter(
            x[~hpd], y[~hpd], s=38, color=NON_HPD_COLOUR, edgecolor="white", linewidth=0.6, zorder=3
        )
        ax.scatter(x[hpd], y[hpd], s=60, marker="D", color=HPD_COLOUR, edgecolor="black", zorder=4)
    if labelled:
        labels = [str(v) for v in data.loc[hpd, label_column]]
        _label_points(ax, list(x[hpd]), list(y[hpd]), labels, [HPD_COLOUR] * len(labels))

    hpd_text = f"HPD ({hpd_count})"
    if hpd_count > LABEL_LIMIT:
        hpd_text = f"HPD ({hpd_count}; not labelled, more than {LABEL_LIMIT})"
    handles: list[Line2D | Patch]
    if dense:
        handles = [
            Patch(color=NON_HPD_COLOUR, label=f"Not HPD ({(~hpd).sum()})"),
            Patch(color=HPD_COLOUR, label=hpd_text),
            Patch(
                facecolor="white",
                edgecolor="#555555",
                label="Shade: subjects per hexagon (log scale)",
            ),
        ]
    else:
        handles = [
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color=NON_HPD_COLOUR,
                label=f"Not HPD ({(~hpd).sum()})",
            ),
            Line2D(
                [],
                [],
                marker="D",
                linestyle="",
                color=HPD_COLOUR,
                markeredgecolor="black",
                label=hpd_text,
            ),
        ]
    handles = [
        Line2D(
            [], [], color="#555555", linestyle="--", label="TGKR = 1 (TGK$_{post}$ = TGK$_{pre}$)"
        ),
        Line2D([], [], color=HPD_COLOUR, label="TGKR = 2 (TGK$_{post}$ = 2 \u00d7 TGK$_{pre}$)"),
        *handles,
        Patch(color=HPD_COLOUR, alpha=0.12, label="TGK$_{pre}$ > 0 and TGKR ≥ 2"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8.5)
    ax.grid(True, color="#eeeeee", linewidth=0.6, zorder=0)
    return figure


# --------------------------------------------------------------------------- Figure 4


def _months(dates: pd.Series, origin: pd.Series) -> pd.Series:
    days = (pd.to_datetime(dates) - pd.to_datetime(origin)).dt.days
    return days.astype(float) / DAYS_PER_MONTH


def burden_trajectories(
    kinetics: pd.DataFrame, hpd_column: str = "hpd", label_column: str = "usubjid"
) -> Figure:
    """Figure 4: irRECIST burden at pre-baseline → baseline → first evaluation
    for each hyperprogressive subject, x = months from the first dose.

    Up to `LABEL_LIMIT` hyperprogressors, a labelled line each. Past that,
    the lines would be a tangle: the figure draws, at each of the three
    scans, the median burden at the median time, with the interquartile
    range of the burden (band) and of the time (whiskers), over a random
    sample of `BURDEN_SAMPLE` individual lines (fixed seed), and the title
    says so."""
    hpd = (
        _as_bool(kinetics[hpd_column])
        if hpd_column in kinetics
        else pd.Series(False, kinetics.index)
    )
    data = kinetics.loc[hpd].sort_values(label_column if label_column in kinetics else "tgkr")
    figure = _figure(8.0, 5.2)
    ax = figure.add_subplot()
    summarised = len(data) > LABEL_LIMIT
    ax.set_title(
        f"Figure 4. Tumor burden of the hyperprogressors (n = {len(data)})"
        + (": median and interquartile range" if summarised else ""),
        loc="left",
        fontsize=12,
    )
    ax.set_xlabel("Months from the first dose")
    ax.set_ylabel("Tumor burden, irRECIST (mm)")
    if data.empty:
        _empty_message(ax, "No hyperprogressive subject")
        return figure
    if summarised:
        _burden_summary(ax, data)
        return figure

    colours = [
        "#c0392b",
        "#8e44ad",
        "#d35400",
        "#16a085",
        "#2c3e50",
        "#b7950b",
        "#1f618d",
        "#7b241c",
        "#117a65",
        "#6c3483",
    ]
    points = [
        ("pre_baseline_date", "s_pre_mm"),
        ("baseline_date", "s_baseline_mm"),
        ("first_evaluation_date", "s_first_evaluation_mm"),
    ]
    x_max = 0.0
    x_min = 0.0
    y_max = 0.0
    ends: list[tuple[float, float, str, str]] = []
    for index, (_, row) in enumerate(data.iterrows()):
        xs: list[float] = []
        ys: list[float] = []
        for date_column, burden_column in points:
            date, burden = row.get(date_column), row.get(burden_column)
            if pd.isna(date) or pd.isna(burden) or pd.isna(row.get("first_dose_date")):
                continue
            months = (pd.Timestamp(date) - pd.Timestamp(row["first_dose_date"])).days
            xs.append(months / DAYS_PER_MONTH)
            ys.append(float(burden))
        if not xs:
            continue
        colour = colours[index % len(colours)]
        ax.plot(xs, ys, marker="o", color=colour, linewidth=1.6, markersize=5)
        x_max, x_min, y_max = max(x_max, max(xs)), min(x_min, min(xs)), max(y_max, max(ys))
        label = str(row.get(label_column, ""))
        change = row.get("pct_change_first_evaluation")
        if change is not None and not pd.isna(change):
            label += f"  ({float(change):+.0f}%)"
        ends.append((xs[-1], ys[-1], label, colour))
    ax.set_xlim(x_min - 0.3, x_max + 0.6 * (x_max - x_min + 0.5))
    ax.set_ylim(0, y_max * 1.08 if y_max else 1.0)
    if ends:
        xs_end, ys_end, labels, label_colours = zip(*ends, strict=True)
        _label_points(
            ax,
            xs_end,
            ys_end,
            labels,
            label_colours,
            gap_fraction=0.05,
            align_x=x_max + 0.06 * (x_max - x_min + 0.5),
        )
    ax.axvline(0, color=GREY, linestyle=":", linewidth=1.0)
    ax.text(
        0.05,
        0.97,
        " first dose",
        transform=ax.get_xaxis_transform(),
        fontsize=8.5,
        color=GREY,
        va="top",
    )
    ax.grid(True, color="#eeeeee", linewidth=0.6)
    ax.text(
        0.0,
        -0.16,
        "Points: pre-baseline, baseline and first evaluation scans; "
        "labels give the change from baseline at the first evaluation.",
        transform=ax.transAxes,
        fontsize=8,
        color="#505050",
    )
    return figure


_BURDEN_POINTS = [
    ("pre_baseline_date", "s_pre_mm"),
    ("baseline_date", "s_baseline_mm"),
    ("first_evaluation_date", "s_first_evaluation_mm"),
]


def _burden_summary(ax: Axes, data: pd.DataFrame) -> None:
    """Figure 4 for many hyperprogressors: quartiles at each scan, a sample of lines."""

    def column(name: str) -> pd.Series:
        return data[name] if name in data else pd.Series(np.nan, index=data.index)

    first_dose = pd.to_datetime(column("first_dose_date"))
    months = np.column_stack(
        [
            (pd.to_datetime(column(date)) - first_dose)
            .dt.days.astype("float64")
            .to_numpy(dtype=float, na_value=np.nan)
            / DAYS_PER_MONTH
            for date, _ in _BURDEN_POINTS
        ]
    )
    burden = np.column_stack(
        [
            pd.to_numeric(column(name), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            for _, name in _BURDEN_POINTS
        ]
    )
    known = np.isfinite(months) & np.isfinite(burden)

    # A fixed random sample of the subjects' own lines, behind the summary.
    drawable = np.flatnonzero(known.sum(axis=1) >= 2)
    rng = np.random.default_rng(BURDEN_SAMPLE_SEED)
    sample = np.sort(rng.choice(drawable, size=min(BURDEN_SAMPLE, len(drawable)), replace=False))
    lines = [np.column_stack([months[i, known[i]], burden[i, known[i]]]) for i in sample]
    ax.add_collection(
        LineCollection(lines, colors="#9a9a9a", linewidths=0.5, alpha=0.5, rasterized=True)
    )

    scans = [index for index in range(len(_BURDEN_POINTS)) if known[:, index].any()]
    quartiles = np.array(
        [np.percentile(burden[known[:, j], j], [25, 50, 75]) for j in scans]
    ).reshape(-1, 3)
    times = np.array([np.percentile(months[known[:, j], j], [25, 50, 75]) for j in scans]).reshape(
        -1, 3
    )
    ax.fill_between(
        times[:, 1], quartiles[:, 0], quartiles[:, 2], color=HPD_COLOUR, alpha=0.18, linewidth=0
    )
    ax.errorbar(
        times[:, 1],
        quartiles[:, 1],
        xerr=[times[:, 1] - times[:, 0], times[:, 2] - times[:, 1]],
        fmt="o-",
        color=HPD_COLOUR,
        linewidth=2.0,
        markersize=6,
        elinewidth=1.0,
        capsize=3,
    )
    ax.autoscale_view()
    x_low, x_high = ax.get_xlim()
    ax.set_xlim(min(x_low, -0.3), max(x_high, 0.6))  # the first dose (0) always in view
    ax.set_ylim(0, ax.get_ylim()[1])
    ax.axvline(0, color=GREY, linestyle=":", linewidth=1.0)
    ax.text(
        0.05,
        0.97,
        " first dose",
        transform=ax.get_xaxis_transform(),
        fontsize=8.5,
        color=GREY,
        va="top",
    )
    change = pd.to_numeric(column("pct_change_first_evaluation"), errors="coerce").dropna()
    change_text = (
        f"Change from baseline at the first evaluation: median {change.median():+.0f}% "
        f"(interquartile range {change.quantile(0.25):+.0f}% to {change.quantile(0.75):+.0f}%)."
        if len(change)
        else ""
    )
    handles = [
        Line2D([], [], color=HPD_COLOUR, marker="o", linewidth=2.0, label="Median at each scan"),
        Patch(color=HPD_COLOUR, alpha=0.18, label="Interquartile range of the burden"),
        Line2D(
            [],
            [],
            color=HPD_COLOUR,
            marker="|",
            linestyle="",
            markersize=10,
            label="Interquartile range of the time",
        ),
        Line2D([], [], color="#9a9a9a", linewidth=0.8, label=f"{len(sample)} subjects at random"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.06, 1.0), fontsize=8.5)
    ax.grid(True, color="#eeeeee", linewidth=0.6)
    ax.text(
        0.0,
        -0.16,
        f"{len(data)} hyperprogressors, too many to draw one by one. Points: pre-baseline, "
        f"baseline and first evaluation scans. {change_text}",
        transform=ax.transAxes,
        fontsize=8,
        color="#505050",
        wrap=True,
    )


# --------------------------------------------------------------------------- waterfall


def waterfall(
    kinetics: pd.DataFrame,
    hpd_column: str = "hpd",
    evaluable_only: bool = True,
    cap_percent: float = 200.0,
) -> Figure:
    """Best-first waterfall of the change in irRECIST burden from baseline to
    the first evaluation (`pct_change_first_evaluation`), coloured by the
    irRECIST response there, with the +20 % and -30 % reference lines.

    Bars above `cap_percent` are truncated (when some bar is more than 1.25
    times it) and carry their value; HPD subjects are marked with a star.

    Above `WATERFALL_BAR_LIMIT` subjects the bars would be thinner than a
    pixel: the sorted changes are drawn as `WATERFALL_COLUMNS` filled columns
    of consecutive subjects instead (rasterized), each as high as their mean
    change and coloured by the mix of their responses, over a red strip as
    dark as their share of hyperprogressors; a note under the chart says so.
    """
    data = _evaluable(kinetics) if evaluable_only else kinetics.copy()
    data = data.dropna(subset=["pct_change_first_evaluation"])
    data = data.sort_values("pct_change_first_evaluation", ascending=False).reset_index()
    figure = _figure(9.0, 5.2)
    ax = figure.add_subplot()
    scope = "evaluable subjects" if evaluable_only else "subjects with a first evaluation"
    ax.set_title(
        f"Change in tumor burden at the first evaluation ({scope}, n = {len(data)})",
        loc="left",
        fontsize=12,
    )
    ax.set_ylabel("Change from baseline, irRECIST burden (%)")
    ax.set_xlabel("Subjects, sorted by change")
    if data.empty:
        _empty_message(ax, "No subject with a first evaluation")
        return figure

    values = data["pct_change_first_evaluation"].astype(float).to_numpy()
    response_column = data.get("response_first_evaluation_irrecist", pd.Series("NE", data.index))
    responses = (
        response_column.astype("object").where(response_column.notna(), "NE").astype(str).to_numpy()
    )
    truncate = float(values.max()) > 1.25 * cap_percent
    shown = np.minimum(values, cap_percent) if truncate else values
    positions = np.arange(len(values))
    hpd = _as_bool(data[hpd_column]).to_numpy() if hpd_column in data else np.zeros(len(data), bool)
    top = float(shown.max())
    bottom = float(min(shown.min(), -30.0))
    span = top - bottom
    columns = len(values) > WATERFALL_BAR_LIMIT
    if columns:
        _waterfall_columns(ax, shown, responses, hpd, bottom - 0.03 * span, 0.04 * span)
    else:
        colours = [RESPONSE_COLOURS.get(str(r), GREY) for r in responses]
        ax.bar(positions, shown, color=colours, width=0.8, edgecolor="white", linewidth=0.4)
    if truncate and not columns:
        for position, value in zip(positions, values, strict=True):
            if value > cap_percent:
                ax.text(
                    float(position),
                    cap_percent + 0.02 * span,
                    f"{value:.0f}%",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    rotation=90,
                )
    # A star under each hyperprogressor's bar (the columns have their strip).
    for position in positions[hpd] if not columns else []:
        ax.text(
            float(position),
            min(float(shown[position]), 0.0) - 0.03 * span,
            "★",
            ha="center",
            va="top",
            fontsize=10,
            color=HPD_COLOUR,
        )
    ax.axhline(20, color=RESPONSE_COLOURS["PD"], linestyle="--", linewidth=1.0)
    ax.axhline(-30, color=RESPONSE_COLOURS["PR"], linestyle="--", linewidth=1.0)
    ax.axhline(0, color="black", linewidth=0.8)
    for level, text in ((20, "+20%"), (-30, "\u221230%")):
        ax.text(
            1.005,
            level,
            text,
            va="center",
            ha="left",
            fontsize=8.5,
            transform=ax.get_yaxis_transform(),
        )
    ax.set_xlim(-0.7, len(values) - 0.3)
    ax.set_ylim(bottom - 0.1 * span, top + (0.18 if truncate else 0.06) * span)
    ax.set_xticks([])
    distinct = {str(r) for r in pd.unique(responses)}
    present = [r for r in RESPONSE_COLOURS if r in distinct]
    present += sorted(r for r in distinct if r not in RESPONSE_COLOURS)
    handles: list[Patch | Line2D] = [
        Patch(color=RESPONSE_COLOURS.get(r, GREY), label=RESPONSE_NAMES.get(r, r)) for r in present
    ]
    if hpd.any():
        handles.append(
            Line2D(
                [],
                [],
                marker="s" if columns else "*",
                linestyle="",
                color=HPD_COLOUR,
                markersize=8 if columns else 10,
                label="Hyperprogression" + (" (strip: share)" if columns else ""),
            )
        )
    ax.legend(
        handles=handles,
        loc="upper right",
        fontsize=8.5,
        title="irRECIST response",
        title_fontsize=8.5,
    )
    notes = []
    if columns:
        per_column = len(values) / min(len(values), WATERFALL_COLUMNS)
        notes.append(
            f"{len(values)} subjects in columns of about {per_column:.0f}: the mean change of "
            "each, coloured by the mix of their responses;\nthe strip under them is as dark as "
            "their share of hyperprogressors."
        )
        if truncate:
            above = values > cap_percent
            notes.append(
                f"\n{int(above.sum())} changes above {cap_percent:.0f}% (up to "
                f"{values.max():.0f}%) are drawn at {cap_percent:.0f}%."
            )
    elif truncate:
        notes.append(
            f"Bars above {cap_percent:.0f}% are truncated; their value is printed above them."
        )
    if notes:
        ax.text(
            0.0,
            -0.1,
            "".join(notes) if columns else " ".join(notes),
            transform=ax.transAxes,
            fontsize=8,
            color="#505050",
            va="top" if columns else "baseline",
        )
    ax.grid(True, axis="y", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    return figure


def _waterfall_columns(
    ax: Axes,
    shown: np.ndarray,
    responses: np.ndarray,
    hpd: np.ndarray,
    strip_top: float,
    strip_height: float,
) -> None:
    """The waterfall of many subjects (sorted, best first in `shown`) as
    filled columns of consecutive subjects: what a bar per subject would
    look like once each pixel holds hundreds of them."""
    count = len(shown)
    width = min(count, WATERFALL_COLUMNS)
    column = np.arange(count) * width // count
    size = np.bincount(column, minlength=width)
    height = np.bincount(column, weights=shown, minlength=width) / size
    codes, distinct = pd.factorize(responses)
    palette = np.array([to_rgb(RESPONSE_COLOURS.get(str(r), GREY)) for r in distinct])
    colour = palette[codes]
    mixed = np.column_stack(
        [np.bincount(column, weights=colour[:, k], minlength=width) / size for k in range(3)]
    )
    start = np.concatenate([[0], np.cumsum(size)[:-1]]) - 0.5
    end = start + size
    corners = np.stack(
        [
            np.column_stack([start, np.zeros(width)]),
            np.column_stack([start, height]),
            np.column_stack([end, height]),
            np.column_stack([end, np.zeros(width)]),
        ],
        axis=1,
    )
    ax.add_collection(
        PolyCollection(
            list(corners), facecolors=mixed, edgecolors="none", linewidths=0, rasterized=True
        )
    )
    # Under the columns, a strip as dark as the share of hyperprogressors.
    share = np.bincount(column, weights=hpd.astype(float), minlength=width) / size
    if share.any():
        red, green, blue = to_rgb(HPD_COLOUR)
        alpha = np.where(share > 0, 0.15 + 0.85 * share / share.max(), 0.0)
        strip = corners.copy()
        strip[:, :, 1] = [strip_top - strip_height, strip_top, strip_top, strip_top - strip_height]
        ax.add_collection(
            PolyCollection(
                list(strip),
                facecolors=[(red, green, blue, a) for a in alpha],
                edgecolors="none",
                linewidths=0,
                rasterized=True,
            )
        )


# --------------------------------------------------------------------------- Kaplan-Meier


def _median(curve: pd.DataFrame) -> float | None:
    below = curve.loc[curve["survival"] <= 0.5, "time"]
    return float(below.iloc[0]) if len(below) else None


def _format_median(median: float | None) -> str:
    if median is None or (isinstance(median, float) and math.isnan(median)):
        return "not reached"
    return f"{median:.1f} mo"


def km_curves(
    km_by_group: Mapping[str, pd.DataFrame],
    medians: Mapping[str, float | None] | None = None,
    logrank_p: float | None = None,
    colours: Mapping[str, str] | None = None,
    show_ci: bool = False,
) -> Figure:
    """Kaplan-Meier overall-survival step curves, one per group, with censor
    ticks and the median in the legend.

    A curve censored at more than `KM_CENSOR_TICK_LIMIT` distinct times gets
    no ticks (they would merge into a band along it), and the legend says so.

    `km_by_group` maps a group label to a `statistics.kaplan_meier` table
    (time, at_risk, events, censored, survival, ci_lower, ci_upper). Medians
    are taken from `medians` when given, else read off the curve. With
    `show_ci`, the pointwise 95% confidence bands are shaded.
    """
    figure = _figure(8.0, 5.2)
    ax = figure.add_subplot()
    ax.set_title("Overall survival from the first dose", loc="left", fontsize=12)
    ax.set_xlabel("Months from the first dose")
    ax.set_ylabel("Probability of survival")
    palette = [HPD_COLOUR, NON_HPD_COLOUR, "#27865a", "#8e44ad", "#d35400", GREY]
    x_max = 0.0
    ticked = unticked = False
    for index, (group, curve) in enumerate(km_by_group.items()):
        colour = (colours or {}).get(group, palette[index % len(palette)])
        table = curve.sort_values("time")
        times = table["time"].astype(float).to_numpy()
        survival = table["survival"].astype(float).to_numpy()
        if len(times) == 0 or times[0] > 0:
            times = np.concatenate([[0.0], times])
            survival = np.concatenate([[1.0], survival])
        subjects = int(table["at_risk"].iloc[0]) if len(table) and "at_risk" in table else 0
        median = medians.get(group) if medians is not None else _median(table)
        label = f"{group} (n = {subjects}; median {_format_median(median)})"
        ax.step(times, survival, where="post", color=colour, linewidth=1.8, label=label)
        if show_ci and {"ci_lower", "ci_upper"} <= set(table.columns) and len(table):
            lower = table["ci_lower"].astype(float).to_numpy()
            upper = table["ci_upper"].astype(float).to_numpy()
            if len(lower) < len(times):
                lower = np.concatenate([[1.0], lower])
                upper = np.concatenate([[1.0], upper])
            ax.fill_between(times, lower, upper, step="post", color=colour, alpha=0.1, linewidth=0)
        censored = (
            table.loc[table["censored"].astype(float) > 0]
            if "censored" in table.columns
            else table.iloc[:0]
        )
        unticked |= len(censored) > KM_CENSOR_TICK_LIMIT
        if "censored" in table.columns and len(censored) <= KM_CENSOR_TICK_LIMIT:
            ticked = True
            ax.plot(
                censored["time"].astype(float),
                censored["survival"].astype(float),
                linestyle="",
                marker="|",
                markersize=10,
                markeredgewidth=1.5,
                color=colour,
            )
        x_max = max(x_max, float(times.max()) if len(times) else 0.0)
    if not km_by_group:
        _empty_message(ax, "No subject with a known survival time")
    ax.axhline(0.5, color="#b0b0b0", linestyle=":", linewidth=0.8)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, x_max * 1.04 if x_max else 1.0)
    ax.grid(True, color="#eeeeee", linewidth=0.6)
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return figure
    if ticked or not unticked:
        handles.append(Line2D([], [], marker="|", linestyle="", color="black", markersize=10))
        labels.append("censored" if not unticked else "censored (where marked)")
    if unticked:
        handles.append(Line2D([], [], linestyle=""))
        labels.append(f"censoring not marked past {KM_CENSOR_TICK_LIMIT} censoring times")
    title = None
    if logrank_p is not None and not math.isnan(logrank_p):
        shown = "<0.001" if logrank_p < 0.001 else f"= {logrank_p:.3f}"
        across = f" ({len(km_by_group)} groups)" if len(km_by_group) > 2 else ""
        title = f"log-rank p {shown}{across}"
    ax.legend(handles, labels, loc="upper right", fontsize=8.5, title=title, title_fontsize=8.5)
    return figure
