"""DuckDB's fast parsing macros give what the portable regular-expression ones give.

`sdtm_date`, `sdtm_date_imputed` and `try_cast_number` have a `default__`
variant written with regular expressions (PostgreSQL runs it) and a
`duckdb__` variant written with string functions, for speed. Both are
compiled by dbt from the project's macros and evaluated in DuckDB over every
short string of the characters that matter and mutations of real dates.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path

import duckdb
import pytest

from hpd.dbt_build import run_dbt

MACROS = ("sdtm_date", "sdtm_date_imputed", "try_cast_number")


def _compiled(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Each macro's DuckDB and default variant, compiled for column `x`."""
    selects = ", ".join(
        f"{{{{ hpd.{name}('x') }}}} as {name}__fast, {{{{ hpd.default__{name}('x') }}}} as {name}__portable"
        for name in MACROS
    )
    outcome = run_dbt(
        ["compile", "--inline", f"select {selects} from strings"],
        tmp_path / "compile.duckdb",
        {},
        tmp_path / "dbt",
    )
    assert outcome.success, outcome.failures
    results = json.loads((tmp_path / "dbt" / "target" / "run_results.json").read_text())
    sql = results["results"][0]["compiled_code"]
    expressions = re.split(r"\s+as\s+(\w+)__(fast|portable)\s*,?", sql.removeprefix("select"))
    pairs: dict[str, dict[str, str]] = {}
    for expression, name, variant in zip(
        expressions[0::3], expressions[1::3], expressions[2::3], strict=False
    ):
        pairs.setdefault(name, {})[variant] = expression.strip()
    return {name: (pairs[name]["fast"], pairs[name]["portable"]) for name in MACROS}


def _number_strings() -> list[str]:
    alphabet = ["0", "1", "9", "+", "-", ".", "e", "E"]
    strings = ["".join(p) for n in range(1, 6) for p in itertools.product(alphabet, repeat=n)]
    return [*strings, "1e400", "-1e-400", "9" * 400, "nan", "inf", "Infinity", " 1", "1_0", "0x1"]


def _date_strings() -> list[str]:
    real = [
        "2017-03-02", "2016-02-29", "2017-02-29", "2017-03", "2017", "2017-03-02T10:30",
        "2017-03-02 10:30", "2017-03-02T", "2017-03-02T\n1", "0000-01-01", "9999-12-31",
        "2017-13", "2017-03-32", "\uff12\uff10\uff11\uff17-03-02",  # full-width digits
    ]  # fmt: skip
    characters = list("0123456789-T :x\n")
    strings = set(real)
    for text in real:
        for i, c in itertools.product(range(len(text) + 1), characters):
            strings.update({text[:i] + c + text[i + 1 :], text[:i] + c + text[i:], text[:i]})
    generator = random.Random(7)
    for _ in range(20000):
        strings.add("".join(generator.choice(characters) for _ in range(generator.randint(0, 14))))
    return sorted(strings)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    return _compiled(tmp_path_factory.mktemp("parsing"))


@pytest.mark.parametrize(
    ("name", "strings"),
    [
        ("try_cast_number", _number_strings()),
        ("sdtm_date", _date_strings()),
        ("sdtm_date_imputed", _date_strings()),
    ],
)
def test_fast_variant_agrees_with_the_regular_expressions(
    compiled: dict[str, tuple[str, str]], name: str, strings: list[str]
) -> None:
    fast, portable = compiled[name]
    assert "regexp" not in fast and "regexp" in portable
    con = duckdb.connect()
    con.execute("create table strings as select unnest(?::varchar[]) as x", [[*strings, None]])
    disagreements = con.execute(
        f"select x, {portable} as portable, {fast} as fast from strings "
        "where portable is distinct from fast limit 5"
    ).fetchall()
    assert disagreements == []
    parsed = con.execute(f"select count({portable}) from strings").fetchone()
    assert parsed is not None and parsed[0] > 10  # the strings do exercise the parser
