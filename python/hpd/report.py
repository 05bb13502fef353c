"""The statistics and the report (SPEC §5): tables into the warehouse, files
into the reports folder.

`build_report` does the I/O at the edges: `read_marts` reads the marts
through a `hpd.warehouse.Warehouse` (a DuckDB file or a PostgreSQL database;
a DuckDB connection is taken as its warehouse); `compute_report` (no I/O) computes Table 1 and
the survival summary (`hpd.statistics`) and draws the figures
(`hpd.figures`); `build_report` then writes the two tables back as
`analytics.table1` and `analytics.survival_summary`, and the CSVs, the PNGs
and one self-contained `report.html` into the reports folder. `render_html`
turns the computed content into the HTML text and is pure.

Groups:
- Table 1 compares, among the evaluable subjects judged by the chosen
  definition, the subjects it calls hyperprogressive with the others.
- Overall survival is drawn for every treated subject, in three groups:
  `HPD`, `Not HPD`, and `Not judged` (subjects the definition cannot judge,
  e.g. not evaluable for TGK): they are kept apart rather than pooled with
  the non-HPD subjects. The log-rank p of `survival_summary` compares the
  three groups; `logrank_p_hpd_vs_not_hpd` compares HPD with not HPD among
  the judged subjects only.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hpd import figures
from hpd.statistics import kaplan_meier, logrank_test, survival_summary, table1
from hpd.warehouse import Warehouse, as_warehouse

# A warehouse, or a DuckDB connection to one.
Source = Warehouse | duckdb.DuckDBPyConnection

HPD_GROUP = "HPD"
NOT_HPD_GROUP = "Not HPD"
NOT_JUDGED_GROUP = "Not judged"
GROUP_COLOURS = {
    HPD_GROUP: figures.HPD_COLOUR,
    NOT_HPD_GROUP: figures.NON_HPD_COLOUR,
    NOT_JUDGED_GROUP: figures.GREY,
}

FIGURE_FILES: dict[str, str] = {
    "flowchart": "figure1_flowchart.png",
    "tgk": "figure2_tgk.png",
    "burden": "figure4_burden.png",
    "waterfall": "waterfall.png",
    "kaplan_meier": "kaplan_meier.png",
}
FIGURE_DPI = 150

TABLE1_VARIABLE_LABELS = {"Age": "Age, median (range)", "ECOG": "ECOG performance status"}
SENTENCE_CASE_VARIABLES = {"Location", "Histology"}


@dataclass(frozen=True)
class ReportResult:
    """Where `build_report` wrote its files."""

    reports_dir: Path
    html: Path
    table1_csv: Path
    survival_summary_csv: Path
    figures: dict[str, Path]


@dataclass(frozen=True)
class ReportContent:
    """Everything `render_html` shows, computed beforehand."""

    warehouse: str
    generated_at: datetime
    definition: str
    definition_name: str
    group_labels: tuple[str, str]
    attrition: pd.DataFrame
    table1: pd.DataFrame
    table1_subjects: tuple[int, int, int]  # all, not HPD, HPD
    table1_not_judged: int
    definitions: pd.DataFrame
    agreement: pd.DataFrame
    survival_summary: pd.DataFrame
    hpd_subjects: pd.DataFrame
    images: Mapping[str, bytes] = field(default_factory=dict)
    title: str = "Hyperprogression on immunotherapy: tumor-growth kinetics report"
    # Figure captions that depend on the data (how many subjects a figure
    # draws one by one), by figure name; the others are fixed.
    captions: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _frame(con: Source, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    return as_warehouse(con).frame(sql, params)


def _threshold(thresholds: str | None, name: str) -> float | None:
    match = re.search(rf"\b{re.escape(name)}\s*=\s*([-+0-9.eE]+)", thresholds or "")
    return float(match.group(1)) if match else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def group_labels(definition: str, definitions: pd.DataFrame) -> tuple[str, str]:
    """Table 1's column names for not HPD and HPD: the paper's `TGKR<2` and
    `TGKR≥2` for the primary definition (with the ratio in force)."""
    if definition != "tgkr":
        return NOT_HPD_GROUP, HPD_GROUP
    ratio = 2.0
    row = definitions.loc[definitions["definition_id"] == definition]
    if not row.empty and "thresholds_in_force" in row:
        ratio = _threshold(row["thresholds_in_force"].iloc[0], "tgkr_min_ratio") or ratio
    return f"TGKR<{_number(ratio)}", f"TGKR\u2265{_number(ratio)}"


def _figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight", pad_inches=0.15)
    return buffer.getvalue()


def _survival_groups(survival: pd.DataFrame) -> pd.Series:
    flags = survival["is_hpd"].astype("boolean")
    groups = np.where(
        flags.isna().to_numpy(),
        NOT_JUDGED_GROUP,
        np.where(flags.fillna(False).to_numpy(dtype=bool), HPD_GROUP, NOT_HPD_GROUP),
    )
    return pd.Series(groups, index=survival.index, dtype="object")


def _write_table(con: Source, name: str, frame: pd.DataFrame) -> None:
    as_warehouse(con).write_table("analytics", name, frame)


@dataclass(frozen=True)
class Marts:
    """The marts the report reads, for one hyperprogression definition.

    Only the columns the report uses are read: the per-subject frames have a
    row per treated subject, a million in a large warehouse, and each column
    read costs time and memory (text and dates most)."""

    definition: str
    attrition: pd.DataFrame
    definitions: pd.DataFrame
    definition_summary: pd.DataFrame
    agreement: pd.DataFrame
    # The evaluable subjects (those Figure 2 and the waterfall draw):
    # KINETICS_COLUMNS of tumor_kinetics and `hpd_selected` (the definition's is_hpd).
    kinetics: pd.DataFrame
    # The definition's hyperprogressors: HYPERPROGRESSOR_COLUMNS and `hpd_selected`.
    hyperprogressors: pd.DataFrame
    evaluable: pd.DataFrame  # evaluable subjects' Table 1 characteristics + `is_hpd`
    survival: pd.DataFrame  # treated subjects' `os_months`, `event` + `is_hpd`


# What the figures and the listing need from `analytics.tumor_kinetics`.
KINETICS_COLUMNS = (
    "usubjid",
    "evaluability",
    "tgk_pre",
    "tgk_post",
    "tgkr",
    "pct_change_first_evaluation",
    "response_first_evaluation_irrecist",
)
HYPERPROGRESSOR_COLUMNS = (
    *KINETICS_COLUMNS,
    "first_dose_date",
    "pre_baseline_date",
    "baseline_date",
    "first_evaluation_date",
    "s_pre_mm",
    "s_baseline_mm",
    "s_first_evaluation_mm",
)
CHARACTERISTICS_COLUMNS = (
    "sex",
    "age",
    "ecog_baseline",
    "primsite",
    "histol",
    "metsites",
    "regimen",
    "mmr",
    "pdl1cps",
)
# The hyperprogressive subjects listed in the report, at most.
HPD_LISTING_LIMIT = 100


def _columns(alias: str, names: Sequence[str]) -> str:
    return ", ".join(f"{alias}.{name}" for name in names)


@dataclass(frozen=True)
class ComputedReport:
    """What `compute_report` derives: the two result tables and the page content."""

    table1: pd.DataFrame
    survival_summary: pd.DataFrame
    content: ReportContent


def definition_ids(con: Source) -> list[str]:
    warehouse = as_warehouse(con)
    rows = warehouse.rows(
        "select distinct definition_id from "
        f"{warehouse.table('analytics', 'hpd_classification')} order by 1"
    )
    return [str(row[0]) for row in rows]


def read_marts(con: Source, definition: str = "tgkr") -> Marts:
    """Read what the report needs from the warehouse's `analytics` schema."""
    warehouse = as_warehouse(con)
    known = definition_ids(warehouse)
    if definition not in known:
        raise ValueError(
            f"unknown hyperprogression definition {definition!r}; known: {', '.join(known)}"
        )
    by_definition = [definition]
    marts = {
        name: warehouse.table("analytics", name)
        for name in (
            "cohort_attrition",
            "hpd_definitions",
            "hpd_definition_summary",
            "hpd_definition_agreement",
            "tumor_kinetics",
            "hpd_classification",
            "subject_characteristics",
            "survival",
        )
    }
    return Marts(
        definition=definition,
        attrition=_frame(warehouse, f"select * from {marts['cohort_attrition']} order by step"),
        definitions=_frame(
            warehouse, f"select * from {marts['hpd_definitions']} order by definition_order"
        ),
        definition_summary=_frame(
            warehouse,
            f"""
            select s.definition_id, d.name, d.rule, s.subjects, s.judged, s.hpd, s.hpd_percent
            from {marts["hpd_definition_summary"]} as s
            left join {marts["hpd_definitions"]} as d using (definition_id)
            order by s.definition_order, s.definition_id
            """,
        ),
        agreement=_frame(
            warehouse,
            f"select * from {marts['hpd_definition_agreement']} order by order_a, order_b",
        ),
        kinetics=_frame(
            warehouse,
            f"""
            select {_columns("k", KINETICS_COLUMNS)}, c.is_hpd as hpd_selected
            from {marts["tumor_kinetics"]} as k
            left join {marts["hpd_classification"]} as c
                on c.usubjid = k.usubjid and c.definition_id = ?
            where k.evaluability = 'evaluable'
            order by k.usubjid
            """,
            by_definition,
        ),
        hyperprogressors=_frame(
            warehouse,
            f"""
            select {_columns("k", HYPERPROGRESSOR_COLUMNS)}, c.is_hpd as hpd_selected
            from {marts["tumor_kinetics"]} as k
            inner join {marts["hpd_classification"]} as c
                on c.usubjid = k.usubjid and c.definition_id = ?
            where c.is_hpd
            order by k.usubjid
            """,
            by_definition,
        ),
        evaluable=_frame(
            warehouse,
            f"""
            select {_columns("s", CHARACTERISTICS_COLUMNS)}, c.is_hpd
            from {marts["subject_characteristics"]} as s
            inner join {marts["tumor_kinetics"]} as k on k.usubjid = s.usubjid
            inner join {marts["hpd_classification"]} as c
                on c.usubjid = s.usubjid and c.definition_id = ?
            where k.evaluability = 'evaluable'
            order by s.usubjid
            """,
            by_definition,
        ),
        survival=_frame(
            warehouse,
            f"""
            select s.os_months, s.event, c.is_hpd
            from {marts["survival"]} as s
            left join {marts["hpd_classification"]} as c
                on c.usubjid = s.usubjid and c.definition_id = ?
            order by s.usubjid
            """,
            by_definition,
        ),
    )


def _captions(
    kinetics: pd.DataFrame, hyperprogressors: int, curves: Mapping[str, pd.DataFrame]
) -> dict[str, str]:
    """The captions of the figures drawn differently for many subjects."""
    evaluable = kinetics.loc[kinetics["evaluability"] == figures.EVALUABLE_STATUS]
    scattered = int((evaluable["tgk_pre"].notna() & evaluable["tgk_post"].notna()).sum())
    changes = int(evaluable["pct_change_first_evaluation"].notna().sum())
    captions = {}
    tgk = (
        "Figure 2. TGK on immunotherapy (TGK<sub>post</sub>) against TGK before it "
        "(TGK<sub>pre</sub>) for the evaluable subjects; lines through the origin of ratio "
        "1 and 2."
    )
    if scattered > figures.SCATTER_POINT_LIMIT:
        tgk += (
            f" The {scattered} subjects are shown as a density: subjects per hexagon, on a log "
            "scale, hyperprogressive subjects in red."
        )
    if hyperprogressors > figures.LABEL_LIMIT:
        tgk += (
            f" The {hyperprogressors} hyperprogressive subjects are not labelled (more than "
            f"{figures.LABEL_LIMIT}); the first of them are listed below."
        )
    else:
        tgk += " Hyperprogressive subjects are labelled."
    captions["tgk"] = tgk
    if hyperprogressors > figures.LABEL_LIMIT:
        captions["burden"] = (
            "Figure 4. irRECIST tumor burden of the hyperprogressive subjects at the "
            "pre-baseline, baseline and first evaluation scans: the median burden at the "
            "median time of each scan, with the interquartile ranges of the burden (band) and "
            f"of the time (whiskers), over the lines of {figures.BURDEN_SAMPLE} of the "
            f"{hyperprogressors} subjects drawn at random."
        )
    if changes > figures.WATERFALL_BAR_LIMIT:
        captions["waterfall"] = (
            "Change in irRECIST burden from baseline to the first evaluation, sorted, for "
            f"{changes} subjects drawn as columns of consecutive subjects (their mean change, "
            "coloured by the mix of their irRECIST responses); dashed lines at +20% and "
            "\u221230%; the red strip under the columns is as dark as their share of "
            "hyperprogressive subjects."
        )
    if any(
        int((curve["censored"] > 0).sum()) > figures.KM_CENSOR_TICK_LIMIT
        for curve in curves.values()
    ):
        captions["kaplan_meier"] = (
            "Kaplan\u2013Meier estimates of overall survival by group; censored subjects are "
            f"marked by ticks on the curves censored at {figures.KM_CENSOR_TICK_LIMIT} distinct "
            "times or fewer; the medians are in the legend and the table above."
        )
    return captions


def compute_report(marts: Marts, warehouse: str, generated_at: datetime) -> ComputedReport:
    """Table 1, the survival summary and the figures (as PNG bytes) from the
    marts. No I/O."""
    definition = marts.definition

    # Table 1: evaluable subjects judged by the definition.
    evaluable = marts.evaluable
    judged = evaluable.loc[evaluable["is_hpd"].notna()].copy()
    judged["hpd"] = judged["is_hpd"].astype(bool)
    characteristics = table1(judged, group="hpd")

    # Survival: every treated subject, HPD / not HPD / not judged.
    survival = marts.survival.copy()
    survival["hpd_group"] = _survival_groups(survival)
    os_summary = survival_summary(survival, group="hpd_group")
    known_time = survival["os_months"].notna() & survival["event"].notna()
    pair = survival.loc[known_time & (survival["hpd_group"] != NOT_JUDGED_GROUP)]
    p_judged = logrank_test(pair["os_months"], pair["event"], pair["hpd_group"])
    os_out = os_summary.assign(
        logrank_p_hpd_vs_not_hpd=math.nan if math.isnan(p_judged) else p_judged,
        definition_id=definition,
    )

    curves = {
        str(group): kaplan_meier(
            survival.loc[known_time & (survival["hpd_group"] == group), "os_months"],
            survival.loc[known_time & (survival["hpd_group"] == group), "event"],
        )
        for group in os_summary["hpd_group"]
    }
    medians = {
        str(row.hpd_group): None if pd.isna(row.median_os_months) else float(row.median_os_months)
        for row in os_summary.itertuples()
    }
    overall_p = os_summary["logrank_p"].dropna()
    kinetics = marts.kinetics
    drawn: dict[str, Figure] = {
        "flowchart": figures.flowchart(marts.attrition),
        "tgk": figures.tgk_scatter(kinetics, hpd_column="hpd_selected"),
        "burden": figures.burden_trajectories(marts.hyperprogressors, hpd_column="hpd_selected"),
        "waterfall": figures.waterfall(kinetics, hpd_column="hpd_selected"),
        "kaplan_meier": figures.km_curves(
            curves,
            medians=medians,
            logrank_p=float(overall_p.iloc[0]) if len(overall_p) else None,
            colours=GROUP_COLOURS,
        ),
    }

    name_row = marts.definitions.loc[marts.definitions["definition_id"] == definition]
    content = ReportContent(
        warehouse=warehouse,
        generated_at=generated_at,
        definition=definition,
        definition_name=str(name_row["name"].iloc[0]) if not name_row.empty else definition,
        group_labels=group_labels(definition, marts.definitions),
        attrition=marts.attrition,
        table1=characteristics,
        table1_subjects=(len(judged), int((~judged["hpd"]).sum()), int(judged["hpd"].sum())),
        table1_not_judged=len(evaluable) - len(judged),
        definitions=marts.definition_summary,
        agreement=marts.agreement,
        survival_summary=os_out,
        hpd_subjects=marts.hyperprogressors,
        images={name: _figure_png(figure) for name, figure in drawn.items()},
        captions=_captions(kinetics, len(marts.hyperprogressors), curves),
    )
    return ComputedReport(
        table1=characteristics.assign(definition_id=definition),
        survival_summary=os_out,
        content=content,
    )


def build_report(
    con: Source,
    reports_dir: Path,
    definition: str = "tgkr",
    warehouse: Path | str | None = None,
) -> ReportResult:
    """Compute Table 1 and the survival summary for `definition`, write them
    into the warehouse through `con` (`analytics.table1`,
    `analytics.survival_summary`) and write the CSVs, the figures and
    `report.html` into `reports_dir`. `warehouse` is the name the report
    gives the warehouse (a refresh builds in a new file, or new schemas, that
    are published under it)."""
    source = as_warehouse(con)
    label = str(warehouse) if warehouse is not None else source.label
    computed = compute_report(read_marts(source, definition), label, datetime.now(UTC))
    _write_table(source, "table1", computed.table1)
    _write_table(source, "survival_summary", computed.survival_summary)

    reports_dir.mkdir(parents=True, exist_ok=True)
    table1_csv = reports_dir / "table1.csv"
    survival_csv = reports_dir / "survival_summary.csv"
    computed.table1.to_csv(table1_csv, index=False)
    computed.survival_summary.to_csv(survival_csv, index=False)
    figure_paths: dict[str, Path] = {}
    for name, png in computed.content.images.items():
        path = reports_dir / FIGURE_FILES[name]
        path.write_bytes(png)
        figure_paths[name] = path
    html_path = reports_dir / "report.html"
    html_path.write_text(render_html(computed.content), encoding="utf-8")
    return ReportResult(
        reports_dir=reports_dir,
        html=html_path,
        table1_csv=table1_csv,
        survival_summary_csv=survival_csv,
        figures=figure_paths,
    )


# --------------------------------------------------------------------------- rendering


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _e(value: Any) -> str:
    """A value as escaped HTML text; missing values as an en dash."""
    if _missing(value):
        return "\u2013"
    return html.escape(str(value), quote=True)


def format_p(value: Any) -> str:
    """A p-value as the paper prints it: 3 decimals, `<0.001` below that."""
    if _missing(value):
        return "\u2013"
    return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def _fixed(value: Any, digits: int = 2, suffix: str = "") -> str:
    if _missing(value):
        return "\u2013"
    return f"{float(value):.{digits}f}{suffix}"


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:].lower() if text.isupper() else text


def _category_label(variable: str, category: Any) -> str:
    text = str(category)
    if variable in SENTENCE_CASE_VARIABLES:
        return _sentence_case(text)
    if variable == "Type of immunotherapy":
        return f"{text} inhibitor" if text.upper() != "OTHER" else "Other"
    return text


def _image(images: Mapping[str, bytes], name: str, alt: str, caption: str) -> str:
    png = images.get(name)
    if png is None:
        return f'<p class="note">{_e(alt)}: not drawn.</p>'
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """A table from already-escaped cells."""
    head = "".join(f"<th>{cell}</th>" for cell in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    attribute = f' class="{css}"' if css else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _attrition_html(attrition: pd.DataFrame) -> str:
    rows = []
    for row in attrition.itertuples():
        status = str(row.status)
        label = (
            "Evaluable for TGK<sub>pre</sub> and TGK<sub>post</sub>"
            if status == figures.EVALUABLE_STATUS
            else _e(figures.EXCLUSION_LABELS.get(status, status.replace("_", " ").capitalize()))
        )
        rows.append(
            [_e(row.step), label, f"<code>{_e(status)}</code>", _e(row.n), _e(row.n_remaining)]
        )
    return _table(["Step", "Status", "Code", "Subjects", "Still in before the step"], rows)


def _table1_html(content: ReportContent) -> str:
    frame = content.table1.sort_values(["variable_order", "category_order"])
    tests = list(dict.fromkeys(str(t) for t in frame["test"]))
    marks = {test: chr(ord("a") + i) for i, test in enumerate(tests)}
    all_n, no_n, hpd_n = content.table1_subjects
    no_label, hpd_label = content.group_labels
    headers = [
        "",
        f"All patients (n = {all_n})",
        f"{_e(no_label)} (n = {no_n})",
        f"{_e(hpd_label)} (n = {hpd_n})",
        "P value",
    ]
    body: list[str] = []
    missing: list[str] = []
    for variable, rows in frame.groupby("variable_order", sort=True):
        del variable
        first = rows.iloc[0]
        name = str(first["variable"])
        label = TABLE1_VARIABLE_LABELS.get(name, name)
        p_cell = (
            f'<td class="p">{_e(format_p(first["p_value"]))}'
            f"<sup>{_e(marks[str(first['test'])])}</sup></td>"
        )
        with_value = (
            int(rows["all_n"].sum()) if pd.notna(first["category"]) else int(first["all_n"])
        )
        if with_value < all_n:
            missing.append(f"{label}: known for {with_value} of {all_n}")
        if pd.isna(first["category"]):
            body.append(
                f'<tr class="variable"><th scope="row">{_e(label)}</th>'
                f"<td>{_e(first['all_summary'])}</td><td>{_e(first['no_hpd_summary'])}</td>"
                f"<td>{_e(first['hpd_summary'])}</td>{p_cell}</tr>"
            )
            continue
        body.append(
            f'<tr class="variable"><th scope="row">{_e(label)}</th>'
            f"<td></td><td></td><td></td>{p_cell}</tr>"
        )
        for _, row in rows.iterrows():
            body.append(
                f'<tr class="category"><td>{_e(_category_label(name, row["category"]))}</td>'
                f"<td>{_e(row['all_summary'])}</td><td>{_e(row['no_hpd_summary'])}</td>"
                f'<td>{_e(row["hpd_summary"])}</td><td class="p"></td></tr>'
            )
    head = "".join(f"<th>{cell}</th>" for cell in headers)
    notes = "; ".join(f"<sup>{_e(m)}</sup> {_e(t)}" for t, m in marks.items())
    extra = (
        f" Percentages are among the subjects with a value ({_e('; '.join(missing))})."
        if missing
        else ""
    )
    not_judged = (
        f" {content.table1_not_judged} evaluable subjects not judged by this definition are "
        "left out."
        if content.table1_not_judged
        else ""
    )
    return (
        f'<table class="table1"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
        f"</table>"
        f'<p class="footnote">P values: {notes}. Categorical variables: Fisher\'s exact test '
        "(Freeman\u2013Halton for larger tables) when an expected count is below 5, else "
        "Pearson's \u03c7\u00b2; numbers: Student's t-test when both groups pass "
        "Shapiro\u2013Wilk at 0.05, else Mann\u2013Whitney U (normal approximation with tie "
        "correction). Metastatic sites are shown as \u22642 / >2 and tested as a number. "
        "PD-L1 positive means a combined positive score \u2265 1."
        f"{extra}{not_judged} Abbreviations: MMR mismatch repair, pMMR mismatch repair "
        "proficient, dMMR mismatch repair deficient.</p>"
    )


def _definitions_html(definitions: pd.DataFrame, selected: str) -> str:
    rows = []
    for row in definitions.itertuples():
        marker = " (used in this report)" if row.definition_id == selected else ""
        rows.append(
            [
                f"<code>{_e(row.definition_id)}</code>{_e(marker)}",
                _e(getattr(row, "name", None)),
                _e(getattr(row, "rule", None)),
                _e(row.judged),
                _e(row.hpd),
                _fixed(row.hpd_percent, 1, "%"),
            ]
        )
    return _table(
        ["Definition", "Name", "HPD when", "Judged", "HPD", "HPD among judged"],
        rows,
        css="definitions",
    )


def _agreement_html(agreement: pd.DataFrame) -> str:
    rows = [
        [
            f"<code>{_e(row.definition_a)}</code>",
            f"<code>{_e(row.definition_b)}</code>",
            _e(row.judged_by_both),
            _e(row.hpd_by_a),
            _e(row.hpd_by_b),
            _e(row.hpd_by_both),
            _fixed(row.jaccard_index, 2),
            _fixed(row.cohens_kappa, 2),
        ]
        for row in agreement.itertuples()
    ]
    return _table(
        [
            "Definition A",
            "Definition B",
            "Judged by both",
            "HPD by A",
            "HPD by B",
            "HPD by both",
            "Jaccard index",
            "Cohen's \u03ba",
        ],
        rows,
    )


def _or_nr(value: Any, missing: str = "NR") -> str:
    """A median or a confidence limit in months; `missing` when not reached."""
    if _missing(value):
        return missing
    return f"{float(value):.1f}"


def _survival_html(summary: pd.DataFrame, definition: str) -> str:
    rows = []
    for row in summary.itertuples():
        median = _or_nr(row.median_os_months, "not reached")
        interval = f"{_or_nr(row.median_ci_lower)}\u2013{_or_nr(row.median_ci_upper)}"
        rows.append(
            [
                _e(row.hpd_group),
                _e(row.subjects),
                _e(row.events),
                _e(median),
                _e(interval),
                _e(getattr(row, "unknown_time", 0)),
            ]
        )
    p_all = summary["logrank_p"].dropna()
    p_pair = (
        summary["logrank_p_hpd_vs_not_hpd"].dropna()
        if "logrank_p_hpd_vs_not_hpd" in summary
        else pd.Series(dtype=float)
    )
    text = (
        "<p>Log-rank test across the groups shown: p = "
        f"{_e(format_p(p_all.iloc[0]) if len(p_all) else chr(0x2013))}; "
        "HPD vs not HPD among the judged subjects: p = "
        f"{_e(format_p(p_pair.iloc[0]) if len(p_pair) else chr(0x2013))}.</p>"
    )
    note = (
        '<p class="footnote">Overall survival from the first dose to death or last contact, '
        f"for every treated subject. Groups by <code>{_e(definition)}</code>: subjects the "
        "definition cannot judge (for the TGK ratio, the subjects not evaluable) form a third "
        "group, <em>Not judged</em>, rather than being pooled with the non-HPD subjects. "
        "Medians with 95% confidence intervals (log-log, Greenwood); NR: not reached. "
        "Deaths without a date are left out of the curves (column \u201cunknown time\u201d).</p>"
    )
    return (
        _table(
            ["Group", "Subjects", "Deaths", "Median OS (months)", "95% CI", "Unknown time"], rows
        )
        + text
        + note
    )


def _hpd_subjects_html(subjects: pd.DataFrame) -> str:
    """The hyperprogressive subjects, the first `HPD_LISTING_LIMIT` of them:
    a large warehouse has tens of thousands, which belong in the warehouse
    (`analytics.hpd_classification`), not in a page."""
    if subjects.empty:
        return '<p class="note">No hyperprogressive subject.</p>'
    total = len(subjects)
    listed = subjects.head(HPD_LISTING_LIMIT)
    note = (
        f'<p class="note">The first {len(listed)} of {total} hyperprogressive subjects, by '
        "subject identifier; all of them are in <code>analytics.hpd_classification</code>.</p>"
        if total > len(listed)
        else ""
    )
    rows = [
        [
            _e(row.usubjid),
            _fixed(row.tgk_pre, 2),
            _fixed(row.tgk_post, 2),
            _fixed(row.tgkr, 2),
            _fixed(row.pct_change_first_evaluation, 0, "%"),
            _e(row.response_first_evaluation_irrecist),
        ]
        for row in listed.itertuples()
    ]
    return note + _table(
        [
            "Subject",
            "TGK<sub>pre</sub> (mm/month)",
            "TGK<sub>post</sub> (mm/month)",
            "TGKR",
            "Change at first evaluation",
            "irRECIST response",
        ],
        rows,
    )


CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #1d1d1d;
       margin: 0; background: #fafafa; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; background: #ffffff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #2e6f9e; padding-bottom: 4px; margin-top: 2em; }
.meta { color: #555; font-size: 0.92em; }
.meta code { word-break: break-all; }
table { border-collapse: collapse; margin: 12px 0; font-size: 0.9em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e1e1e1; text-align: left;
         vertical-align: top; }
thead th { border-bottom: 2px solid #444; background: #f1f5f9; }
td.p { text-align: right; white-space: nowrap; }
table.table1 tr.variable th { font-weight: bold; }
table.table1 tr.category td:first-child { padding-left: 28px; }
table.definitions td:nth-child(3) { max-width: 420px; font-size: 0.92em; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e5e5; }
figcaption, .footnote, .note { color: #555; font-size: 0.88em; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.92em; }
"""


def render_html(content: ReportContent) -> str:
    """The report as one self-contained HTML page (inline CSS, images as data
    URIs, no script, no external resource). Every data value is escaped.

    Its size does not grow with the subjects: the tables are summaries, the
    listing of hyperprogressive subjects is capped (`HPD_LISTING_LIMIT`) and
    the figures summarise large cohorts (`hpd.figures`)."""
    images = content.images
    captions = content.captions
    no_label, hpd_label = content.group_labels
    generated = content.generated_at.strftime("%Y-%m-%d %H:%M %Z").strip()
    sections = [
        f"<h1>{_e(content.title)}</h1>",
        '<p class="meta">Generated ',
        f"{_e(generated)} from the warehouse <code>{_e(content.warehouse)}</code>. ",
        f"Hyperprogression definition: <code>{_e(content.definition)}</code> ",
        f"({_e(content.definition_name)}). Reproduces the analyses of Ji et al., "
        "BMC Cancer 2019;19:705.</p>",
        "<h2>1. Study selection (Figure 1)</h2>",
        _image(
            images,
            "flowchart",
            "Figure 1: flowchart of the study selection",
            "Figure 1. Treated subjects, the reasons they leave the analysis, and the subjects "
            "evaluable for the tumor growth kinetics (TGK) before and on immunotherapy.",
        ),
        _attrition_html(content.attrition),
        "<h2>2. Patient characteristics (Table 1)</h2>",
        f"<p>Evaluable subjects, {_e(no_label)} vs {_e(hpd_label)} "
        f"(definition <code>{_e(content.definition)}</code>).</p>",
        _table1_html(content),
        "<h2>3. Hyperprogression definitions</h2>",
        "<p>Subjects judged and called hyperprogressive (HPD) by each definition.</p>",
        _definitions_html(content.definitions, content.definition),
        "<h3>Agreement between definitions</h3>",
        "<p>For each pair, over the subjects judged by both.</p>",
        _agreement_html(content.agreement),
        "<h2>4. Overall survival</h2>",
        _survival_html(content.survival_summary, content.definition),
        _image(
            images,
            "kaplan_meier",
            "Kaplan-Meier curves of overall survival by hyperprogression group",
            captions.get(
                "kaplan_meier",
                "Kaplan\u2013Meier estimates of overall survival by group; ticks mark censored "
                "subjects; the medians are in the legend and the table above.",
            ),
        ),
        "<h2>5. Tumor growth kinetics (Figure 2)</h2>",
        _image(
            images,
            "tgk",
            "Figure 2: TGK post against TGK pre",
            captions.get(
                "tgk",
                "Figure 2. TGK on immunotherapy (TGK<sub>post</sub>) against TGK before it "
                "(TGK<sub>pre</sub>) for the evaluable subjects; lines through the origin of "
                "ratio 1 and 2. Hyperprogressive subjects are labelled.",
            ),
        ),
        "<h3>Hyperprogressive subjects</h3>",
        _hpd_subjects_html(content.hpd_subjects),
        "<h2>6. Tumor burden of the hyperprogressors (Figure 4)</h2>",
        _image(
            images,
            "burden",
            "Figure 4: tumor burden of the hyperprogressors",
            captions.get(
                "burden",
                "Figure 4. irRECIST tumor burden at the pre-baseline, baseline and first "
                "evaluation scans of each hyperprogressive subject.",
            ),
        ),
        "<h2>7. Change at the first evaluation</h2>",
        _image(
            images,
            "waterfall",
            "Waterfall plot of the change in tumor burden at the first evaluation",
            captions.get(
                "waterfall",
                "Change in irRECIST burden from baseline to the first evaluation, coloured by "
                "the irRECIST response; dashed lines at +20% and \u221230%.",
            ),
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(content.title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{''.join(sections)}\n</main>\n</body>\n</html>\n"
    )
