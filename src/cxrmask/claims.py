"""The paper's claims next to this run's evidence, each with a plain verdict.

Miao et al. (2025) state six findings, and argue from a premise (masking
keeps a classifier off shortcuts outside the lungs) that a shifted test set
can test. Each becomes a test on this run's
tables with a rule, stated here and printed in ``summary.md``, that turns the
numbers into *supported*, *contradicted* or *not resolved* (at this sample
size). ``margin`` is the smallest AUROC difference that matters: a
difference whose (1 - 2 alpha) interval lies inside ±margin is "no
meaningful difference" (two one-sided tests at alpha), which is the only way
"comparable" can be supported and the way "better" or "lower" can be
contradicted without the opposite being significant.

Where the run has external test sets, the claims their tables can judge are
judged on each set too: whether masking keeps more of the AUROC than original
images from the internal test set to the set (``transfer``, the shortcut
premise on another hospital's images) and loose masking's No Finding test
(DeLong on the set). Each row names the set it was judged on (``test_set``:
``test`` for the internal test split, ``shifted`` for the shifted one).

Evidence comes from three tables: the paired patient-bootstrap contrasts
(:func:`cxrmask.uncertainty.condition_contrasts`), the paired DeLong tests
(Holm within backbone, as the compare stage writes them) and the per-seed
training summaries. p-values are Holm-adjusted within each claim's family
(across backbones, or across comparisons) unless the DeLong table already
adjusted them.

A bootstrap p-value cannot fall below 2 / (B + 1) with B resamples, and Holm
multiplies the smallest by the family's size, so a claim tested by many
bootstrap contrasts at a small ``n_boot`` may be unable to reach
significance whatever the data. Each row states that floor (``p_floor``;
0 for the analytic DeLong and t tests) and the ``n_boot`` at which its
family could pass ``alpha`` (``n_boot_needed``); a p at its floor is
printed "≤ floor", and a claim whose verdict rests on significance its
floor cannot reach is named in the log and in ``summary.md``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel

from cxrmask.atomic import write_csv, write_text
from cxrmask.errors import ConfigError, InputError
from cxrmask.metrics import MACRO
from cxrmask.stats import holm
from cxrmask.vocabulary import NO_FINDING, STUDY_CONDITIONS, source_pairs

log = logging.getLogger(__name__)

SUPPORTED, CONTRADICTED, UNRESOLVED = "supported", "contradicted", "not resolved"

CLAIMS = {
    "best": "ResNet50 on original images has the best macro AUROC of all cells",
    "loose_comparable": "Loose masking gives a macro AUROC comparable to original images",
    "loose_no_finding": "Loose masking discriminates No Finding significantly better than original images",
    "tight_lower": "Tight masking lowers the abnormalities' (macro) AUROC",
    "tight_faster": "Tight masking trains faster",
    "backbone_dependent": "The effects of masking depend on the backbone",
    "shortcut": "Masking protects against a shortcut outside the lungs (AUROC kept on a shifted test set)",
    "transfer": "Masking keeps more macro AUROC than original images on another collection",
    "source": "CheXmask's lungs in place of the segmenter's leave each masked condition's AUROC unchanged",
}
"""The paper's six findings, the premise of its argument that only a shifted test set, or another
collection's images, can test, and the study's own premise that its answer is the masking's and not its
segmenter's (``source``: judged where the grid has CheXmask's conditions). The paper's claims are judged
on its three conditions alone (:data:`~cxrmask.vocabulary.STUDY_CONDITIONS`)."""

#: The ``test_set`` of rows judged on the study's own test split, and on its shifted test set.
INTERNAL, SHIFTED = "test", "shifted"

#: Claims judged on each external test set as well as (or, for ``transfer``, instead of) the study's own.
PER_SET = ("loose_no_finding", "transfer")

#: Claims judged only where the run has their evidence (CheXmask's conditions), absent from the summary
#: otherwise rather than a row saying the run cannot judge them.
OPTIONAL = ("source",)

#: Seeds per cell below which training times are described but not tested.
MIN_SEEDS_FOR_TIME_TEST = 3

COLUMNS = [
    "claim",
    "backbone",
    "measure",
    "estimate",
    "ci_low",
    "ci_high",
    "p_holm",
    "verdict",
    "note",
    "p_floor",
    "n_boot_needed",
    "test_set",
]

#: Claims whose verdict rests on a significant bootstrap difference (the others on an interval or a
#: DeLong or t test), so an unattainable floor leaves them undecidable.
DECIDED_BY_BOOTSTRAP_P = ("best", "tight_lower", "backbone_dependent", "shortcut", "transfer")


@dataclass(frozen=True)
class Floor:
    """The smallest Holm-adjusted p a family of bootstrap tests can reach, and the resamples it needs.

    Holm's smallest adjusted p is the family size m times the smallest p,
    and a bootstrap p is at least 2 / (B + 1), so the floor is
    min(1, 2 m / (B + 1)); it drops below alpha once B > 2 m / alpha - 1.
    B counts the defined resamples: on a small test set some draws leave a
    finding without a positive and define no AUROC, so ``drawn`` (the
    ``n_boot`` that produced them) scales the resamples needed to the
    draws that yield them.
    """

    tests: int
    resamples: int
    alpha: float = float("nan")
    drawn: int | None = None

    @classmethod
    def of(cls, family: pd.DataFrame, rules: ClaimRules) -> Floor:
        """The floor of a family of contrast rows (their count and most defined resamples) under ``rules``."""
        resamples = int(family["n_resamples"].max()) if len(family) else 0
        return cls(tests=len(family), resamples=resamples, alpha=rules.alpha, drawn=rules.n_boot)

    @property
    def p(self) -> float:
        if self.tests == 0:
            return float("nan")
        return min(1.0, 2.0 * self.tests / (self.resamples + 1))

    @property
    def needed(self) -> int:
        """The fewest draws (``n_boot``) at which this family's smallest adjusted p is below ``alpha``:
        that many defined resamples, divided by the share of draws that were defined."""
        defined = int(np.floor(2.0 * self.tests / self.alpha))
        if self.drawn and 0 < self.resamples < self.drawn:
            return int(np.ceil(defined * self.drawn / self.resamples))
        return defined


#: Analytic tests (DeLong, paired t): no resampling floor.
NO_FLOOR = Floor(tests=0, resamples=0)


@dataclass(frozen=True)
class ClaimRules:
    """How evidence becomes a verdict: significance level, equivalence margin, the paper's best cell."""

    alpha: float = 0.05
    margin: float = 0.02
    reference: tuple[str, str] = ("resnet50", "original")
    n_boot: int | None = None  # the resamples drawn (evaluate.n_boot), where known

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"evaluate.alpha must lie in (0, 0.5) for the claims, got {self.alpha}")
        if not 0 < self.margin < 1:
            raise ConfigError(f"claims.margin must be an AUROC difference in (0, 1), got {self.margin}")


def _row(
    claim: str,
    backbone: str,
    measure: str,
    estimate,
    low,
    high,
    p,
    verdict: str,
    note: str = "",
    floor: Floor = NO_FLOOR,
    test_set: str = INTERNAL,
) -> dict:
    """One evidence row; ``floor`` is the row's family's (NO_FLOOR: an analytic test, or no test), and
    ``test_set`` the set it was judged on."""
    bootstrap = floor.tests > 0
    values = [claim, backbone, measure, estimate, low, high, p, verdict, note]
    untested = 0.0 if pd.notna(p) else np.nan
    values += [floor.p if bootstrap else untested, floor.needed if bootstrap else np.nan, test_set]
    return dict(zip(COLUMNS, values, strict=True))


def _within(low: float, high: float, margin: float) -> bool:
    return bool(np.isfinite(low) and np.isfinite(high) and -margin < low and high < margin)


def directional(
    estimate: float, p_holm: float, eq_low: float, eq_high: float, sign: int, rules: ClaimRules
) -> str:
    """Verdict on "the difference has sign ``sign``": significant that way, the other way, or negligible.

    Supported when significant in the claimed direction; contradicted when
    significant the other way or when the (1 - 2 alpha) interval lies inside
    ±margin (any effect is too small to matter); otherwise not resolved.
    """
    if np.isfinite(p_holm) and p_holm < rules.alpha:
        return SUPPORTED if np.sign(estimate) == sign else CONTRADICTED
    if _within(eq_low, eq_high, rules.margin):
        return CONTRADICTED
    return UNRESOLVED


def equivalent(eq_low: float, eq_high: float, rules: ClaimRules) -> str:
    """Verdict on "no meaningful difference": the (1 - 2 alpha) interval inside ±margin, or outside it."""
    if _within(eq_low, eq_high, rules.margin):
        return SUPPORTED
    if np.isfinite(eq_low) and (eq_low >= rules.margin or eq_high <= -rules.margin):
        return CONTRADICTED
    return UNRESOLVED


def overall(verdicts: Sequence[str]) -> str:
    """One verdict from per-backbone ones: unanimous, or not resolved when they disagree or are missing."""
    verdicts = list(verdicts)
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if verdicts and all(v == CONTRADICTED for v in verdicts):
        return CONTRADICTED
    return UNRESOLVED


def _deltas(contrasts: pd.DataFrame, a: str, b: str, label: str) -> pd.DataFrame:
    rows = contrasts[
        (contrasts["kind"] == "delta")
        & (contrasts["condition"] == a)
        & (contrasts["condition_b"] == b)
        & (contrasts["label"] == label)
    ]
    return rows.assign(p_holm=holm(rows["p_value"].to_numpy()) if len(rows) else [])


def study_grid(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The rows of ``table`` whose conditions in ``columns`` are all the study's own (an interaction's
    ``a->b`` names two); a blank (a cell row's second condition) is no condition. The paper's claims
    are about its segmenter's masks, so a CheXmask condition never joins their families."""
    keep = np.ones(len(table), dtype=bool)
    for column in columns:
        keep &= (
            table[column]
            .map(lambda value: pd.isna(value) or set(str(value).split("->")) <= set(STUDY_CONDITIONS))
            .to_numpy(dtype=bool)
        )
    return table[keep]


def source_claim(contrasts: pd.DataFrame, rules: ClaimRules) -> list[dict]:
    """Each extent's CheXmask condition minus the segmenter's, macro AUROC per backbone: equivalent within
    ±margin (two one-sided tests); Holm over the family for the p shown. Nothing where the grid lacks a
    source pair."""
    conditions = set(contrasts["condition"].dropna()) | set(contrasts["condition_b"].dropna())
    families = [_deltas(contrasts, a, b, MACRO) for a, b in source_pairs(sorted(conditions))]
    family = pd.concat(families, ignore_index=True) if families else pd.DataFrame()
    if family.empty:
        return []
    family["p_holm"] = holm(family["p_value"].to_numpy())
    return [
        _row(
            "source",
            d["backbone"],
            f"Δ macro AUROC ({d['condition_b']} - {d['condition']})",
            d["estimate"],
            d["ci_low"],
            d["ci_high"],
            d["p_holm"],
            equivalent(d["eq_low"], d["eq_high"], rules),
            f"{1 - 2 * rules.alpha:.0%} CI [{d['eq_low']:+.3f}, {d['eq_high']:+.3f}] vs ±{rules.margin}",
            Floor.of(family, rules),
        )
        for _, d in family.iterrows()
    ]


def best_claim(contrasts: pd.DataFrame, rules: ClaimRules) -> list[dict]:
    """The reference cell is best: it tops the macro AUROC and every other cell is significantly lower."""
    claim, (ref_backbone, ref_condition) = "best", rules.reference
    versus = contrasts[contrasts["kind"] == "versus_best"].copy()
    cells = contrasts[(contrasts["kind"] == "cell") & (contrasts["label"] == MACRO)]
    if versus.empty:
        return [
            _row(claim, "all", "macro AUROC", np.nan, np.nan, np.nan, np.nan, UNRESOLVED, "one cell only")
        ]
    versus["p_holm"] = holm(versus["p_value"].to_numpy())
    best_backbone, best_condition = versus.iloc[0][["backbone", "condition"]]
    reference = cells[(cells["backbone"] == ref_backbone) & (cells["condition"] == ref_condition)]
    if reference.empty:
        note = (
            f"{ref_backbone} / {ref_condition} is not in this run; best is {best_backbone} / {best_condition}"
        )
        return [_row(claim, ref_backbone, "macro AUROC", np.nan, np.nan, np.nan, np.nan, UNRESOLVED, note)]
    ref = reference.iloc[0]
    if (best_backbone, best_condition) == (ref_backbone, ref_condition):
        runner = versus.loc[versus["estimate"].idxmax()]
        verdict = SUPPORTED if (versus["p_holm"] < rules.alpha).all() else UNRESOLVED
        note = (
            f"best cell; runner-up {runner['backbone_b']} / {runner['condition_b']} "
            f"{runner['estimate']:+.3f} [{runner['ci_low']:+.3f}, {runner['ci_high']:+.3f}], "
            f"Holm p {runner['p_holm']:.3g}"
        )
        p = float(versus["p_holm"].max())
    else:
        own = versus[(versus["backbone_b"] == ref_backbone) & (versus["condition_b"] == ref_condition)].iloc[
            0
        ]
        verdict = CONTRADICTED if own["p_holm"] < rules.alpha else UNRESOLVED
        note = (
            f"best is {best_backbone} / {best_condition}; reference minus best {own['estimate']:+.3f} "
            f"[{own['ci_low']:+.3f}, {own['ci_high']:+.3f}]"
        )
        p = float(own["p_holm"])
    return [
        _row(
            claim,
            ref_backbone,
            "macro AUROC",
            ref["estimate"],
            ref["ci_low"],
            ref["ci_high"],
            p,
            verdict,
            note,
            Floor.of(versus, rules),
        )
    ]


def loose_comparable_claim(contrasts: pd.DataFrame, rules: ClaimRules) -> list[dict]:
    """Loose minus original macro AUROC, per backbone: equivalent within ±margin (two one-sided tests)."""
    rows = []
    family = _deltas(contrasts, "original", "loose", MACRO)
    for _, d in family.iterrows():
        verdict = equivalent(d["eq_low"], d["eq_high"], rules)
        note = f"{1 - 2 * rules.alpha:.0%} CI [{d['eq_low']:+.3f}, {d['eq_high']:+.3f}] vs ±{rules.margin}"
        rows.append(
            _row(
                "loose_comparable",
                d["backbone"],
                "Δ macro AUROC (loose - original)",
                d["estimate"],
                d["ci_low"],
                d["ci_high"],
                d["p_holm"],
                verdict,
                note,
                Floor.of(family, rules),
            )
        )
    return rows


def loose_no_finding_claim(delong: pd.DataFrame, rules: ClaimRules, test_set: str = INTERNAL) -> list[dict]:
    """Loose minus original No Finding AUROC per backbone: paired DeLong test, Holm within backbone (and
    set: ``delong`` is one set's tests)."""
    rows = []
    for _, t in delong[delong["label"] == NO_FINDING].iterrows():
        pair = (t["condition_a"], t["condition_b"])
        if pair not in (("original", "loose"), ("loose", "original")):
            continue
        sign = 1 if pair == ("original", "loose") else -1
        delta, low, high = sign * t["delta"], *sorted((sign * t["ci_low"], sign * t["ci_high"]))
        # the DeLong interval is at 1 - alpha; negligible means even its upper end is below +margin
        negligible = np.isfinite(high) and high < rules.margin
        if np.isfinite(t["p_holm"]) and t["p_holm"] < rules.alpha:
            verdict = SUPPORTED if delta > 0 else CONTRADICTED
        else:
            verdict = CONTRADICTED if negligible else UNRESOLVED
        rows.append(
            _row(
                "loose_no_finding",
                t["backbone"],
                "Δ No Finding AUROC (loose - original), DeLong",
                delta,
                low,
                high,
                t["p_holm"],
                verdict,
                "Holm within backbone over all DeLong tests",
                test_set=test_set,
            )
        )
    return rows


def tight_lower_claim(contrasts: pd.DataFrame, delong: pd.DataFrame, rules: ClaimRules) -> list[dict]:
    """Tight minus original macro AUROC over the findings, per backbone; per-label DeLong drops as a note."""
    rows = []
    findings = delong[delong["label"] != NO_FINDING]
    family = _deltas(contrasts, "original", "tight", MACRO)
    for _, d in family.iterrows():
        verdict = directional(d["estimate"], d["p_holm"], d["eq_low"], d["eq_high"], -1, rules)
        tests = findings[
            (findings["backbone"] == d["backbone"])
            & (findings["condition_a"] == "original")
            & (findings["condition_b"] == "tight")
        ]
        lower = int(((tests["delta"] < 0) & (tests["p_holm"] < rules.alpha)).sum())
        note = f"{lower} of {len(tests)} findings significantly lower (DeLong, Holm)"
        rows.append(
            _row(
                "tight_lower",
                d["backbone"],
                "Δ macro AUROC (tight - original)",
                d["estimate"],
                d["ci_low"],
                d["ci_high"],
                d["p_holm"],
                verdict,
                note,
                Floor.of(family, rules),
            )
        )
    return rows


def tight_faster_claim(training: pd.DataFrame, rules: ClaimRules) -> list[dict]:
    """Wall time to the best validation macro AUROC, tight / original, per backbone (epochs to best noted).

    "Trains faster" is read as reaching its best validation AUROC sooner: the
    ratio of geometric means of ``seconds_to_best`` over seeds, tested by a
    paired t-test on log seconds (pairs share a seed) when every cell has at
    least three seeds; with fewer the numbers are shown and the claim is not
    resolved.
    """
    rows = []
    for backbone, part in training.groupby("backbone", sort=False):
        tight = part[part["mask"] == "tight"].set_index("seed")
        original = part[part["mask"] == "original"].set_index("seed")
        seeds = tight.index.intersection(original.index)
        if seeds.empty:
            continue
        log_t = np.log(tight.loc[seeds, "seconds_to_best"].astype(float))
        log_o = np.log(original.loc[seeds, "seconds_to_best"].astype(float))
        ratio = float(np.exp(np.mean(log_t - log_o)))
        epochs = (tight.loc[seeds, "best_epoch"].mean(), original.loc[seeds, "best_epoch"].mean())
        low = high = p = np.nan
        if len(seeds) >= MIN_SEEDS_FOR_TIME_TEST:
            test = ttest_rel(log_t, log_o)
            p = float(test.pvalue)
            ci = test.confidence_interval(1 - rules.alpha)
            low, high = float(np.exp(ci.low)), float(np.exp(ci.high))
        note = f"epochs to best {epochs[0]:.1f} (tight) vs {epochs[1]:.1f} (original); {len(seeds)} seed(s)"
        rows.append(
            _row("tight_faster", backbone, "time to best, tight / original", ratio, low, high, p, "", note)
        )
    p_values = np.array([row["p_holm"] for row in rows], dtype=float)
    for row, p in zip(rows, holm(p_values) if rows else [], strict=True):
        row["p_holm"] = float(p)
        if np.isnan(p):
            row["verdict"] = UNRESOLVED
            row["note"] += f" (a test needs >= {MIN_SEEDS_FOR_TIME_TEST} seeds)"
        elif p < rules.alpha:
            row["verdict"] = SUPPORTED if row["estimate"] < 1 else CONTRADICTED
        else:
            row["verdict"] = UNRESOLVED
    return rows


def backbone_claim(contrasts: pd.DataFrame, rules: ClaimRules) -> list[dict]:
    """Differences between backbones of a masking effect (macro and No Finding), Holm over all of them."""
    rows = contrasts[contrasts["kind"] == "interaction"].copy()
    if rows.empty:
        return [
            _row("backbone_dependent", "all", "interaction", *[np.nan] * 4, UNRESOLVED, "one backbone only")
        ]
    rows["p_holm"] = holm(rows["p_value"].to_numpy())
    out = []
    for _, r in rows.iterrows():
        if r["p_holm"] < rules.alpha:
            verdict = SUPPORTED
        elif _within(r["eq_low"], r["eq_high"], rules.margin):
            verdict = CONTRADICTED
        else:
            verdict = UNRESOLVED
        out.append(
            _row(
                "backbone_dependent",
                f"{r['backbone_b']} vs {r['backbone']}",
                f"Δ of {r['condition']} on {r['label']}, difference between backbones",
                r["estimate"],
                r["ci_low"],
                r["ci_high"],
                r["p_holm"],
                verdict,
                floor=Floor.of(rows, rules),
            )
        )
    return out


def shortcut_claim(shift: pd.DataFrame | None, label: str, rules: ClaimRules) -> list[dict]:
    """Each masked condition loses less ``label`` AUROC than original images from the test set to the
    shifted one (``excess_drop`` > 0), Holm across backbones and conditions."""
    if shift is None:
        return [_row("shortcut", "all", "", *[np.nan] * 4, UNRESOLVED, "this run has no shifted test set")]
    rows = shift[(shift["kind"] == "excess_drop") & (shift["label"] == label)].copy()
    rows["p_holm"] = holm(rows["p_value"].to_numpy()) if len(rows) else []
    return [
        _row(
            "shortcut",
            r["backbone"],
            f"{label} AUROC drop on the shifted set, original - {r['condition']}",
            r["estimate"],
            r["ci_low"],
            r["ci_high"],
            r["p_holm"],
            directional(r["estimate"], r["p_holm"], r["eq_low"], r["eq_high"], +1, rules),
            floor=Floor.of(rows, rules),
            test_set=SHIFTED,
        )
        for _, r in rows.iterrows()
    ]


def transfer_claim(shift: pd.DataFrame | None, rules: ClaimRules) -> list[dict]:
    """On each external set, each masked condition loses less macro AUROC than original images from the
    internal test set to that set (``excess_drop`` > 0), Holm within the set (its backbones and conditions).

    ``shift`` is ``shift_test_sets.csv`` (a ``test_set`` column on the shift table), None without sets.
    """
    if shift is None:
        return [_row("transfer", "all", "", *[np.nan] * 4, UNRESOLVED, "this run has no external test set")]
    out = []
    for name, part in shift.groupby("test_set", sort=False):
        rows = part[(part["kind"] == "excess_drop") & (part["label"] == MACRO)].copy()
        rows["p_holm"] = holm(rows["p_value"].to_numpy()) if len(rows) else []
        out += [
            _row(
                "transfer",
                r["backbone"],
                f"macro AUROC drop on {name}, original - {r['condition']}",
                r["estimate"],
                r["ci_low"],
                r["ci_high"],
                r["p_holm"],
                directional(r["estimate"], r["p_holm"], r["eq_low"], r["eq_high"], +1, rules),
                "Holm within the set",
                Floor.of(rows, rules),
                str(name),
            )
            for _, r in rows.iterrows()
        ]
    return out


def set_no_finding_claims(delong: pd.DataFrame | None, rules: ClaimRules) -> list[dict]:
    """Loose masking's No Finding test on each external set (``delong_test_sets.csv``, None without sets)."""
    if delong is None:
        return []
    return [
        row
        for name, part in delong.groupby("test_set", sort=False)
        for row in loose_no_finding_claim(part, rules, str(name))
    ]


def evaluate_claims(
    contrasts: pd.DataFrame,
    delong: pd.DataFrame,
    training: pd.DataFrame,
    rules: ClaimRules,
    shift: pd.DataFrame | None = None,
    shortcut_label: str | None = None,
    set_delong: pd.DataFrame | None = None,
    set_shift: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every claim's evidence rows, each with its verdict (see each ``*_claim`` for the rule).

    ``shift`` is the shifted-test-set table (None without one) and
    ``shortcut_label`` the finding a suspected shortcut predicts;
    ``set_delong`` and ``set_shift`` are the external test sets' DeLong and
    shift tables (None without sets).
    """
    tables = [
        ("contrasts", contrasts, {"kind", "estimate", "eq_low", "eq_high", "p_value", "n_resamples"}),
        ("DeLong", delong, {"backbone", "label", "condition_a", "condition_b", "delta", "p_holm"}),
        ("training", training, {"backbone", "mask", "seed", "seconds_to_best", "best_epoch"}),
    ]
    shift_needed = {"kind", "label", "estimate", "eq_low", "p_value", "n_resamples"}
    if shift is not None:
        tables.append(("shift", shift, shift_needed))
    if set_shift is not None:
        tables.append(("test sets' shift", set_shift, {"test_set", *shift_needed}))
    if set_delong is not None:
        tables.append(("test sets' DeLong", set_delong, {"test_set", "backbone", "label", "delta", "p_holm"}))
    for name, frame, needed in tables:
        missing = needed - set(frame.columns)
        if missing:
            raise InputError(
                f"the {name} table lacks columns {sorted(missing)}; rerun the rule that writes it."
            )
    every_source = contrasts
    contrasts = study_grid(contrasts, ["condition", "condition_b"])
    delong = study_grid(delong, ["condition_a", "condition_b"])
    training = study_grid(training, ["mask"])
    shift = None if shift is None else study_grid(shift, ["condition"])
    set_shift = None if set_shift is None else study_grid(set_shift, ["condition"])
    set_delong = None if set_delong is None else study_grid(set_delong, ["condition_a", "condition_b"])
    found = {
        "best": best_claim(contrasts, rules),
        "loose_comparable": loose_comparable_claim(contrasts, rules),
        "loose_no_finding": loose_no_finding_claim(delong, rules) + set_no_finding_claims(set_delong, rules),
        "tight_lower": tight_lower_claim(contrasts, delong, rules),
        "tight_faster": tight_faster_claim(training, rules),
        "backbone_dependent": backbone_claim(contrasts, rules),
        "shortcut": shortcut_claim(shift, shortcut_label or MACRO, rules),
        "transfer": transfer_claim(set_shift, rules),
    }
    source = source_claim(every_source, rules)
    if source:  # judged only where the grid has both sources
        found["source"] = source
    rows = []
    for claim, evidence in found.items():
        # a claim whose conditions this run lacks stays in the summary, unresolved, saying why
        rows += evidence or [
            _row(
                claim, "all", "", *[np.nan] * 4, UNRESOLVED, "the conditions it compares are not in this run"
            )
        ]
    table = pd.DataFrame(rows, columns=COLUMNS)
    for line in undecidable(table, rules):
        log.warning("%s", line)
    return table


def undecidable(table: pd.DataFrame, rules: ClaimRules) -> list[str]:
    """One line per claim decided by bootstrap significance that its p floor keeps from ``alpha``,
    naming the ``evaluate.n_boot`` it needs."""
    lines = []
    for claim in DECIDED_BY_BOOTSTRAP_P:
        rows = table[(table["claim"] == claim) & (table["p_floor"] >= rules.alpha)]
        if rows.empty:
            continue
        lines.append(
            f"{claim}: at this run's resamples its smallest attainable Holm p is "
            f"{rows['p_floor'].min():.3g}, not below alpha {rules.alpha}, "
            "so it cannot be found significant whatever the data; set evaluate.n_boot to at least "
            f"{int(rows['n_boot_needed'].max())}."
        )
    return lines


def _own(table: pd.DataFrame) -> pd.DataFrame:
    """The rows judged on the study's own test sets; ``transfer``, judged on external sets only, keeps
    all its rows."""
    return table[table["test_set"].isin((INTERNAL, SHIFTED)) | (table["claim"] == "transfer")]


def verdicts(table: pd.DataFrame) -> dict[str, str]:
    """One verdict per claim, from the study's own test sets (``transfer``: from every external set, which
    must agree); the effect-depends claim is supported by any one significant difference."""
    out = {}
    own = _own(table)
    for claim in CLAIMS:
        part = own.loc[own["claim"] == claim, "verdict"].tolist()
        if claim in OPTIONAL and not part:
            continue
        if claim == "backbone_dependent" and SUPPORTED in part:
            out[claim] = SUPPORTED
        else:
            out[claim] = overall(part)
    return out


def set_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """The per-set claims' verdicts, one column per external test set (empty without sets)."""
    rows = table[table["claim"].isin(PER_SET) & ~table["test_set"].isin((INTERNAL, SHIFTED))]
    if rows.empty:
        return pd.DataFrame()
    names = list(dict.fromkeys(rows["test_set"]))
    found = {
        (claim, name): overall(part["verdict"].tolist())
        for (claim, name), part in rows.groupby(["claim", "test_set"], sort=False)
    }
    return pd.DataFrame(
        [[CLAIMS[c], *[found.get((c, n), UNRESOLVED) for n in names]] for c in PER_SET],
        columns=["claim", *names],
    )


def _fmt(value: float, spec: str = ".3f") -> str:
    return "" if pd.isna(value) else format(value, spec)


def _p_text(p: float, floor: float) -> str:
    """A p-value, written "≤ floor" when it sits at its family's bootstrap floor (so it only bounds p)."""
    if pd.notna(p) and pd.notna(floor) and floor > 0 and p <= floor * (1 + 1e-9):
        return f"≤ {floor:.3g}"
    return _fmt(p, ".3g")


def summary_markdown(table: pd.DataFrame, rules: ClaimRules, heading: str = "#") -> str:
    """The claims section: a verdict per claim, the evidence rows, and the rules behind the verdicts."""
    overall_verdicts = verdicts(table)
    lines = [
        f"{heading} The paper's claims against this run",
        "",
        "| claim | verdict |",
        "|---|---|",
        *[f"| {CLAIMS[c]} | **{verdict}** |" for c, verdict in overall_verdicts.items()],
        "",
    ]
    per_set = set_verdicts(table)
    if not per_set.empty:
        lines += [
            "Judged on each external test set:",
            "",
            "| " + " | ".join(per_set.columns) + " |",
            "|" + "|".join("---" for _ in per_set.columns) + "|",
            *["| " + " | ".join(map(str, row)) + " |" for row in per_set.itertuples(index=False)],
            "",
        ]
    lines += [
        "| claim | set | backbone | measure | estimate | CI | p (Holm) | p floor | verdict | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        ci = f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if pd.notna(r.ci_low) else ""
        lines.append(
            f"| {r.claim} | {r.test_set} | {r.backbone} | {r.measure} | {_fmt(r.estimate)} | {ci} | "
            f"{_p_text(r.p_holm, r.p_floor)} | {_fmt(r.p_floor, '.3g')} | {r.verdict} | {r.note} |"
        )
    level = 1 - rules.alpha
    lines += [
        "",
        f"How to read it: intervals are {level:.0%} (DeLong for the No Finding test, otherwise a paired "
        "bootstrap over test patients); p-values are Holm-adjusted within each claim "
        "(DeLong's within backbone, the paper's pairs apart from the mask source's). "
        f"A difference counts as negligible when its {1 - 2 * rules.alpha:.0%} interval lies inside "
        f"±{rules.margin} AUROC. *Comparable* is supported by a negligible difference; *better*, *lower* and "
        "*depends on the backbone* by a significant one in that direction, and contradicted by a significant "
        "one the other way or a negligible one. *Trains faster* means reaching the best validation macro "
        f"AUROC in less wall time (paired over seeds, tested with >= {MIN_SEEDS_FOR_TIME_TEST} seeds). "
        "*Protects against a shortcut* means a masked condition loses significantly less AUROC than "
        "original images from the test set to the shifted one (images where the suspected cue no longer "
        "goes with the label; `tables/shift.csv`); *keeps more AUROC on another collection* the same from "
        "the internal test set to each external one (`tables/shift_test_sets.csv`), where the verdict "
        "above needs every set to agree. "
        "*Leaves unchanged* (the mask source) is supported when the difference between a classifier on "
        "CheXmask's masks and one on the segmenter's, of the same extent, is negligible, and contradicted "
        "when its interval lies outside the margin. "
        "Scores are averaged over seeds before every test, so the tests compare conditions on this test set. "
        "*Not resolved* means this sample cannot tell. "
        "A bootstrap p cannot fall below 2 / (resamples + 1), and Holm multiplies that by the family's "
        "size: *p floor* is the smallest adjusted p the row's family can reach (0 for DeLong and t tests), "
        'and a p written "≤ x" sits at it.',
        "",
    ]
    blocked = undecidable(table, rules)
    if blocked:
        lines += ["Undecidable at this run's resamples:", "", *[f"- {line}" for line in blocked], ""]
    return "\n".join(lines)


def write_summary(
    contrasts: str | os.PathLike[str],
    delong: str | os.PathLike[str],
    training: str | os.PathLike[str],
    out_summary: str | os.PathLike[str],
    out_table: str | os.PathLike[str],
    alpha: float,
    margin: float,
    reference: Sequence[str] = ("resnet50", "original"),
    shift: str | os.PathLike[str] | None = None,
    shortcut_label: str | None = None,
    set_delong: str | os.PathLike[str] | None = None,
    set_shift: str | os.PathLike[str] | None = None,
    n_boot: int | None = None,
) -> pd.DataFrame:
    """Read the tables, judge every claim, write ``summary.md`` and the claims table; ``n_boot`` is the
    resamples drawn for them, where known."""
    rules = ClaimRules(alpha=alpha, margin=margin, reference=tuple(reference), n_boot=n_boot)
    table = evaluate_claims(
        pd.read_csv(contrasts),
        pd.read_csv(delong),
        pd.read_csv(training),
        rules,
        shift=pd.read_csv(shift) if shift else None,
        shortcut_label=shortcut_label,
        set_delong=pd.read_csv(set_delong) if set_delong else None,
        set_shift=pd.read_csv(set_shift) if set_shift else None,
    )
    write_csv(out_table, table)
    write_text(out_summary, summary_markdown(table, rules))
    return table
