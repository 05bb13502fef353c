"""The figures of a large cohort (SPEC §5 at a million subjects): summaries
instead of a label, a line or a bar per subject, rasterized, and said so.

The assertions are on the artists drawn, not on time: a per-subject drawing
would show up as thousands of texts, lines or patches."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hpd import figures
from hpd.statistics import kaplan_meier

LARGE = 200_000


def _kinetics(n: int, hpd_share: float = 0.1, seed: int = 3) -> pd.DataFrame:
    """Made-up evaluable subjects with the columns the figures read."""
    rng = np.random.default_rng(seed)
    tgk_pre = rng.normal(5, 8, n)
    hpd = rng.random(n) < hpd_share
    tgk_pre[hpd] = np.abs(tgk_pre[hpd]) + 0.5
    tgk_post = np.where(hpd, tgk_pre * rng.uniform(2, 6, n), tgk_pre * rng.uniform(-1, 1.9, n))
    change = np.where(hpd, rng.uniform(50, 900, n), rng.normal(5, 30, n))
    response = np.select([change >= 20, change <= -30], ["PD", "PR"], "SD").astype(object)
    response[rng.random(n) < 0.01] = None  # not evaluable at the first evaluation
    first_dose = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D")
    return pd.DataFrame(
        {
            "usubjid": [f"S-{i:07d}" for i in range(n)],
            "evaluability": "evaluable",
            "tgk_pre": tgk_pre,
            "tgk_post": tgk_post,
            "tgkr": tgk_post / tgk_pre,
            "pct_change_first_evaluation": change,
            "response_first_evaluation_irrecist": response,
            "hpd": hpd,
            "first_dose_date": first_dose,
            "pre_baseline_date": first_dose - pd.to_timedelta(rng.integers(30, 120, n), "D"),
            "baseline_date": first_dose - pd.to_timedelta(rng.integers(1, 25, n), "D"),
            "first_evaluation_date": first_dose + pd.to_timedelta(rng.integers(40, 70, n), "D"),
            "s_pre_mm": rng.uniform(20, 80, n),
            "s_baseline_mm": rng.uniform(40, 120, n),
            "s_first_evaluation_mm": rng.uniform(60, 300, n),
        }
    )


@pytest.fixture(scope="module")
def large() -> pd.DataFrame:
    return _kinetics(LARGE)


def _texts(figure: Figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _legend_texts(figure: Figure) -> list[str]:
    legends = [ax.get_legend() for ax in figure.axes] + list(figure.legends)
    return [text.get_text() for legend in legends if legend for text in legend.get_texts()]


# --------------------------------------------------------------------------- Figure 2


def test_tgk_scatter_of_many_subjects_is_a_rasterized_density(large: pd.DataFrame) -> None:
    figure = figures.tgk_scatter(large)
    ax = figure.axes[0]
    assert _texts(figure) == []  # no subject labelled
    assert "density" in ax.get_title(loc="left")
    rasterized = [c for c in ax.collections if c.get_rasterized()]
    assert len(rasterized) == 2  # not HPD, HPD
    # Hexagons, not one marker per subject.
    assert all(len(c.get_paths()) + len(c.get_offsets()) < 20_000 for c in rasterized)
    hpd = int(large["hpd"].sum())
    assert any(f"HPD ({hpd}; not labelled" in text for text in _legend_texts(figure))
    assert _png(figure).startswith(b"\x89PNG")


def test_tgk_scatter_labels_a_dozen_hyperprogressors_at_most() -> None:
    few = _kinetics(60, hpd_share=0.0, seed=4)
    few.loc[:4, "hpd"] = True
    figure = figures.tgk_scatter(few)
    assert sorted(_texts(figure)) == sorted(few.loc[:4, "usubjid"])
    assert not any(c.get_rasterized() for c in figure.axes[0].collections)
    many = _kinetics(60, hpd_share=0.0, seed=4)
    many.loc[: figures.LABEL_LIMIT, "hpd"] = True  # one more than the limit
    figure = figures.tgk_scatter(many)
    assert _texts(figure) == []
    assert any("not labelled" in text for text in _legend_texts(figure))
    assert "density" not in figure.axes[0].get_title(loc="left")  # still a marker per subject


# --------------------------------------------------------------------------- Figure 4


def test_burden_of_many_hyperprogressors_is_a_median_and_a_sample(large: pd.DataFrame) -> None:
    hyperprogressors = large.loc[large["hpd"]]
    assert len(hyperprogressors) > 10_000
    figure = figures.burden_trajectories(hyperprogressors)
    ax = figure.axes[0]
    assert "median and interquartile range" in ax.get_title(loc="left")
    assert f"n = {len(hyperprogressors)}" in ax.get_title(loc="left")
    texts = _texts(figure)
    assert len(texts) <= 3 and not any(text.startswith("S-") for text in texts)
    samples = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_rasterized()]
    assert len(samples) == 1 and len(samples[0].get_segments()) == figures.BURDEN_SAMPLE
    assert len(ax.lines) < 10  # the median, its whiskers, the first-dose line
    assert any("at random" in text for text in _legend_texts(figure))
    # The sample is fixed: the same subjects every time.
    again = figures.burden_trajectories(hyperprogressors).axes[0]
    again_samples = [c for c in again.collections if isinstance(c, LineCollection)]
    for first, second in zip(
        samples[0].get_segments(), again_samples[0].get_segments(), strict=True
    ):
        assert np.array_equal(first, second)
    assert _png(figure).startswith(b"\x89PNG")


def test_burden_of_a_few_hyperprogressors_draws_each_of_them() -> None:
    few = _kinetics(40, hpd_share=0.0, seed=5)
    few.loc[:6, "hpd"] = True
    figure = figures.burden_trajectories(few)
    ax = figure.axes[0]
    assert ax.get_title(loc="left") == "Figure 4. Tumor burden of the hyperprogressors (n = 7)"
    labelled = [text for text in _texts(figure) if text.startswith("S-")]
    assert len(labelled) == 7
    assert len([line for line in ax.lines if line.get_marker() == "o"]) == 7


# --------------------------------------------------------------------------- waterfall


def test_waterfall_of_many_subjects_is_filled_columns(large: pd.DataFrame) -> None:
    figure = figures.waterfall(large)
    ax = figure.axes[0]
    assert len(ax.patches) == 0  # no bar per subject
    columns = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_rasterized()]
    assert len(columns) == 2  # the columns, the strip of hyperprogressors
    assert all(len(c.get_paths()) == figures.WATERFALL_COLUMNS for c in columns)
    texts = _texts(figure)
    # The +20% / -30% labels and one note; no value printed per bar, no star.
    assert len(texts) == 3 and "★" not in texts
    assert any(f"{LARGE} subjects in columns" in text for text in texts)
    truncated = int((large["pct_change_first_evaluation"] > 200).sum())
    assert any(f"{truncated} changes above 200%" in text for text in texts)
    assert _png(figure).startswith(b"\x89PNG")


def test_waterfall_columns_are_the_mean_of_their_subjects() -> None:
    # 2000 subjects, 1000 columns of 2: each column as high as the mean
    # change of its two subjects (sorted best first).
    data = _kinetics(2000, seed=6)
    figure = figures.waterfall(data, cap_percent=10_000)
    ax = figure.axes[0]
    columns = next(c for c in ax.collections if isinstance(c, PolyCollection))
    heights = np.array([path.vertices[:, 1].max() for path in columns.get_paths()])
    heights = np.where(
        heights > 0, heights, [path.vertices[:, 1].min() for path in columns.get_paths()]
    )
    expected = np.sort(data["pct_change_first_evaluation"].to_numpy())[::-1].reshape(-1, 2)
    assert heights == pytest.approx(expected.mean(axis=1))


def test_waterfall_of_a_few_subjects_has_a_bar_each() -> None:
    data = _kinetics(30, seed=7)
    figure = figures.waterfall(data)
    ax = figure.axes[0]
    assert len(ax.patches) == 30
    assert not any(c.get_rasterized() for c in ax.collections)
    assert sum(text == "★" for text in _texts(figure)) == int(data["hpd"].sum())


# --------------------------------------------------------------------------- Kaplan-Meier


def test_kaplan_meier_of_many_subjects_leaves_out_the_censor_ticks() -> None:
    rng = np.random.default_rng(8)
    time = np.round(rng.exponential(12, LARGE) * 30) / 30
    event = rng.random(LARGE) < 0.6
    curve = kaplan_meier(time, event)
    assert int((curve["censored"] > 0).sum()) > figures.KM_CENSOR_TICK_LIMIT
    small = kaplan_meier([1, 2, 3, 4], [True, False, True, False])
    figure = figures.km_curves({"Large": curve, "Small": small})
    ax = figure.axes[0]
    ticks = [line for line in ax.lines if line.get_marker() == "|"]
    assert len(ticks) == 1 and len(ticks[0].get_xdata()) == 2  # the small curve's
    legend = _legend_texts(figure)
    assert "censored (where marked)" in legend
    assert any("not marked" in text for text in legend)
    assert all(isinstance(line, Line2D) for line in ax.lines)
