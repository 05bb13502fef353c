"""`make bench` (python/hpd/bench.py): a smoke run at a tiny size, the
agreement check that keeps figures from being printed, and the run record's
stages in the table and targets. No timing is asserted."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from hpd import bench
from hpd.bench import Measurement, SizeResult
from hpd.core_kinetics import COLUMNS

REPO = Path(__file__).resolve().parents[1]


def test_smoke_run_agrees_and_writes_csv_and_plot(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpd.bench",
            "--sizes",
            "300",
            "--out",
            str(tmp_path / "out"),
            "--data",
            str(tmp_path / "data"),
            # Spark's row is measured by hand (README, "Choosing DuckDB,
            # PostgreSQL or Spark"); its refresh is tested in test_spark.py.
            "--skip-spark-above",
            "0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the warehouse, hand SQL, pandas and pandas (tuned) agree on the core kinetics" in (
        result.stdout
    )
    assert "Targets" in result.stdout and "Machine:" in result.stdout

    with (tmp_path / "out" / "bench.csv").open(encoding="utf-8") as handle:
        rows = {row["measure"]: row for row in csv.DictReader(handle)}
    for measure in ("hpd run", "hand SQL", "pandas"):
        assert rows[measure]["subjects"] == "300"
        assert rows[measure]["status"] == "ok"
        assert float(rows[measure]["seconds"]) > 0
        assert int(rows[measure]["peak_rss_bytes"]) > 0
    assert rows["hpd run on Spark"]["status"] == "skipped"
    assert rows["hpd run"]["machine_cpu"]
    if importlib.util.find_spec("hpd.runs") is not None:
        # `hpd run` writes a run record: its stages are in the CSV and the table.
        assert float(rows["hpd run/dbt_build"]["seconds"]) > 0
        assert float(rows["hpd run/load"]["seconds"]) > 0
        lines = result.stdout.splitlines()
        dbt_build = next(line for line in lines if line.startswith("  dbt build"))
        assert float(dbt_build.split()[-1]) > 0
    assert int(rows["hpd run"]["tr_rows"]) > 0
    assert (tmp_path / "out" / "bench.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # The exports are kept for the next run; the scratch warehouses are not.
    assert (tmp_path / "data" / "synth-300.json").is_file()
    assert not (tmp_path / "out" / "scratch").exists()


def _kinetics() -> pd.DataFrame:
    row = dict.fromkeys(COLUMNS)
    row.update(
        usubjid="S-1",
        evaluability="evaluable",
        first_dose_date=date(2018, 1, 10),
        pre_baseline_date=date(2017, 11, 1),
        baseline_date=date(2018, 1, 2),
        first_evaluation_date=date(2018, 2, 20),
        target_sum_pre_mm=40.0,
        tgk_pre=1.5,
        tgkr=2.5,
    )
    other = {**row, "usubjid": "S-2", "evaluability": "no_pre_baseline_scan", "tgkr": None}
    return pd.DataFrame([row, other], columns=list(COLUMNS))


def test_disagreement_is_found_and_described() -> None:
    warehouse = _kinetics()
    changed = warehouse.copy()
    changed.loc[1, "tgkr"] = 3.0  # null in the warehouse
    found = bench.disagreements(warehouse, {"hand SQL": warehouse.copy(), "pandas": changed})
    assert list(found) == ["pandas"]
    [difference] = found["pandas"]
    assert difference.startswith("S-2 tgkr:") and difference.endswith("vs 3.0")
    text = bench.describe_disagreements(300, found)
    assert "disagree; no figures" in text and "S-2 tgkr" in text


def test_disagreement_exits_1_without_figures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def bench_size(subjects: int, *_: object) -> tuple[SizeResult, dict[str, list[str]]]:
        result = SizeResult(subjects, 10, Measurement(1.0, 1), Measurement(2.0, 2))
        return result, {"pandas": ["S-2 tgkr: None vs 3.0"]}

    monkeypatch.setattr(bench, "bench_size", bench_size)
    status = bench.main(["--sizes", "300", "--out", str(tmp_path), "--data", str(tmp_path)])
    output = capsys.readouterr().out
    assert status == 1
    assert "S-2 tgkr: None vs 3.0" in output
    assert "Targets" not in output and "hpd run (whole refresh)" not in output
    assert not (tmp_path / "bench.csv").exists()


def _result(subjects: int, run_s: float, dbt_s: float, sql_s: float, pandas_s: float) -> SizeResult:
    stages = {
        "load": Measurement(run_s * 0.2, 500 * bench.MIB),
        "quality_exports": Measurement(1.0, 400 * bench.MIB),
        "dbt_build": Measurement(dbt_s, 3 * bench.GIB),
        "quality_marts": Measurement(1.0, 400 * bench.MIB),
        "statistics_report": Measurement(2.0, 600 * bench.MIB),
        "outputs": Measurement(1.0, 500 * bench.MIB),
        "docs": Measurement(3.0, 500 * bench.MIB),
        "publish": Measurement(0.1, 500 * bench.MIB),
    }
    return SizeResult(
        subjects,
        subjects * 17,
        Measurement(5.0, None, bench.CACHED),
        Measurement(run_s, int(3.5 * bench.GIB)),
        stages,
        {"sql": Measurement(sql_s, bench.GIB), "pandas": Measurement(pandas_s, 10 * bench.GIB)},
    )


def test_run_record_stages(tmp_path: Path) -> None:
    record = {
        "run_id": "20250101T000000Z",
        "status": "success",
        "rows": {"tr": 1234},
        "stages": [
            {"name": "load", "seconds": 1.5, "peak_rss_bytes": 100},
            {"name": "dbt_build", "seconds": 4.0, "peak_rss_bytes": 300},
            {"name": "publish", "seconds": 0.1, "peak_rss_bytes": None},
        ],
    }
    folder = tmp_path / "runs" / record["run_id"]
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(record), encoding="utf-8")
    read = bench.run_record(tmp_path / "warehouse.duckdb")
    stages = bench.stages_of(read)
    assert list(stages) == ["load", "dbt_build", "publish"]
    assert stages["dbt_build"] == Measurement(4.0, 300)
    assert bench.read_tr_rows(tmp_path / "warehouse.duckdb", read) == 1234
    assert bench.run_record(tmp_path / "elsewhere" / "warehouse.duckdb") is None


def test_targets_and_table_from_stages() -> None:
    results = [
        _result(100_000, run_s=20.0, dbt_s=8.0, sql_s=3.0, pandas_s=150.0),
        _result(1_000_000, run_s=150.0, dbt_s=60.0, sql_s=30.0, pandas_s=900.0),
    ]
    verdicts = {t.name: (t.measured, t.verdict) for t in bench.evaluate_targets(results)}
    assert verdicts["1M subjects end to end (hpd run)"] == ("150.0 s", "FAIL")
    assert verdicts["1M subjects peak memory (hpd run)"] == ("3.50 GiB", "PASS")
    assert verdicts["dbt build / hand SQL at 1M"] == ("2.00x", "PASS")
    # hpd core at 100k = load (0.2 x 20 s) + dbt build (8 s) = 12 s; 150 / 12 = 12.5
    assert verdicts["pandas / hpd core (load + dbt build) at 100k"] == ("12.5x", "PASS")
    assert verdicts["hpd run time growth 100k -> 1M"] == ("7.50x (exponent 0.88)", "PASS")

    table = bench.format_table(results)
    assert "quality (exports + marts)" in table and "12.00" in table  # hpd core at 100k
    rows = bench.csv_rows(results, {"cpu": "test"}, "2025-01-01T00:00:00+00:00")
    assert {row["measure"] for row in rows} >= {"hpd run", "hpd run/dbt_build", "pandas"}
    assert set(bench.plot_series(results)) == {"hpd run", "dbt build", "hand SQL", "pandas"}


def test_pandas_out_of_memory_and_skip_are_shown() -> None:
    result = _result(1_000_000, run_s=150.0, dbt_s=60.0, sql_s=30.0, pandas_s=900.0)
    result.baselines["pandas"] = Measurement(None, 20 * bench.GIB, bench.OUT_OF_MEMORY, "killed")
    table = bench.format_table([result])
    assert "out of memory" in table
    assert bench.pandas_over_core(result) is None
    assert bench.parse_sizes("1k, 10k,1M,300") == [300, 1_000, 10_000, 1_000_000]
