"""The bundled demo cohort: the paper's 45 patients, reconstructed as SDTM exports.

BMC Cancer 2019;19:705 (hyperprogression after immune checkpoint inhibitors in
malignant tumors of the digestive system) reports 45 treated patients: 8 stopped
before a first tumor evaluation, 12 had no pre-baseline CT and 25 were evaluable,
5 of them hyperprogressors (TGKR >= 2). This module declares those 45 subjects
as plain data, one small record each, and expands them into the seven SDTM
files the warehouse reads (SPEC section 6; docs/demo_cohort.md explains every
choice). It is deterministic: no randomness, no clock.

    PYTHONPATH=python python -m hpd.demo_cohort [OUT_DIR]

writes dm, ex, tu, tr, ds, qs and sc .csv into OUT_DIR (default: seeds/demo of
the repository).
"""

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT_DIR = REPO_ROOT / "seeds" / "demo"

#: Data cut-off: subjects alive then are censored at this date (last contact).
DATA_CUTOFF = date(2017, 10, 31)
#: The paper's accrual window for the first dose.
FIRST_DOSE_WINDOW = (date(2016, 8, 1), date(2017, 5, 31))
#: SPEC: the baseline scan is at most this many days before the first dose.
BASELINE_MAX_DAYS = 42
#: SPEC: measurable new lesions (mm): 10, nodal short axis 15.
MEASURABLE_MM = 10
MEASURABLE_NODAL_MM = 15

READER = "INVESTIGATOR"
NODAL = "LYMPH NODE"
TUMOR_STATES = ("PRESENT", "ABSENT", "UNEQUIVOCAL")

#: The columns of each file, in order (SDTM variable names).
COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(header.split(","))
    for name, header in {
        "dm": "STUDYID,DOMAIN,USUBJID,SUBJID,RFXSTDTC,RFPENDTC,DTHDTC,DTHFL,SEX,AGE,ARM",
        "ex": "STUDYID,DOMAIN,USUBJID,EXSEQ,EXTRT,EXSTDTC,EXENDTC",
        "tu": "STUDYID,DOMAIN,USUBJID,TUSEQ,TULNKID,TUTESTCD,TUORRES,TUSTRESC,TULOC,TUEVAL,"
        "TUEVALID,TUACPTFL,VISITNUM,VISIT,TUDTC",
        "tr": "STUDYID,DOMAIN,USUBJID,TRSEQ,TRLNKID,TRTESTCD,TRTEST,TRORRES,TRORRESU,TRSTRESC,"
        "TRSTRESN,TRSTRESU,TRSTAT,TREVAL,TREVALID,TRACPTFL,VISITNUM,VISIT,TRDTC",
        "ds": "STUDYID,DOMAIN,USUBJID,DSSEQ,DSTERM,DSDECOD,DSCAT,DSSTDTC",
        "qs": "STUDYID,DOMAIN,USUBJID,QSSEQ,QSTESTCD,QSTEST,QSORRES,QSSTRESN,QSDTC",
        "sc": "STUDYID,DOMAIN,USUBJID,SCSEQ,SCTESTCD,SCTEST,SCORRES",
    }.items()
}


@dataclass(frozen=True)
class Drug:
    """One study drug of a regimen: EXTRT, days between infusions, doses at most."""

    extrt: str
    every_days: int
    max_doses: int | None = None


@dataclass(frozen=True)
class Regimen:
    arm: str
    drugs: tuple[Drug, ...]


REGIMENS: dict[str, Regimen] = {
    "atezolizumab": Regimen("Atezolizumab 1200 mg IV Q3W", (Drug("atezolizumab", 21),)),
    "durvalumab": Regimen("Durvalumab 20 mg/kg IV Q4W", (Drug("durvalumab", 28),)),
    "durvalumab+tremelimumab": Regimen(
        "Durvalumab 20 mg/kg + Tremelimumab 1 mg/kg IV Q4W",
        (Drug("durvalumab", 28), Drug("tremelimumab", 28, max_doses=4)),
    ),
    "toripalimab": Regimen("Toripalimab 3 mg/kg IV Q2W", (Drug("toripalimab", 14),)),
    "camrelizumab": Regimen("Camrelizumab 200 mg IV Q2W", (Drug("camrelizumab", 14),)),
}


@dataclass(frozen=True)
class Target:
    """A target lesion and its size (mm) at every scan of the subject, in order.

    Nodal lesions (organ LYMPH NODE) are measured by their short axis (LPERP),
    all others by their longest diameter (LDIAM).
    """

    organ: str
    sizes: tuple[int, ...]


@dataclass(frozen=True)
class NonTarget:
    """A non-target lesion; its TUMSTATE at every scan (empty: PRESENT throughout)."""

    organ: str
    states: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewLesion:
    """A new lesion first seen at scan index `first_scan` (0 = the earliest scan).

    `results` holds one value per scan from `first_scan` on: a size in mm when it
    was measured, or a TUMSTATE ("PRESENT") when it was not measurable.
    """

    organ: str
    first_scan: int
    results: tuple[int | str, ...]


def target(organ: str, *sizes: int) -> Target:
    return Target(organ, sizes)


def nontarget(organ: str, *states: str) -> NonTarget:
    return NonTarget(organ, states)


def new(organ: str, first_scan: int, *results: int | str) -> NewLesion:
    return NewLesion(organ, first_scan, results)


@dataclass(frozen=True)
class Subject:
    """One subject of the demo cohort.

    `group` is a label for people reading this file and the docs; the warehouse
    derives every status from the SDTM rows alone. Days are calendar-day
    differences from the first dose (0 = the first dose, negative = before it).
    `scans` are the CT dates: the ones on or before the first dose are the
    pre-baseline (when there are two) and screening scans, the later ones the
    evaluations (VISIT WEEK 6, WEEK 12, ...). Each target holds one size per
    scan. `stop` is the treatment discontinuation (day, DSDECOD, DSTERM);
    `death` the day of death; subjects alive are censored at DATA_CUTOFF.
    `ecog` is the screening value; `ecog_after` later (day, value) pairs.
    """

    usubjid: str
    group: str
    sex: str
    age: int
    ecog: int
    primary: str
    histology: str
    metsites: int
    mmr: str | None
    pdl1_cps: float | None
    regimen: str
    first_dose: str
    scans: tuple[int, ...]
    targets: tuple[Target, ...]
    nontargets: tuple[NonTarget, ...] = ()
    new: tuple[NewLesion, ...] = ()
    stop: tuple[int, str, str] | None = None
    death: int | None = None
    ecog_after: tuple[tuple[int, int], ...] = ()
    unscheduled_first_evaluation: bool = False

    @property
    def studyid(self) -> str:
        return self.usubjid.rsplit("-", 1)[0]

    @property
    def dose_date(self) -> date:
        return date.fromisoformat(self.first_dose)

    def day(self, offset: int) -> date:
        return self.dose_date + timedelta(days=offset)


# fmt: off
SUBJECTS: tuple[Subject, ...] = (
    # The five hyperprogressors: the paper's case reports #1 to #5. Timings are whole
    # days (1.2 mo = 37 d, 1.4 mo = 43 d, 0.94 mo = 29 d); first-evaluation burdens
    # are +863%, +107%, +139%, +44%, +538% of baseline to the integer percent.
    # Case 1: right-colon signet-ring cell carcinoma, MSI-H (dMMR), PD-L1 negative,
    # peritoneum only; new breast, ovary, vertebral (T3 T9 T12 L2) and nodal lesions.
    Subject(
        "NCT02825940-0003", "HPD case 1", "F", 31, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=1,
        mmr="dMMR", pdl1_cps=0, regimen="atezolizumab",
        first_dose="2016-09-06", scans=(-68, -6, 37),
        targets=(
            target("PERITONEUM", 13, 17, 38),
            target("PERITONEUM", 7, 10, 24),
        ),
        new=(
            new("OVARY", 2, 68),
            new("OVARY", 2, 60),
            new("BREAST", 2, 42),
            new("LYMPH NODE", 2, 28),
            new("BONE", 2, "PRESENT"),
            new("BONE", 2, "PRESENT"),
            new("BONE", 2, "PRESENT"),
            new("BONE", 2, "PRESENT"),
        ),
        stop=(39, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=110,
        ecog_after=((39, 2),),
    ),
    # Case 2: HER2+ gastric adenocarcinoma, slow liver/lung/peritoneum progression
    # before; rapid liver progression and a new liver lesion on atezolizumab.
    Subject(
        "NCT02825940-0005", "HPD case 2", "F", 63, ecog=0,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=3,
        mmr="pMMR", pdl1_cps=5, regimen="atezolizumab",
        first_dose="2016-10-11", scans=(-71, -8, 43),
        targets=(
            target("LIVER", 41, 44, 78),
            target("LIVER", 24, 26, 46),
            target("LUNG", 13, 14, 15),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        new=(
            new("LIVER", 2, 35),
        ),
        stop=(45, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=225,
    ),
    # Case 3: colon NEC (lung, liver, spleen, peritoneum, nodes); CT after two cycles
    # for abdominal distension: new brain and adrenal lesions.
    Subject(
        "NCT02825940-0007", "HPD case 3", "M", 63, ecog=1,
        primary="COLORECTAL", histology="NEUROENDOCRINE CARCINOMA", metsites=5,
        mmr="pMMR", pdl1_cps=None, regimen="atezolizumab",
        first_dose="2016-11-15", scans=(-63, -7, 29),
        targets=(
            target("LIVER", 38, 45, 88),
            target("LIVER", 24, 30, 57),
            target("PERITONEUM", 20, 25, 52),
        ),
        nontargets=(
            nontarget("LUNG"),
            nontarget("SPLEEN"),
            nontarget("LYMPH NODE"),
        ),
        new=(
            new("BRAIN", 2, 18),
            new("ADRENAL GLAND", 2, 24),
        ),
        stop=(30, "PROGRESSIVE DISEASE", "CLINICAL AND RADIOLOGICAL PROGRESSION"),
        death=64,
        ecog_after=((30, 3),),
        unscheduled_first_evaluation=True,
    ),
    # Case 4: gastric NEC, liver only; the liver masses +44%.
    Subject(
        "NCT02825940-0010", "HPD case 4", "M", 65, ecog=0,
        primary="STOMACH", histology="NEUROENDOCRINE CARCINOMA", metsites=1,
        mmr=None, pdl1_cps=None, regimen="atezolizumab",
        first_dose="2017-01-10", scans=(-69, -9, 43),
        targets=(
            target("LIVER", 27, 32, 46),
            target("LIVER", 15, 18, 26),
        ),
        stop=(45, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=170,
    ),
    # Case 5: esophageal NEC, mediastinal nodes; CT for bowel obstruction: new lung,
    # liver and vertebral (T10-12, L2-4; L3 with a measurable soft-tissue mass) lesions.
    Subject(
        "NCT03167853-0001", "HPD case 5", "M", 49, ecog=0,
        primary="ESOPHAGUS", histology="NEUROENDOCRINE CARCINOMA", metsites=1,
        mmr=None, pdl1_cps=None, regimen="durvalumab+tremelimumab",
        first_dose="2017-05-09", scans=(-66, -10, 37),
        targets=(
            target("LYMPH NODE", 20, 24, 30),
            target("LYMPH NODE", 15, 18, 22),
        ),
        new=(
            new("LIVER", 2, 70),
            new("LIVER", 2, 55),
            new("LUNG", 2, 42),
            new("LUNG", 2, 25),
            new("BONE", 2, 24),
            new("BONE", 2, "PRESENT"),
            new("BONE", 2, "PRESENT"),
            new("BONE", 2, "PRESENT"),
            new("BONE", 2, "PRESENT"),
            new("BONE", 2, "PRESENT"),
        ),
        stop=(38, "PROGRESSIVE DISEASE", "CLINICAL AND RADIOLOGICAL PROGRESSION"),
        death=116,
        unscheduled_first_evaluation=True,
    ),
    # The 20 other evaluable subjects: 2 pseudoprogressions, 8 PD, 8 SD, 2 PR. Their ages
    # and metastatic-site counts were searched so that Table 1's tests give the paper's
    # p-values (age 0.587, t-test; metastatic sites 0.749, Mann-Whitney).
    # Pseudoprogression 1 (colon): PD by burden at week 6 (TGKR 1.67), SD at week 12.
    Subject(
        "NCT02825940-0014", "pseudoprogression, TGKR 1.67", "M", 41, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=2,
        mmr="dMMR", pdl1_cps=3, regimen="atezolizumab",
        first_dose="2017-03-14", scans=(-68, -9, 44, 86, 128, 170, 212),
        targets=(
            target("LIVER", 24, 30, 39, 34, 29, 28, 27),
            target("LYMPH NODE", 16, 20, 26, 22, 20, 18, 18),
        ),
    ),
    # Pseudoprogression 2 (colon): the burden barely moves (TGKR 0.11), PD at week 6
    # comes from an unequivocal progression of the peritoneal non-target; SD at week 12.
    Subject(
        "NCT02978482-0011", "pseudoprogression, TGKR 0.11", "F", 22, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=1,
        mmr="dMMR", pdl1_cps=None, regimen="durvalumab",
        first_dose="2017-04-18", scans=(-60, -5, 45, 87, 129, 171),
        targets=(
            target("PERITONEUM", 25, 37, 38, 35, 33, 32),
            target("PERITONEUM", 17, 25, 26, 23, 22, 22),
        ),
        nontargets=(
            nontarget(
                "PERITONEUM", "PRESENT", "PRESENT", "UNEQUIVOCAL", "PRESENT", "PRESENT", "PRESENT"
            ),
        ),
    ),
    Subject(
        "NCT02978482-0010", "non-HPD PR", "M", 37, ecog=1,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=3,
        mmr="dMMR", pdl1_cps=0, regimen="durvalumab+tremelimumab",
        first_dose="2017-04-04", scans=(-65, -6, 42, 84, 126, 168, 208),
        targets=(
            target("LIVER", 22, 29, 18, 14, 12, 12, 11),
            target("LIVER", 15, 19, 12, 9, 8, 8, 7),
            target("LUNG", 11, 14, 8, 7, 7, 5, 6),
        ),
        nontargets=(
            nontarget("LYMPH NODE"),
        ),
    ),
    Subject(
        "NCT02825940-0002", "non-HPD SD", "M", 54, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=2,
        mmr="dMMR", pdl1_cps=None, regimen="atezolizumab",
        first_dose="2016-08-23", scans=(-70, -7, 42, 85, 127),
        targets=(
            target("LIVER", 42, 47, 48, 46, 57),
            target("LUNG", 28, 31, 32, 31, 38),
        ),
        stop=(129, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=380,
    ),
    Subject(
        "NCT02978482-0003", "non-HPD PD", "F", 46, ecog=1,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=4,
        mmr="dMMR", pdl1_cps=None, regimen="durvalumab",
        first_dose="2016-12-20", scans=(-68, -8, 42),
        targets=(
            target("LIVER", 25, 34, 45),
            target("LUNG", 13, 17, 22),
            target("PERITONEUM", 17, 23, 30),
        ),
        nontargets=(
            nontarget("BONE"),
        ),
        stop=(44, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=180,
    ),
    Subject(
        "NCT02915432-0001", "non-HPD PR", "M", 60, ecog=0,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=1,
        mmr="dMMR", pdl1_cps=8, regimen="toripalimab",
        first_dose="2017-01-03", scans=(-62, -7, 42, 84, 126, 168, 210, 252, 294),
        targets=(
            target("LYMPH NODE", 23, 29, 18, 14, 12, 11, 11, 11, 11),
            target("LYMPH NODE", 22, 29, 18, 14, 12, 11, 11, 10, 10),
        ),
        nontargets=(
            nontarget("LYMPH NODE"),
        ),
    ),
    Subject(
        "NCT02915432-0003", "non-HPD PD", "M", 65, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=2,
        mmr="pMMR", pdl1_cps=0, regimen="toripalimab",
        first_dose="2017-02-14", scans=(-66, -8, 43),
        targets=(
            target("LIVER", 25, 35, 45),
            target("LIVER", 13, 17, 22),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        stop=(45, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=200,
    ),
    Subject(
        "NCT02825940-0009", "non-HPD SD", "F", 50, ecog=0,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=3,
        mmr="dMMR", pdl1_cps=4, regimen="atezolizumab",
        first_dose="2016-12-06", scans=(-64, -7, 42, 84, 126),
        targets=(
            target("LIVER", 53, 59, 56, 57, 70),
            target("LYMPH NODE", 27, 29, 28, 29, 35),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        stop=(128, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=320,
    ),
    Subject(
        "NCT02978482-0004", "non-HPD PD", "M", 62, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=1,
        mmr="pMMR", pdl1_cps=None, regimen="durvalumab",
        first_dose="2017-01-17", scans=(-60, -6, 44),
        targets=(
            target("LIVER", 38, 53, 65),
            target("LIVER", 22, 32, 39),
        ),
        new=(
            new("LIVER", 2, 8),
        ),
        stop=(46, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=250,
    ),
    Subject(
        "NCT02825940-0013", "non-HPD SD", "F", 27, ecog=0,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=2,
        mmr="dMMR", pdl1_cps=None, regimen="atezolizumab",
        first_dose="2017-02-21", scans=(-69, -8, 42, 84, 126),
        targets=(
            target("LIVER", 21, 25, 27, 28, 33),
            target("LYMPH NODE", 14, 16, 18, 19, 22),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        stop=(128, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
    ),
    Subject(
        "NCT03167853-0002", "non-HPD PD", "F", 56, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=4,
        mmr=None, pdl1_cps=0, regimen="durvalumab+tremelimumab",
        first_dose="2017-05-16", scans=(-62, -7, 42),
        targets=(
            target("LIVER", 40, 53, 75),
            target("LIVER", 30, 40, 56),
            target("LYMPH NODE", 20, 27, 38),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
            nontarget("BONE"),
        ),
        stop=(44, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=160,
    ),
    Subject(
        "NCT02915432-0005", "non-HPD SD", "M", 61, ecog=0,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=1,
        mmr=None, pdl1_cps=12, regimen="toripalimab",
        first_dose="2017-03-07", scans=(-67, -9, 42, 84, 126, 168),
        targets=(
            target("LYMPH NODE", 25, 28, 26, 25, 25, 31),
            target("LYMPH NODE", 25, 28, 26, 25, 24, 31),
        ),
        new=(
            new("LUNG", 2, 6, 6, 7, 9),
        ),
        stop=(170, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
    ),
    Subject(
        "CTR20160872-0003", "non-HPD PD", "M", 65, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=2,
        mmr=None, pdl1_cps=0, regimen="camrelizumab",
        first_dose="2016-12-27", scans=(-58, -6, 43),
        targets=(
            target("LUNG", 26, 36, 48),
            target("LYMPH NODE", 18, 24, 32),
        ),
        new=(
            new("LYMPH NODE", 2, 12),
        ),
        stop=(45, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=210,
    ),
    Subject(
        "NCT02915432-0002", "non-HPD SD", "M", 75, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=1,
        mmr=None, pdl1_cps=None, regimen="toripalimab",
        first_dose="2017-01-31", scans=(-63, -8, 42, 84, 126),
        targets=(
            target("LUNG", 22, 26, 27, 28, 34),
            target("LUNG", 18, 21, 23, 24, 29),
        ),
        stop=(128, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=255,
    ),
    Subject(
        "NCT02978482-0001", "non-HPD PD", "M", 54, ecog=0,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=3,
        mmr=None, pdl1_cps=15, regimen="durvalumab",
        first_dose="2016-11-08", scans=(-61, -7, 42, 84),
        targets=(
            target("LIVER", 39, 56, 71, 80),
            target("LYMPH NODE", 23, 34, 43, 48),
        ),
        nontargets=(
            nontarget("BONE"),
        ),
        new=(
            new("LYMPH NODE", 3, 18),
        ),
        stop=(86, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=190,
    ),
    Subject(
        "CTR20160872-0005", "non-HPD SD", "F", 44, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=1,
        mmr=None, pdl1_cps=0, regimen="camrelizumab",
        first_dose="2017-02-28", scans=(-60, -8, 42, 84, 126, 168),
        targets=(
            target("LYMPH NODE", 30, 33, 32, 31, 33, 40),
        ),
        stop=(170, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
    ),
    Subject(
        "NCT02825940-0006", "non-HPD PD", "M", 77, ecog=0,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=2,
        mmr=None, pdl1_cps=None, regimen="atezolizumab",
        first_dose="2016-10-25", scans=(-66, -8, 43),
        targets=(
            target("LUNG", 16, 23, 30),
            target("LUNG", 12, 17, 21),
        ),
        nontargets=(
            nontarget("LYMPH NODE"),
        ),
        stop=(45, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=140,
    ),
    Subject(
        "NCT02978482-0005", "non-HPD SD", "M", 32, ecog=1,
        primary="LIVER", histology="HEPATOCELLULAR CARCINOMA", metsites=3,
        mmr=None, pdl1_cps=None, regimen="durvalumab",
        first_dose="2017-02-14", scans=(-59, -6, 42, 84, 126, 168),
        targets=(
            target("LIVER", 71, 83, 89, 93, 92, 105),
            target("LUNG", 24, 27, 29, 31, 30, 35),
        ),
        nontargets=(
            nontarget("LYMPH NODE"),
            nontarget("BONE"),
        ),
        stop=(170, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
    ),
    Subject(
        "NCT02825940-0015", "non-HPD PD", "M", 31, ecog=0,
        primary="PANCREAS", histology="NEUROENDOCRINE CARCINOMA", metsites=4,
        mmr="pMMR", pdl1_cps=0, regimen="atezolizumab",
        first_dose="2017-04-11", scans=(-62, -7, 42),
        targets=(
            target("LIVER", 22, 36, 44),
            target("LIVER", 17, 27, 33),
            target("LYMPH NODE", 11, 17, 23),
        ),
        nontargets=(
            nontarget("LUNG"),
            nontarget("PERITONEUM"),
        ),
        stop=(44, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=150,
    ),
    # The only evaluable subject with TGK_pre <= 0 (shrinking before): a negative TGKR.
    Subject(
        "NCT02978482-0009", "non-HPD SD, TGK_pre < 0", "M", 40, ecog=1,
        primary="AMPULLA", histology="ADENOCARCINOMA", metsites=1,
        mmr="pMMR", pdl1_cps=None, regimen="durvalumab",
        first_dose="2017-03-28", scans=(-64, -7, 42, 84, 126, 168),
        targets=(
            target("LIVER", 33, 31, 32, 32, 33, 40),
            target("LIVER", 25, 24, 25, 24, 26, 30),
        ),
        stop=(170, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
    ),
    # The 12 subjects without a pre-baseline CT (no earlier scan at all). None is a
    # pseudoprogression: PD at week 6 is either the last scan or confirmed at week 12.
    Subject(
        "NCT02825940-0004", "no pre-baseline CT, PD", "M", 58, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=2,
        mmr=None, pdl1_cps=None, regimen="atezolizumab",
        first_dose="2016-09-20", scans=(-10, 42),
        targets=(
            target("LIVER", 40, 54),
            target("LIVER", 30, 41),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        stop=(44, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=150,
    ),
    Subject(
        "NCT02825940-0011", "no pre-baseline CT, SD", "F", 47, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=3,
        mmr="dMMR", pdl1_cps=None, regimen="atezolizumab",
        first_dose="2017-01-24", scans=(-8, 42, 84, 126),
        targets=(
            target("LIVER", 37, 39, 36, 47),
            target("LUNG", 18, 19, 18, 23),
        ),
        nontargets=(
            nontarget("LYMPH NODE"),
        ),
        stop=(128, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
    ),
    Subject(
        "NCT02978482-0006", "no pre-baseline CT, PD", "M", 66, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=2,
        mmr=None, pdl1_cps=2, regimen="durvalumab",
        first_dose="2017-02-28", scans=(-6, 42, 84),
        targets=(
            target("LYMPH NODE", 24, 31, 40),
            target("LUNG", 24, 31, 40),
        ),
        stop=(86, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=240,
    ),
    Subject(
        "NCT02978482-0012", "no pre-baseline CT, SD", "M", 52, ecog=0,
        primary="LIVER", histology="HEPATOCELLULAR CARCINOMA", metsites=1,
        mmr=None, pdl1_cps=None, regimen="durvalumab",
        first_dose="2017-05-09", scans=(-12, 42, 84, 126, 168),
        targets=(
            target("LIVER", 80, 84, 81, 83, 83),
            target("LIVER", 40, 42, 41, 42, 41),
        ),
        nontargets=(
            nontarget("LUNG"),
        ),
    ),
    Subject(
        "NCT02915432-0004", "no pre-baseline CT, PD", "M", 59, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=3,
        mmr="pMMR", pdl1_cps=2, regimen="toripalimab",
        first_dose="2017-02-21", scans=(-7, 43),
        targets=(
            target("LIVER", 24, 33),
            target("LYMPH NODE", 16, 22),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
            nontarget("BONE"),
        ),
        stop=(45, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=170,
    ),
    Subject(
        "NCT02915432-0007", "no pre-baseline CT, PR", "M", 63, ecog=0,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=1,
        mmr=None, pdl1_cps=10, regimen="toripalimab",
        first_dose="2017-04-11", scans=(-9, 42, 84, 126, 168),
        targets=(
            target("LYMPH NODE", 33, 22, 15, 13, 12),
            target("LYMPH NODE", 33, 22, 15, 13, 12),
        ),
    ),
    Subject(
        "CTR20160872-0001", "no pre-baseline CT, PD", "M", 57, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=2,
        mmr=None, pdl1_cps=None, regimen="camrelizumab",
        first_dose="2016-10-18", scans=(-11, 42),
        targets=(
            target("LUNG", 19, 24),
            target("LYMPH NODE", 16, 20),
        ),
        stop=(44, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=130,
    ),
    Subject(
        "NCT03167853-0003", "no pre-baseline CT, PD", "F", 44, ecog=1,
        primary="PANCREAS", histology="ADENOCARCINOMA", metsites=2,
        mmr=None, pdl1_cps=None, regimen="durvalumab+tremelimumab",
        first_dose="2017-05-23", scans=(-7, 42),
        targets=(
            target("LIVER", 40, 53),
            target("LIVER", 20, 27),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        stop=(44, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=150,
    ),
    Subject(
        "NCT02825940-0008", "no pre-baseline CT, SD", "M", 70, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=2,
        mmr="pMMR", pdl1_cps=None, regimen="atezolizumab",
        first_dose="2016-11-29", scans=(-9, 42, 84),
        targets=(
            target("LIVER", 35, 33, 44),
            target("LUNG", 17, 17, 22),
        ),
        stop=(86, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=300,
    ),
    Subject(
        "NCT02978482-0008", "no pre-baseline CT, SD", "F", 61, ecog=0,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=1,
        mmr=None, pdl1_cps=1, regimen="durvalumab",
        first_dose="2017-03-21", scans=(-8, 42, 84, 126),
        targets=(
            target("LIVER", 30, 32, 31, 38),
        ),
        stop=(128, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
    ),
    Subject(
        "NCT03167853-0004", "no pre-baseline CT, PR", "M", 39, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=2,
        mmr="dMMR", pdl1_cps=3, regimen="durvalumab+tremelimumab",
        first_dose="2017-05-30", scans=(-10, 42, 84, 126),
        targets=(
            target("LIVER", 53, 35, 27, 23),
            target("LYMPH NODE", 27, 17, 14, 12),
        ),
    ),
    Subject(
        "CTR20160872-0004", "no pre-baseline CT, PD", "M", 68, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=3,
        mmr=None, pdl1_cps=None, regimen="camrelizumab",
        first_dose="2017-01-03", scans=(-6, 43),
        targets=(
            target("LYMPH NODE", 26, 34),
            target("LIVER", 39, 51),
        ),
        nontargets=(
            nontarget("BONE"),
        ),
        stop=(45, "PROGRESSIVE DISEASE", "RADIOLOGICAL PROGRESSION"),
        death=200,
    ),
    # The 8 subjects who stopped before the first tumor evaluation (clinical progression
    # or toxicity): a screening CT (some also a pre-baseline one), no scan after the dose.
    Subject(
        "NCT02825940-0001", "no first evaluation", "M", 67, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=4,
        mmr=None, pdl1_cps=None, regimen="atezolizumab",
        first_dose="2016-08-16", scans=(-70, -8),
        targets=(
            target("LIVER", 30, 41),
            target("LIVER", 15, 21),
            target("LYMPH NODE", 15, 20),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
            nontarget("BONE"),
        ),
        stop=(24, "PROGRESSIVE DISEASE", "CLINICAL PROGRESSION"),
        death=52,
    ),
    Subject(
        "NCT02825940-0012", "no first evaluation", "F", 55, ecog=1,
        primary="PANCREAS", histology="ADENOCARCINOMA", metsites=3,
        mmr=None, pdl1_cps=None, regimen="atezolizumab",
        first_dose="2017-02-07", scans=(-6,),
        targets=(
            target("LIVER", 43),
            target("LIVER", 32),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
            nontarget("LUNG"),
        ),
        stop=(19, "PROGRESSIVE DISEASE", "CLINICAL PROGRESSION"),
        death=40,
    ),
    Subject(
        "NCT02978482-0002", "no first evaluation", "M", 62, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=2,
        mmr=None, pdl1_cps=1, regimen="durvalumab",
        first_dose="2016-12-13", scans=(-64, -9),
        targets=(
            target("LYMPH NODE", 20, 24),
            target("LUNG", 20, 24),
        ),
        stop=(30, "ADVERSE EVENT", "IMMUNE-RELATED PNEUMONITIS"),
        death=210,
    ),
    Subject(
        "NCT02915432-0006", "no first evaluation", "M", 48, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=3,
        mmr="pMMR", pdl1_cps=0, regimen="toripalimab",
        first_dose="2017-03-28", scans=(-10,),
        targets=(
            target("LIVER", 60),
            target("LYMPH NODE", 30),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
            nontarget("OVARY"),
        ),
        stop=(28, "PROGRESSIVE DISEASE", "CLINICAL PROGRESSION"),
        death=75,
    ),
    Subject(
        "NCT02978482-0007", "no first evaluation", "M", 60, ecog=1,
        primary="LIVER", histology="HEPATOCELLULAR CARCINOMA", metsites=2,
        mmr=None, pdl1_cps=None, regimen="durvalumab+tremelimumab",
        first_dose="2017-03-07", scans=(-58, -7),
        targets=(
            target("LIVER", 47, 59),
            target("LUNG", 23, 29),
        ),
        nontargets=(
            nontarget("BONE"),
        ),
        stop=(22, "ADVERSE EVENT", "IMMUNE-RELATED HEPATITIS"),
        death=150,
    ),
    Subject(
        "CTR20160872-0002", "no first evaluation", "M", 71, ecog=1,
        primary="ESOPHAGUS", histology="SQUAMOUS CELL CARCINOMA", metsites=2,
        mmr=None, pdl1_cps=None, regimen="camrelizumab",
        first_dose="2016-11-22", scans=(-12,),
        targets=(
            target("LYMPH NODE", 25),
            target("LIVER", 30),
        ),
        stop=(15, "PROGRESSIVE DISEASE", "CLINICAL PROGRESSION"),
        death=24,
    ),
    Subject(
        "NCT02978482-0013", "no first evaluation", "F", 53, ecog=0,
        primary="COLORECTAL", histology="ADENOCARCINOMA", metsites=3,
        mmr="dMMR", pdl1_cps=None, regimen="durvalumab",
        first_dose="2017-05-16", scans=(-61, -9),
        targets=(
            target("LIVER", 23, 31),
            target("LUNG", 12, 16),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        stop=(33, "PROGRESSIVE DISEASE", "CLINICAL PROGRESSION"),
        death=96,
    ),
    Subject(
        "NCT02825940-0016", "no first evaluation", "M", 45, ecog=1,
        primary="STOMACH", histology="ADENOCARCINOMA", metsites=2,
        mmr=None, pdl1_cps=None, regimen="atezolizumab",
        first_dose="2017-04-25", scans=(-7,),
        targets=(
            target("LIVER", 26),
            target("LYMPH NODE", 18),
        ),
        nontargets=(
            nontarget("PERITONEUM"),
        ),
        stop=(26, "ADVERSE EVENT", "IMMUNE-RELATED COLITIS"),
    ),
)
# fmt: on


# --- expansion into SDTM rows -------------------------------------------------------------

Row = dict[str, str]


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _visits(s: Subject) -> list[tuple[str, str]]:
    """(VISITNUM, VISIT) of each scan: 1 pre-baseline, 2 screening, 3... evaluations."""
    n_pre = sum(1 for d in s.scans if d <= 0)
    out: list[tuple[str, str]] = []
    for i, d in enumerate(s.scans):
        if d <= 0:
            out.append(("1", "PRE-BASELINE") if i < n_pre - 1 else ("2", "SCREENING"))
        else:
            k = i - n_pre + 1
            unscheduled = k == 1 and s.unscheduled_first_evaluation
            out.append((str(2 + k), "UNSCHEDULED" if unscheduled else f"WEEK {6 * k}"))
    return out


def _baseline_index(s: Subject) -> int:
    return max(i for i, d in enumerate(s.scans) if d <= 0)


def _last_contact(s: Subject) -> date:
    return s.day(s.death) if s.death is not None else DATA_CUTOFF


def _base(s: Subject, domain: str) -> Row:
    return {"STUDYID": s.studyid, "DOMAIN": domain, "USUBJID": s.usubjid}


def dm_rows(s: Subject) -> list[Row]:
    return [
        _base(s, "DM")
        | {
            "SUBJID": s.usubjid.rsplit("-", 1)[1],
            "RFXSTDTC": s.first_dose,
            "RFPENDTC": _iso(_last_contact(s)),
            "DTHDTC": _iso(s.day(s.death)) if s.death is not None else "",
            "DTHFL": "Y" if s.death is not None else "",
            "SEX": s.sex,
            "AGE": str(s.age),
            "ARM": REGIMENS[s.regimen].arm,
        }
    ]


def ex_rows(s: Subject) -> list[Row]:
    """One row per infusion, from the first dose until discontinuation, death or cut-off."""
    end = s.stop[0] if s.stop else (DATA_CUTOFF - s.dose_date).days + 1
    if s.death is not None:
        end = min(end, s.death)
    doses: list[tuple[int, str]] = []
    for drug in REGIMENS[s.regimen].drugs:
        offsets = range(0, end, drug.every_days)
        doses += [(d, drug.extrt) for d in list(offsets)[: drug.max_doses]]
    rows = []
    for seq, (offset, extrt) in enumerate(sorted(doses), start=1):
        when = _iso(s.day(offset))
        rows.append(
            _base(s, "EX") | {"EXSEQ": str(seq), "EXTRT": extrt, "EXSTDTC": when, "EXENDTC": when}
        )
    return rows


def _lesion_ids(s: Subject) -> tuple[list[str], list[str], list[str]]:
    return (
        [f"T{i:02d}" for i in range(1, len(s.targets) + 1)],
        [f"NT{i:02d}" for i in range(1, len(s.nontargets) + 1)],
        [f"NEW{i:02d}" for i in range(1, len(s.new) + 1)],
    )


def tu_rows(s: Subject) -> list[Row]:
    """Lesion identification: targets and non-targets at screening, new ones when first seen."""
    visits = _visits(s)
    b = _baseline_index(s)
    t_ids, nt_ids, new_ids = _lesion_ids(s)
    found: list[tuple[str, str, str, int]] = [
        *((lid, "TARGET", t.organ, b) for lid, t in zip(t_ids, s.targets, strict=True)),
        *((lid, "NON-TARGET", n.organ, b) for lid, n in zip(nt_ids, s.nontargets, strict=True)),
        *((lid, "NEW", n.organ, n.first_scan) for lid, n in zip(new_ids, s.new, strict=True)),
    ]
    rows = []
    for seq, (lid, role, organ, scan) in enumerate(found, start=1):
        rows.append(
            _base(s, "TU")
            | {
                "TUSEQ": str(seq),
                "TULNKID": lid,
                "TUTESTCD": "TUMIDENT",
                "TUORRES": role,
                "TUSTRESC": role,
                "TULOC": organ,
                "TUEVAL": READER,
                "TUEVALID": "",
                "TUACPTFL": "",
                "VISITNUM": visits[scan][0],
                "VISIT": visits[scan][1],
                "TUDTC": _iso(s.day(s.scans[scan])),
            }
        )
    return rows


def _measurement(organ: str, value: int | str) -> dict[str, str]:
    if isinstance(value, str):
        return {
            "TRTESTCD": "TUMSTATE",
            "TRTEST": "Tumor State",
            "TRORRES": value,
            "TRORRESU": "",
            "TRSTRESC": value,
            "TRSTRESN": "",
            "TRSTRESU": "",
        }
    nodal = organ == NODAL
    return {
        "TRTESTCD": "LPERP" if nodal else "LDIAM",
        "TRTEST": "Longest Perpendicular" if nodal else "Longest Diameter",
        "TRORRES": str(value),
        "TRORRESU": "mm",
        "TRSTRESC": str(value),
        "TRSTRESN": str(value),
        "TRSTRESU": "mm",
    }


def tr_rows(s: Subject) -> list[Row]:
    """Every lesion at every scan where it exists; targets also on the pre-baseline scan."""
    visits = _visits(s)
    t_ids, nt_ids, new_ids = _lesion_ids(s)
    rows: list[Row] = []
    for i, offset in enumerate(s.scans):
        results: list[tuple[str, str, int | str]] = []
        results += [(lid, t.organ, t.sizes[i]) for lid, t in zip(t_ids, s.targets, strict=True)]
        results += [
            (lid, n.organ, n.states[i] if n.states else "PRESENT")
            for lid, n in zip(nt_ids, s.nontargets, strict=True)
        ]
        results += [
            (lid, n.organ, n.results[i - n.first_scan])
            for lid, n in zip(new_ids, s.new, strict=True)
            if i >= n.first_scan
        ]
        for lid, organ, value in results:
            rows.append(
                _base(s, "TR")
                | {"TRSEQ": str(len(rows) + 1), "TRLNKID": lid}
                | _measurement(organ, value)
                | {
                    "TRSTAT": "",
                    "TREVAL": READER,
                    "TREVALID": "",
                    "TRACPTFL": "",
                    "VISITNUM": visits[i][0],
                    "VISIT": visits[i][1],
                    "TRDTC": _iso(s.day(offset)),
                }
            )
    return rows


def ds_rows(s: Subject) -> list[Row]:
    """Informed consent 3 days before the screening CT, then the discontinuation if any."""
    consent = s.day(s.scans[_baseline_index(s)] - 3)
    events = [
        ("INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", consent)
    ]
    if s.stop:
        offset, decod, term = s.stop
        events.append((term, decod, "DISPOSITION EVENT", s.day(offset)))
    return [
        _base(s, "DS")
        | {"DSSEQ": str(seq), "DSTERM": term, "DSDECOD": decod, "DSCAT": cat, "DSSTDTC": _iso(d)}
        for seq, (term, decod, cat, d) in enumerate(events, start=1)
    ]


def qs_rows(s: Subject) -> list[Row]:
    """ECOG at the screening visit, and any later value the case reports describe."""
    scores = [(s.scans[_baseline_index(s)], s.ecog), *s.ecog_after]
    return [
        _base(s, "QS")
        | {
            "QSSEQ": str(seq),
            "QSTESTCD": "ECOG101",
            "QSTEST": "ECOG1-Performance Status",
            "QSORRES": str(score),
            "QSSTRESN": str(score),
            "QSDTC": _iso(s.day(offset)),
        }
        for seq, (offset, score) in enumerate(scores, start=1)
    ]


def sc_rows(s: Subject) -> list[Row]:
    """Baseline characteristics; MMR and PD-L1 CPS only for subjects who were tested."""
    items = [
        ("PRIMSITE", "Primary Tumor Site", s.primary),
        ("HISTOL", "Histologic Type", s.histology),
        ("METSITES", "Number of Metastatic Sites", str(s.metsites)),
    ]
    if s.mmr is not None:
        items.append(("MMR", "Mismatch Repair Status", s.mmr))
    if s.pdl1_cps is not None:
        items.append(("PDL1CPS", "PD-L1 Combined Positive Score", _num(s.pdl1_cps)))
    return [
        _base(s, "SC") | {"SCSEQ": str(seq), "SCTESTCD": code, "SCTEST": test, "SCORRES": value}
        for seq, (code, test, value) in enumerate(items, start=1)
    ]


BUILDERS = {
    "dm": dm_rows,
    "ex": ex_rows,
    "tu": tu_rows,
    "tr": tr_rows,
    "ds": ds_rows,
    "qs": qs_rows,
    "sc": sc_rows,
}


# --- consistency of the declarations --------------------------------------------------------


def validate(subjects: Sequence[Subject] = SUBJECTS) -> None:
    """Fail loudly when a record contradicts the shape the expansion relies on."""
    ids = [s.usubjid for s in subjects]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate USUBJID in the demo cohort")
    for s in subjects:
        where = f"demo subject {s.usubjid}"
        n = len(s.scans)
        if list(s.scans) != sorted(set(s.scans)):
            raise ValueError(f"{where}: scans must be strictly increasing")
        if not any(d <= 0 for d in s.scans) or -s.scans[_baseline_index(s)] > BASELINE_MAX_DAYS:
            raise ValueError(f"{where}: no screening CT within {BASELINE_MAX_DAYS} days")
        if sum(1 for d in s.scans if d <= 0) > 2:
            raise ValueError(f"{where}: at most a pre-baseline and a screening CT")
        if not FIRST_DOSE_WINDOW[0] <= s.dose_date <= FIRST_DOSE_WINDOW[1]:
            raise ValueError(f"{where}: first dose outside the accrual window")
        if s.regimen not in REGIMENS:
            raise ValueError(f"{where}: unknown regimen {s.regimen}")
        if not s.targets or any(len(t.sizes) != n for t in s.targets):
            raise ValueError(f"{where}: every target needs one size per scan")
        if any(n_t.states and len(n_t.states) != n for n_t in s.nontargets):
            raise ValueError(f"{where}: non-target states must cover every scan")
        for les in s.new:
            if not 0 < les.first_scan < n or len(les.results) != n - les.first_scan:
                raise ValueError(f"{where}: new lesion results must run to the last scan")
        states = [x for n_t in s.nontargets for x in n_t.states]
        states += [x for les in s.new for x in les.results if isinstance(x, str)]
        if any(x not in TUMOR_STATES for x in states):
            raise ValueError(f"{where}: unknown tumor state")
        last = max(
            [s.day(s.scans[-1])]
            + ([s.day(s.stop[0])] if s.stop else [])
            + ([s.day(s.death)] if s.death is not None else [])
        )
        if last > DATA_CUTOFF or (s.death is not None and s.death < s.scans[-1]):
            raise ValueError(f"{where}: dates after the cut-off or after death")
        if s.stop and s.stop[0] <= 0:
            raise ValueError(f"{where}: treatment stops before the first dose")


# --- output ------------------------------------------------------------------------------


def build(subjects: Sequence[Subject] = SUBJECTS) -> dict[str, list[Row]]:
    """All rows of the seven domains, subjects in USUBJID order."""
    validate(subjects)
    ordered = sorted(subjects, key=lambda s: s.usubjid)
    return {name: [row for s in ordered for row in rows(s)] for name, rows in BUILDERS.items()}


def write(out_dir: Path, subjects: Sequence[Subject] = SUBJECTS) -> dict[str, int]:
    """Write the seven CSV files into `out_dir`; returns the row count per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, rows in build(subjects).items():
        with (out_dir / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS[name], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        counts[name] = len(rows)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or any(a in ("-h", "--help") for a in args):
        print("usage: python -m hpd.demo_cohort [OUT_DIR]", file=sys.stderr)
        return 2
    out_dir = Path(args[0]) if args else DEFAULT_OUT_DIR
    counts = write(out_dir)
    summary = ", ".join(f"{name} {n}" for name, n in counts.items())
    print(f"demo cohort: {len(SUBJECTS)} subjects written to {out_dir} ({summary} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
