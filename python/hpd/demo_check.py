"""An independent, plain recomputation of the demo cohort's numbers from its CSV files.

It does not share code with the warehouse or with `hpd.demo_cohort`: it reads the
seven SDTM files, applies SPEC section 2 literally (for a single reader and
clean data, which is all the demo needs), prints the 45-subject summary and
Table 1, and compares every number SPEC section 6 asks for with the paper.

    PYTHONPATH=python python -m hpd.demo_check [DIR]

Exit status 0 when every expectation holds, 1 otherwise.
"""

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from scipy import stats

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / "seeds" / "demo"

MONTH = 30.4375
TOL = 1e-9
NODAL = "LYMPH NODE"
DRUG_CLASS = {
    "nivolumab": "PD-1",
    "pembrolizumab": "PD-1",
    "camrelizumab": "PD-1",
    "sintilimab": "PD-1",
    "tislelizumab": "PD-1",
    "toripalimab": "PD-1",
    "cemiplimab": "PD-1",
    "atezolizumab": "PD-L1",
    "durvalumab": "PD-L1",
    "avelumab": "PD-L1",
    "ipilimumab": "CTLA-4",
    "tremelimumab": "CTLA-4",
}
CLASS_ORDER = ("PD-1", "PD-L1", "CTLA-4", "OTHER")


def ge(a: float, b: float) -> bool:
    """a >= b with the SPEC's relative tolerance (rule 9)."""
    return a >= b or math.isclose(a, b, rel_tol=TOL)


def le(a: float, b: float) -> bool:
    return a <= b or math.isclose(a, b, rel_tol=TOL)


def months(a: date, b: date) -> float:
    return (b - a).days / MONTH


@dataclass
class Assessment:
    visitnum: float
    when: date
    target_sum: float | None = None
    complete: bool = False
    burden: float | None = None
    nontarget_states: list[str] = field(default_factory=list)
    new_present: bool = False
    targets: dict[str, float] = field(default_factory=dict)
    new_sizes: dict[str, float] = field(default_factory=dict)
    role: str = "other"
    irrecist: str = ""
    recist: str = ""
    pct_baseline: float | None = None


@dataclass
class Result:
    usubjid: str
    status: str
    first_dose: date
    assessments: list[Assessment]
    tgk_pre: float | None = None
    tgk_post: float | None = None
    tgkr: float | None = None
    hpd: bool | None = None
    resp1: str = ""
    resp2: str = ""
    pseudo: bool | None = None
    pct1: float | None = None
    months_first_eval: float | None = None
    months_death: float | None = None
    stop_reason: str = ""


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def measure(row: pd.Series) -> float | None:
    """Rule 4: NOT DONE, ABSENT, a number with its unit (mm or cm), else not assessed."""
    if row["TRSTAT"].upper() == "NOT DONE":
        return None
    if row["TRSTRESC"].upper() in ("ABSENT", "NOT PRESENT"):
        return 0.0
    for value, unit in ((row["TRSTRESN"], row["TRSTRESU"]), (row["TRORRES"], row["TRORRESU"])):
        try:
            x = float(value)
        except ValueError:
            continue
        unit = unit.lower()
        if unit in ("", "mm"):
            return x
        if unit == "cm":
            return 10 * x
        return None
    return None


def judge(value: float, nadir: float, baseline: float, other_pd: bool, cr: bool) -> str:
    """SPEC section 2 responses, decided in the order PD, CR, PR, SD (rule 7)."""
    if other_pd or (ge(value, 1.2 * nadir) and ge(value - nadir, 5)):
        return "PD"
    if cr:
        return "CR"
    if le(value, 0.7 * baseline):
        return "PR"
    return "SD"


def subject_result(
    usubjid: str, first_dose: date, tu: pd.DataFrame, tr: pd.DataFrame, stop: str
) -> Result:
    lesions = tu.drop_duplicates("TULNKID").set_index("TULNKID")
    role_of = {k: (r["TUSTRESC"] or r["TUORRES"]).upper() for k, r in lesions.iterrows()}
    organ_of = {k: (r["TULOC"] or "UNKNOWN").upper() for k, r in lesions.iterrows()}
    targets = [k for k, v in role_of.items() if v == "TARGET"]

    assessments: list[Assessment] = []
    for vnum, rows in tr.groupby("VISITNUM"):
        a = Assessment(float(vnum), min(date.fromisoformat(d[:10]) for d in rows["TRDTC"]))
        for _, r in rows.iterrows():
            lid = r["TRLNKID"]
            kind, organ = role_of.get(lid), organ_of.get(lid)
            test = r["TRTESTCD"]
            size_test = "LPERP" if organ == NODAL else "LDIAM"
            if test == size_test:
                x = measure(r)
                if x is None:
                    continue
                if kind == "TARGET":
                    a.targets[lid] = x
                elif kind == "NEW":
                    a.new_sizes[lid] = x
                    a.new_present = a.new_present or x > 0
            elif test == "TUMSTATE":
                state = r["TRSTRESC"].upper() or r["TRORRES"].upper()
                if kind == "NON-TARGET":
                    a.nontarget_states.append(state)
                elif kind == "NEW" and state in ("PRESENT", "UNEQUIVOCAL"):
                    a.new_present = True
        a.complete = bool(targets) and all(t in a.targets for t in targets)
        a.target_sum = sum(a.targets.values()) if a.targets else None
        assessments.append(a)
    assessments.sort(key=lambda a: (a.when, a.visitnum))

    # Roles (rule 1: over all assessments).
    before = [a for a in assessments if a.when <= first_dose and (first_dose - a.when).days <= 42]
    baseline = before[-1] if before else None
    pre = None
    if baseline:
        window = [
            a
            for a in assessments
            if 14 <= (baseline.when - a.when).days <= 183 and a.when < baseline.when
        ]
        pre = window[-1] if window else None
    after = [a for a in assessments if a.when > first_dose]
    first = after[0] if after else None
    second = after[1] if len(after) > 1 else None
    for a, role in ((pre, "pre_baseline"), (baseline, "baseline"), (first, "first_evaluation")):
        if a:
            a.role = role
    for a in after[1:]:
        a.role = "follow_up"

    # irRECIST burden: measurable new lesions, 5 slots, 2 per organ (rule 8).
    counted: list[str] = []
    for a in assessments:
        sizes = a.new_sizes
        fresh = [
            (lid, x)
            for lid, x in sizes.items()
            if lid not in counted
            and ge(x, 15 if organ_of[lid] == NODAL else 10)
            and a.when > (baseline.when if baseline else date.min)
        ]
        for lid, _x in sorted(fresh, key=lambda t: (-t[1], t[0])):
            same_organ = sum(1 for c in counted if organ_of[c] == organ_of[lid])
            if len(counted) < 5 and same_organ < 2:
                counted.append(lid)
        extra = sum(sizes[c] for c in counted if c in sizes)
        a.burden = None if a.target_sum is None else a.target_sum + extra
    for a in (pre, baseline):
        if a:
            a.burden = a.target_sum

    # Responses at complete post-baseline assessments.
    if baseline and baseline.complete:
        done: list[Assessment] = []
        for a in [x for x in assessments if x.when > baseline.when]:
            if not a.complete:
                a.irrecist = a.recist = "NE"
                continue
            nadir = min([baseline.burden] + [d.burden for d in done])
            nadir_sum = min([baseline.target_sum] + [d.target_sum for d in done])
            nodal_ok = all(
                (x < 10) if organ_of[t] == NODAL else (x == 0) for t, x in a.targets.items()
            )
            nts = a.nontarget_states
            cr = nodal_ok and not a.new_present and all(s == "ABSENT" for s in nts)
            unequivocal = any(s.startswith("UNEQUIVOCAL") for s in nts)

            a.irrecist = judge(a.burden, nadir, baseline.burden, unequivocal, cr)
            a.recist = judge(
                a.target_sum, nadir_sum, baseline.target_sum, unequivocal or a.new_present, cr
            )
            if baseline.burden:
                a.pct_baseline = 100 * (a.burden - baseline.burden) / baseline.burden
            done.append(a)

    if baseline is None:
        status = "no_baseline_scan"
    elif first is None:
        status = "no_first_evaluation"
    elif pre is None:
        status = "no_pre_baseline_scan"
    elif not (pre.complete and baseline.complete and first.complete):
        status = "incomplete_measurements"
    else:
        status = "evaluable"

    res = Result(usubjid, status, first_dose, assessments, stop_reason=stop)
    if first:
        res.resp1 = first.irrecist
        res.resp2 = second.irrecist if second else ""
        res.pseudo = res.resp1 == "PD" and res.resp2 in ("SD", "PR", "CR")
        res.pct1 = first.pct_baseline
        res.months_first_eval = months(first_dose, first.when)
    if status == "evaluable":
        res.tgk_pre = (baseline.burden - pre.burden) / months(pre.when, baseline.when)
        res.tgk_post = (first.burden - baseline.burden) / months(baseline.when, first.when)
        res.tgkr = res.tgk_post / res.tgk_pre if res.tgk_pre != 0 else None
        res.hpd = res.tgk_pre > 0 and res.tgkr is not None and ge(res.tgkr, 2)
    return res


def freeman_halton(table: list[list[int]]) -> float:
    """Two-sided exact test for an r x 2 table (Fisher's test when r = 2)."""
    rows = [sum(r) for r in table]
    col0 = sum(r[0] for r in table)
    n = sum(rows)
    const = sum(math.lgamma(x + 1) for x in rows) + math.lgamma(col0 + 1)
    const += math.lgamma(n - col0 + 1) - math.lgamma(n + 1)

    def log_p(cells: list[int]) -> float:
        return const - sum(
            math.lgamma(a + 1) + math.lgamma(r - a + 1) for a, r in zip(cells, rows, strict=True)
        )

    observed = math.exp(log_p([r[0] for r in table]))
    total = 0.0

    def walk(i: int, left: int, cells: list[int]) -> None:
        nonlocal total
        if i == len(rows) - 1:
            if 0 <= left <= rows[i]:
                p = math.exp(log_p([*cells, left]))
                if p <= observed * (1 + 1e-7):
                    total += p
            return
        for a in range(min(rows[i], left) + 1):
            walk(i + 1, left - a, [*cells, a])

    walk(0, col0, [])
    return min(total, 1.0)


def categorical_p(table: list[list[int]]) -> tuple[float, str]:
    rows = [sum(r) for r in table]
    cols = [sum(c) for c in zip(*table, strict=True)]
    n = sum(rows)
    if any(r * c / n < 5 for r in rows for c in cols):
        return freeman_halton(table), "Fisher"
    chi2 = stats.chi2_contingency(table, correction=False)
    return float(chi2.pvalue), "chi2"


def numeric_p(x: Sequence[float], y: Sequence[float]) -> tuple[float, str]:
    if stats.shapiro(x).pvalue >= 0.05 and stats.shapiro(y).pvalue >= 0.05:
        return float(stats.ttest_ind(x, y).pvalue), "t-test"
    mw = stats.mannwhitneyu(
        x, y, alternative="two-sided", use_continuity=False, method="asymptotic"
    )
    return float(mw.pvalue), "Mann-Whitney"


def fmt(x: float | None, nd: int = 2) -> str:
    return "" if x is None else f"{x:.{nd}f}"


class Checker:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def expect(self, what: str, got: object, want: object) -> None:
        ok = got == want
        print(f"  [{'ok' if ok else 'FAIL'}] {what}: {got}" + ("" if ok else f" (want {want})"))
        if not ok:
            self.failures.append(what)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    folder = Path(args[0]) if args else DEFAULT_DIR
    dm, ex, tu, tr, ds, qs, sc = (
        read(folder, n) for n in ("dm", "ex", "tu", "tr", "ds", "qs", "sc")
    )
    investigator = ("INVESTIGATOR", "")
    tu = tu[tu["TUEVAL"].str.upper().isin(investigator)]
    tr = tr[tr["TREVAL"].str.upper().isin(investigator)]

    results: list[Result] = []
    for _, d in dm.iterrows():
        u = d["USUBJID"]
        starts = ex.loc[ex["USUBJID"] == u, "EXSTDTC"]
        first_dose = date.fromisoformat(min(starts) if len(starts) else d["RFXSTDTC"])
        stops = ds[
            (ds["USUBJID"] == u)
            & (ds["DSCAT"] == "DISPOSITION EVENT")
            & ~ds["DSDECOD"].isin(["COMPLETED", "SCREEN FAILURE"])
        ].sort_values("DSSTDTC")
        stop = stops["DSDECOD"].iloc[0] if len(stops) else ""
        r = subject_result(u, first_dose, tu[tu["USUBJID"] == u], tr[tr["USUBJID"] == u], stop)
        if d["DTHDTC"]:
            r.months_death = months(first_dose, date.fromisoformat(d["DTHDTC"]))
        results.append(r)

    def char(u: str, code: str) -> str:
        hit = sc[(sc["USUBJID"] == u) & (sc["SCTESTCD"] == code)]["SCORRES"]
        return hit.iloc[0] if len(hit) else ""

    def ecog(r: Result) -> str:
        q = qs[(qs["USUBJID"] == r.usubjid) & (qs["QSTESTCD"] == "ECOG101")]
        q = q[q["QSDTC"].map(date.fromisoformat) <= r.first_dose]
        return q.sort_values(["QSDTC", "QSSTRESN"]).iloc[-1]["QSSTRESN"] if len(q) else ""

    def regimen(u: str) -> str:
        classes = {DRUG_CLASS.get(t.lower(), "OTHER") for t in ex[ex["USUBJID"] == u]["EXTRT"]}
        return " + ".join(c for c in CLASS_ORDER if c in classes)

    demo = dm.set_index("USUBJID")
    print(f"Demo cohort in {folder}: {len(results)} treated subjects\n")
    header = (
        f"{'USUBJID':18} {'status':22} {'HPD':5} {'resp1':5} {'resp2':5} {'pseudo':6} "
        f"{'TGK_pre':>8} {'TGK_post':>9} {'TGKR':>7} {'%chg1':>8} {'stop':20}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.usubjid:18} {r.status:22} {'' if r.hpd is None else str(r.hpd):5} "
            f"{r.resp1:5} {r.resp2:5} {'' if r.pseudo is None else str(r.pseudo):6} "
            f"{fmt(r.tgk_pre):>8} {fmt(r.tgk_post):>9} {fmt(r.tgkr, 3):>7} "
            f"{fmt(r.pct1):>8} {r.stop_reason:20}"
        )

    c = Checker()
    print("\nFlowchart (Figure 1)")
    statuses = [r.status for r in results]
    for s, n in (
        ("no_baseline_scan", 0),
        ("no_first_evaluation", 8),
        ("no_pre_baseline_scan", 12),
        ("incomplete_measurements", 0),
        ("evaluable", 25),
    ):
        c.expect(s, statuses.count(s), n)

    ev = [r for r in results if r.status == "evaluable"]
    hpd = [r for r in ev if r.hpd]
    non = [r for r in ev if not r.hpd]
    print("\nKinetics and responses among the evaluable")
    c.expect("HPD by TGKR", len(hpd), 5)
    c.expect(
        "TGK_pre <= 0 with a bare ratio >= 2",
        sum(1 for r in ev if r.tgk_pre <= 0 and r.tgkr is not None and r.tgkr >= 2),
        0,
    )
    c.expect(
        "TGKR within 0.05 of 2",
        sum(1 for r in ev if r.tgkr is not None and abs(r.tgkr - 2) < 0.05),
        0,
    )
    c.expect("undefined TGKR (TGK_pre = 0)", sum(1 for r in ev if r.tgkr is None), 0)
    for resp, n in (("PD", 15), ("SD", 8), ("PR", 2), ("CR", 0)):
        c.expect(f"irRECIST {resp} at first evaluation", sum(r.resp1 == resp for r in ev), n)
    pseudo = [r for r in results if r.pseudo]
    c.expect("pseudoprogressions (any subject)", len(pseudo), 2)
    c.expect("pseudoprogressions among the evaluable", sum(1 for r in pseudo if r in ev), 2)
    c.expect(
        "pseudoprogression primary sites",
        sorted(char(r.usubjid, "PRIMSITE") for r in pseudo),
        ["COLORECTAL", "COLORECTAL"],
    )
    c.expect("pseudoprogression TGKRs", sorted(round(r.tgkr or 0, 2) for r in pseudo), [0.11, 1.67])
    c.expect("pseudoprogression second evaluations", [r.resp2 for r in pseudo], ["SD", "SD"])

    print("\nThe five case reports (order of the paper)")
    cases = [
        (31, "F", "COLORECTAL", "ADENOCARCINOMA", "PD-L1", 1.2, 863, 3.6, 1),
        (63, "F", "STOMACH", "ADENOCARCINOMA", "PD-L1", 1.4, 107, 7.4, 3),
        (63, "M", "COLORECTAL", "NEUROENDOCRINE CARCINOMA", "PD-L1", 0.94, 139, 2.1, 5),
        (65, "M", "STOMACH", "NEUROENDOCRINE CARCINOMA", "PD-L1", 1.4, 44, 5.6, 1),
        (49, "M", "ESOPHAGUS", "NEUROENDOCRINE CARCINOMA", "PD-L1 + CTLA-4", 1.2, 538, 3.8, 1),
    ]
    unmatched = list(hpd)
    for i, (age, sex, site, hist, reg, m1, pct, mdeath, mets) in enumerate(cases, start=1):
        match = [
            r
            for r in unmatched
            if int(demo.loc[r.usubjid, "AGE"]) == age
            and demo.loc[r.usubjid, "SEX"] == sex
            and char(r.usubjid, "PRIMSITE") == site
            and char(r.usubjid, "HISTOL") == hist
            and regimen(r.usubjid) == reg
            and int(char(r.usubjid, "METSITES")) == mets
        ]
        if len(match) != 1:
            c.expect(f"case #{i} found once among the HPD", len(match), 1)
            continue
        r = match[0]
        unmatched.remove(r)
        print(
            f"  case #{i} {r.usubjid}: first evaluation {r.months_first_eval:.4f} mo, "
            f"burden {r.pct1:+.2f}%, death {r.months_death:.4f} mo, TGKR {r.tgkr:.2f}"
        )
        c.expect(
            f"case #{i} months to first evaluation ~{m1}",
            abs(r.months_first_eval - m1) <= 0.02,
            True,
        )
        c.expect(f"case #{i} percent increase {pct}", abs(r.pct1 - pct) <= 0.5, True)
        c.expect(f"case #{i} months to death ~{mdeath}", abs(r.months_death - mdeath) <= 0.02, True)
        c.expect(f"case #{i} PD at first evaluation", r.resp1, "PD")

    print("\nTable 1 (evaluable: all / TGKR<2 / TGKR>=2)")

    def row(
        label: str, key, cats: Sequence[str], want: dict[str, tuple[int, int]], p_want: float
    ) -> None:
        table = []
        for cat in cats:
            a, b = sum(key(r) == cat for r in non), sum(key(r) == cat for r in hpd)
            table.append([a, b])
            print(f"  {label:14} {cat:26} {a + b:3} {a:3} {b:3}")
            c.expect(f"{label} {cat}", (a, b), want[cat])
        p, test = categorical_p(table)
        print(f"  {label:14} p = {p:.3f} ({test})")
        c.expect(f"{label} p-value", round(p, 3), p_want)

    def cps_group(r: Result) -> str:
        v = char(r.usubjid, "PDL1CPS")
        return "" if v == "" else ("positive" if float(v) >= 1 else "negative")

    row(
        "gender", lambda r: demo.loc[r.usubjid, "SEX"], ["M", "F"], {"M": (14, 3), "F": (6, 2)}, 1.0
    )
    row("ECOG", ecog, ["0", "1"], {"0": (10, 4), "1": (10, 1)}, 0.341)
    sites = ["STOMACH", "ESOPHAGUS", "COLORECTAL", "LIVER", "PANCREAS", "AMPULLA"]
    row(
        "location",
        lambda r: char(r.usubjid, "PRIMSITE"),
        sites,
        dict(zip(sites, [(6, 2), (6, 1), (5, 2), (1, 0), (1, 0), (1, 0)], strict=True)),
        1.0,
    )
    hists = [
        "ADENOCARCINOMA",
        "SQUAMOUS CELL CARCINOMA",
        "NEUROENDOCRINE CARCINOMA",
        "HEPATOCELLULAR CARCINOMA",
    ]
    row(
        "histology",
        lambda r: char(r.usubjid, "HISTOL"),
        hists,
        dict(zip(hists, [(12, 2), (6, 0), (1, 3), (1, 0)], strict=True)),
        0.032,
    )
    regs = ["PD-1", "PD-L1", "PD-L1 + CTLA-4"]
    row(
        "immunotherapy",
        lambda r: regimen(r.usubjid),
        regs,
        dict(zip(regs, [(6, 0), (12, 4), (2, 1)], strict=True)),
        0.447,
    )
    row(
        "MMR",
        lambda r: char(r.usubjid, "MMR"),
        ["pMMR", "dMMR"],
        {"pMMR": (4, 2), "dMMR": (8, 1)},
        0.525,
    )
    row("PD-L1", cps_group, ["positive", "negative"], {"positive": (5, 1), "negative": (6, 1)}, 1.0)

    def ms(r: Result) -> str:
        return "<=2" if int(char(r.usubjid, "METSITES")) <= 2 else ">2"

    for cat, want in (("<=2", (13, 3)), (">2", (7, 2))):
        got = (sum(ms(r) == cat for r in non), sum(ms(r) == cat for r in hpd))
        print(f"  {'metastatic':14} {cat:26} {sum(got):3} {got[0]:3} {got[1]:3}")
        c.expect(f"metastatic sites {cat}", got, want)

    ages = {
        g: [int(demo.loc[r.usubjid, "AGE"]) for r in rs]
        for g, rs in (("all", ev), ("non", non), ("hpd", hpd))
    }
    for g, want in (("all", (54, 22, 77)), ("non", (52, 22, 77)), ("hpd", (63, 31, 65))):
        v = ages[g]
        got = (float(pd.Series(v).median()), min(v), max(v))
        print(f"  age {g:4} median {got[0]:g} range {got[1]}-{got[2]}")
        c.expect(f"age {g} median (range)", got, (float(want[0]), want[1], want[2]))
    c.expect("HPD ages", sorted(ages["hpd"]), [31, 49, 63, 63, 65])
    p, test = numeric_p(ages["non"], ages["hpd"])
    print(f"  age p = {p:.6f} ({test})")
    c.expect("age p-value", round(p, 3), 0.587)
    m_non = [int(char(r.usubjid, "METSITES")) for r in non]
    m_hpd = [int(char(r.usubjid, "METSITES")) for r in hpd]
    p, test = numeric_p(m_non, m_hpd)
    print(f"  metastatic sites p = {p:.6f} ({test})")
    c.expect("metastatic sites p-value", round(p, 3), 0.749)
    c.expect("MMR tested", sum(char(r.usubjid, "MMR") != "" for r in ev), 15)
    c.expect("PD-L1 tested", sum(char(r.usubjid, "PDL1CPS") != "" for r in ev), 13)

    print("\nData hygiene")
    every = [a for r in results for a in r.assessments]
    c.expect("incomplete assessments", sum(not a.complete for a in every), 0)
    c.expect("CR at any assessment", sum(a.irrecist == "CR" for a in every), 0)
    lesion_organ = dict(zip(tu["USUBJID"] + "/" + tu["TULNKID"], tu["TULOC"], strict=True))
    small = [
        f"{r.usubjid}/{lid}"
        for r in results
        for a in r.assessments
        if a.role == "baseline"
        for lid, x in a.targets.items()
        if x < (15 if lesion_organ[f"{r.usubjid}/{lid}"] == NODAL else 10)
    ]
    c.expect("targets not measurable at baseline", small, [])
    gaps = [
        (b.when - a.when).days
        for r in results
        for a, b in zip(r.assessments, r.assessments[1:], strict=False)
        if a.role != "pre_baseline" and b.when > r.first_dose
    ]
    print(f"  days between consecutive on-treatment scans: {min(gaps)}-{max(gaps)}")
    pre_gaps = [
        (b.when - a.when).days
        for r in ev
        for a, b in zip(r.assessments, r.assessments[1:], strict=False)
        if a.role == "pre_baseline"
    ]
    print(f"  days from pre-baseline to baseline CT: {min(pre_gaps)}-{max(pre_gaps)}")

    print()
    if c.failures:
        print(f"{len(c.failures)} expectation(s) failed: {', '.join(c.failures)}")
        return 1
    print("All expectations hold.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
