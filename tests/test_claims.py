"""The paper's claims judged on hand-made tables with known verdicts, and on real contrast tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrmask.claims import (
    CLAIMS,
    COLUMNS,
    CONTRADICTED,
    MIN_SEEDS_FOR_TIME_TEST,
    OPTIONAL,
    SUPPORTED,
    UNRESOLVED,
    ClaimRules,
    Floor,
    _p_text,
    backbone_claim,
    best_claim,
    directional,
    equivalent,
    evaluate_claims,
    loose_comparable_claim,
    loose_no_finding_claim,
    overall,
    set_no_finding_claims,
    set_verdicts,
    shortcut_claim,
    study_grid,
    summary_markdown,
    tight_faster_claim,
    tight_lower_claim,
    transfer_claim,
    undecidable,
    verdicts,
    write_summary,
)
from cxrmask.errors import ConfigError, InputError
from cxrmask.metrics import MACRO
from cxrmask.uncertainty import CONTRAST_COLUMNS, bootstrap_p, condition_contrasts
from cxrmask.vocabulary import NO_FINDING

RULES = ClaimRules(alpha=0.05, margin=0.02)
NAN = float("nan")


def contrast(kind, backbone, condition, backbone_b=None, condition_b=None, label=MACRO, **numbers) -> dict:
    row = dict.fromkeys(CONTRAST_COLUMNS, np.nan)
    row.update(kind=kind, backbone=backbone, condition=condition, backbone_b=backbone_b, label=label)
    row.update(condition_b=condition_b, n_resamples=1000, **numbers)
    return row


def delta(backbone, a, b, estimate, half, p, label=MACRO) -> dict:
    """A Δ row whose (1 - alpha) interval is ±half and (1 - 2 alpha) interval ±0.8 half."""
    return contrast(
        "delta", backbone, a, backbone, b, label, estimate=estimate, ci_low=estimate - half,
        ci_high=estimate + half, eq_low=estimate - 0.8 * half, eq_high=estimate + 0.8 * half, p_value=p,
    )  # fmt: skip


def cell(backbone, condition, estimate) -> dict:
    return contrast(
        "cell", backbone, condition, estimate=estimate, ci_low=estimate - 0.03, ci_high=estimate + 0.03
    )


def versus(best, other, estimate, p) -> dict:
    return contrast(
        "versus_best", *best, *other, estimate=estimate, ci_low=estimate - 0.02, ci_high=estimate + 0.02,
        eq_low=estimate - 0.015, eq_high=estimate + 0.015, p_value=p,
    )  # fmt: skip


def delong_row(backbone, a, b, label, delta_, p_holm, half=0.02) -> dict:
    return {
        "backbone": backbone, "label": label, "condition_a": a, "condition_b": b, "delta": delta_,
        "ci_low": delta_ - half, "ci_high": delta_ + half, "p_value": p_holm / 3, "p_holm": p_holm,
    }  # fmt: skip


def training(backbone, seconds: dict[str, list[float]]) -> list[dict]:
    return [
        {"backbone": backbone, "mask": mask, "seed": seed, "seconds_to_best": s, "best_epoch": 3 + seed}
        for mask, values in seconds.items()
        for seed, s in enumerate(values)
    ]


def run(contrasts: list[dict], delong: list[dict] | None = None, train: list[dict] | None = None):
    columns = ["backbone", "label", "condition_a", "condition_b", "delta", "ci_low", "ci_high", "p_value"]
    delong_frame = pd.DataFrame(delong or [], columns=[*columns, "p_holm"])
    train_frame = pd.DataFrame(
        train or [], columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"]
    )
    return evaluate_claims(
        pd.DataFrame(contrasts, columns=CONTRAST_COLUMNS), delong_frame, train_frame, RULES
    )


def rows_of(table: pd.DataFrame, claim: str) -> pd.DataFrame:
    return table[table["claim"] == claim].reset_index(drop=True)


# ---------------------------------------------------------------- the verdict rules


@pytest.mark.parametrize(
    ("estimate", "p", "eq", "sign", "expected"),
    [
        (-0.05, 0.01, (-0.07, -0.03), -1, SUPPORTED),
        (0.05, 0.01, (0.03, 0.07), -1, CONTRADICTED),  # significant the other way
        (-0.001, 0.6, (-0.01, 0.008), -1, CONTRADICTED),  # negligible: inside ±margin
        (-0.03, 0.2, (-0.06, 0.005), -1, UNRESOLVED),
        (0.03, 0.01, (0.01, 0.05), 1, SUPPORTED),
        (np.nan, np.nan, (np.nan, np.nan), 1, UNRESOLVED),
    ],
)
def test_directional_verdicts(estimate, p, eq, sign, expected) -> None:
    assert directional(estimate, p, *eq, sign, RULES) == expected


def test_equivalence_and_overall_verdicts() -> None:
    assert equivalent(-0.015, 0.019, RULES) == SUPPORTED
    assert equivalent(-0.03, 0.01, RULES) == UNRESOLVED
    assert equivalent(0.025, 0.06, RULES) == CONTRADICTED
    assert equivalent(-0.09, -0.021, RULES) == CONTRADICTED
    assert overall([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert overall([CONTRADICTED]) == CONTRADICTED
    assert overall([SUPPORTED, CONTRADICTED]) == UNRESOLVED
    assert overall([]) == UNRESOLVED


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ConfigError, match="margin"):
        ClaimRules(margin=0)
    with pytest.raises(ConfigError, match="alpha"):
        ClaimRules(alpha=0.6)


# ---------------------------------------------------------------- each claim on hand-made tables


def test_best_supported_when_the_reference_tops_and_every_other_cell_is_significantly_lower() -> None:
    best = ("resnet50", "original")
    table = run(
        [
            cell("resnet50", "original", 0.85),
            versus(best, ("resnet50", "tight"), -0.06, 0.001),
            versus(best, ("densenet121", "original"), -0.04, 0.004),
        ]
    )
    row = rows_of(table, "best").iloc[0]
    assert row["verdict"] == SUPPORTED and row["estimate"] == 0.85
    assert row["p_holm"] == pytest.approx(0.004 * 1)  # Holm: 0.001 * 2, 0.004 * 1 -> max 0.004
    assert "runner-up densenet121 / original" in row["note"]


def test_best_not_resolved_when_the_runner_up_is_within_noise_and_contradicted_when_beaten() -> None:
    best = ("resnet50", "original")
    close = run([cell(*best, 0.85), versus(best, ("resnet50", "loose"), -0.005, 0.6)])
    assert rows_of(close, "best").iloc[0]["verdict"] == UNRESOLVED
    other = ("densenet121", "loose")
    beaten = run([cell(*best, 0.80), cell(*other, 0.86), versus(other, best, -0.06, 0.002)])
    row = rows_of(beaten, "best").iloc[0]
    assert row["verdict"] == CONTRADICTED and "best is densenet121 / loose" in row["note"]
    absent = run([cell(*other, 0.86), versus(other, ("densenet121", "tight"), -0.06, 0.002)])
    assert rows_of(absent, "best").iloc[0]["verdict"] == UNRESOLVED
    assert "not in this run" in rows_of(absent, "best").iloc[0]["note"]


def test_loose_comparable_by_equivalence_per_backbone() -> None:
    table = run(
        [
            delta("resnet50", "original", "loose", -0.004, 0.012, 0.5),  # eq ±0.0096: inside ±0.02
            delta("densenet121", "original", "loose", -0.06, 0.02, 0.001),  # eq entirely below -0.02
        ]
    )
    rows = rows_of(table, "loose_comparable").set_index("backbone")
    assert rows.loc["resnet50", "verdict"] == SUPPORTED
    assert rows.loc["densenet121", "verdict"] == CONTRADICTED
    assert verdicts(table)["loose_comparable"] == UNRESOLVED  # backbones disagree
    assert rows.loc["densenet121", "p_holm"] == pytest.approx(0.002)


def test_loose_no_finding_reads_the_delong_table_either_way_round() -> None:
    table = run(
        [],
        delong=[
            delong_row("resnet50", "original", "loose", NO_FINDING, 0.03, 0.01),
            delong_row("densenet121", "loose", "original", NO_FINDING, -0.03, 0.01),  # same, written b-a
            delong_row("effnet", "original", "loose", NO_FINDING, 0.001, 0.9, half=0.01),  # CI below +margin
            delong_row("vit", "original", "loose", NO_FINDING, 0.02, 0.3, half=0.04),
            delong_row("vit", "original", "loose", "Mass", 0.2, 0.0001),  # another label: ignored
        ],
    )
    rows = rows_of(table, "loose_no_finding").set_index("backbone")
    assert rows["verdict"].to_dict() == {
        "resnet50": SUPPORTED,
        "densenet121": SUPPORTED,
        "effnet": CONTRADICTED,
        "vit": UNRESOLVED,
    }
    assert rows.loc["densenet121", "estimate"] == pytest.approx(0.03)
    assert (rows.loc["densenet121", "ci_low"], rows.loc["densenet121", "ci_high"]) == pytest.approx(
        (0.01, 0.05)
    )


def test_tight_lower_holm_across_backbones_and_counts_delong_drops() -> None:
    table = run(
        [
            delta("resnet50", "original", "tight", -0.05, 0.03, 0.02),
            delta("densenet121", "original", "tight", -0.04, 0.03, 0.03),
        ],
        delong=[
            delong_row("resnet50", "original", "tight", "Mass", -0.06, 0.01),
            delong_row("resnet50", "original", "tight", "Edema", -0.01, 0.5),
            delong_row("resnet50", "original", "tight", NO_FINDING, -0.08, 0.001),  # not a finding
        ],
    )
    rows = rows_of(table, "tight_lower").set_index("backbone")
    assert rows["p_holm"].tolist() == pytest.approx([0.04, 0.04])
    assert (rows["verdict"] == SUPPORTED).all()
    assert rows.loc["resnet50", "note"].startswith("1 of 2 findings significantly lower")


def test_tight_faster_is_tested_over_seeds_and_not_resolved_with_one() -> None:
    many = run([], train=training("resnet50", {"original": [100, 120, 90, 110], "tight": [52, 59, 47, 56]}))
    row = rows_of(many, "tight_faster").iloc[0]
    assert row["verdict"] == SUPPORTED
    assert row["estimate"] == pytest.approx(np.exp(np.mean(np.log([0.52, 59 / 120, 47 / 90, 56 / 110]))))
    assert row["ci_low"] < row["estimate"] < row["ci_high"] < 1
    one = run([], train=training("resnet50", {"original": [100], "tight": [50]}))
    row = rows_of(one, "tight_faster").iloc[0]
    assert (
        row["verdict"] == UNRESOLVED
        and row["estimate"] == pytest.approx(0.5)
        and "needs >= 3 seeds" in row["note"]
    )
    slower = run([], train=training("resnet50", {"original": [50, 60, 45], "tight": [100, 118, 93]}))
    assert rows_of(slower, "tight_faster").iloc[0]["verdict"] == CONTRADICTED


def test_backbone_dependence_from_interactions() -> None:
    def interaction(estimate, p, eq_half):
        return contrast(
            "interaction", "resnet50", "original->tight", "densenet121", "original->tight",
            estimate=estimate, ci_low=estimate - 0.03, ci_high=estimate + 0.03, eq_low=estimate - eq_half,
            eq_high=estimate + eq_half, p_value=p,
        )  # fmt: skip

    assert verdicts(run([interaction(0.06, 0.001, 0.02)]))["backbone_dependent"] == SUPPORTED
    assert verdicts(run([interaction(0.0, 0.9, 0.01)]))["backbone_dependent"] == CONTRADICTED
    lone = run([delta("resnet50", "original", "tight", -0.05, 0.03, 0.02)])
    assert rows_of(lone, "backbone_dependent").iloc[0]["note"] == "one backbone only"


def test_a_claim_without_evidence_stays_unresolved_and_says_why() -> None:
    table = run([delta("resnet50", "original", "tight", -0.05, 0.03, 0.001)])
    assert set(table["claim"]) == set(CLAIMS) - set(OPTIONAL)
    row = rows_of(table, "loose_comparable").iloc[0]
    assert row["verdict"] == UNRESOLVED and "not in this run" in row["note"]


@pytest.mark.parametrize(
    "name", ["contrasts", "DeLong", "training", "shift", "test sets' shift", "test sets' DeLong"]
)
def test_missing_columns_name_the_table(name) -> None:
    """Each table lacking a column it needs is named, with the rule to rerun."""
    tables = {
        "contrasts": pd.DataFrame(columns=CONTRAST_COLUMNS),
        "DeLong": pd.DataFrame(
            columns=["backbone", "label", "condition_a", "condition_b", "delta", "p_holm"]
        ),
        "training": pd.DataFrame(columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"]),
    }
    options = {}
    if name in tables:
        tables[name] = tables[name].drop(columns="backbone" if name != "contrasts" else "kind")
    else:
        options = {"shift": "shift", "test sets' shift": "set_shift", "test sets' DeLong": "set_delong"}
        options = {options[name]: pd.DataFrame(columns=["backbone"])}
    message = f"^the {name} table lacks columns .*; rerun the rule that writes it"
    with pytest.raises(InputError, match=message):
        evaluate_claims(tables["contrasts"], tables["DeLong"], tables["training"], RULES, **options)


# ---------------------------------------------------------------- end to end on real contrast tables


def predictions(signal: dict[str, float], n: int = 160) -> pd.DataFrame:
    """Two findings; each label's scores separate the classes by ``signal[label]`` (same noise draws)."""
    rng = np.random.default_rng(0)
    truth = rng.random((n, 2)) < 0.35
    noise = rng.normal(0, 1, truth.shape)
    frame = pd.DataFrame({"image": [f"{i:05d}.png" for i in range(n)], "patient_id": np.arange(n) // 2})
    scores = np.empty(truth.shape)
    for k, label in enumerate(["Mass", "Edema"]):
        scores[:, k] = signal[label] * truth[:, k] + noise[:, k]
        frame[f"true_{label}"] = truth[:, k].astype(int)
        frame[f"score_{label}"] = scores[:, k]
    frame[f"true_{NO_FINDING}"] = (~truth.any(axis=1)).astype(int)
    frame[f"score_{NO_FINDING}"] = -scores.max(axis=1)
    return frame


def test_summary_from_real_contrasts(tmp_path) -> None:
    frames = {
        ("resnet50", "original"): predictions({"Mass": 2.0, "Edema": 2.0}),
        ("resnet50", "tight"): predictions({"Mass": 0.7, "Edema": 0.7}),
        ("resnet50", "loose"): predictions({"Mass": 2.0, "Edema": 2.0}),
    }
    pairs = [["original", "tight"], ["original", "loose"]]
    contrasts = condition_contrasts(frames, ["Mass", "Edema", NO_FINDING], pairs, 0.05, 300, 0)
    contrasts.to_csv(tmp_path / "contrasts.csv", index=False)
    pd.DataFrame([delong_row("resnet50", "original", "loose", NO_FINDING, 0.0, 1.0, half=0.01)]).to_csv(
        tmp_path / "delong.csv", index=False
    )
    pd.DataFrame(training("resnet50", {"original": [10.0], "tight": [5.0]})).to_csv(
        tmp_path / "training.csv", index=False
    )
    table = write_summary(
        tmp_path / "contrasts.csv",
        tmp_path / "delong.csv",
        tmp_path / "training.csv",
        tmp_path / "summary.md",
        tmp_path / "claims.csv",
        alpha=0.05,
        margin=0.02,
    )
    found = verdicts(table)
    assert found["tight_lower"] == SUPPORTED
    assert found["loose_comparable"] == SUPPORTED  # identical scores: Δ = 0 exactly
    assert found["loose_no_finding"] == CONTRADICTED  # no gain, CI below the margin
    assert found["tight_faster"] == UNRESOLVED
    text = (tmp_path / "summary.md").read_text()
    for claim, verdict in found.items():
        assert f"| {CLAIMS[claim]} | **{verdict}** |" in text
    assert "inside ±0.02 AUROC" in text
    assert pd.read_csv(tmp_path / "claims.csv")["verdict"].tolist() == table["verdict"].tolist()


# ---------------------------------------------------------------- the shortcut premise (shifted test set)


def shift_row(backbone, condition, estimate, p, eq, label="Pneumonia") -> dict:
    return {
        "kind": "excess_drop",
        "backbone": backbone,
        "condition": condition,
        "label": label,
        "estimate": estimate,
        "ci_low": eq[0] - 0.01,
        "ci_high": eq[1] + 0.01,
        "eq_low": eq[0],
        "eq_high": eq[1],
        "p_value": p,
        "n_resamples": 1000,
    }


def test_shortcut_claim_reads_the_shortcut_labels_excess_drops_with_holm() -> None:
    contrasts = pd.DataFrame(
        [delta("resnet50", "original", "tight", -0.05, 0.03, 0.001)], columns=CONTRAST_COLUMNS
    )
    empty = pd.DataFrame(columns=["backbone", "label", "condition_a", "condition_b", "delta", "p_holm"])
    train = pd.DataFrame(columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"])
    shift = pd.DataFrame(
        [
            shift_row("a", "tight", 0.08, 0.01, (0.03, 0.13)),
            shift_row("a", "loose", 0.06, 0.02, (0.01, 0.11)),
            shift_row("a", "tight", 0.5, 0.0001, (0.4, 0.6), label="Mass"),  # another label: ignored
        ]
    )
    table = rows_of(
        evaluate_claims(contrasts, empty, train, RULES, shift=shift, shortcut_label="Pneumonia"), "shortcut"
    )
    assert len(table) == 2
    # Holm over the two: 0.01 * 2 = 0.02 and max(0.02 * 1, 0.02) = 0.02, both below alpha
    assert table["p_holm"].tolist() == pytest.approx([0.02, 0.02])
    assert (table["verdict"] == SUPPORTED).all()
    # a masked condition that lost as much as original: negligible difference, the premise is contradicted
    shift.loc[1, ["estimate", "p_value", "eq_low", "eq_high"]] = [0.001, 0.8, -0.01, 0.012]
    table = rows_of(
        evaluate_claims(contrasts, empty, train, RULES, shift=shift, shortcut_label="Pneumonia"), "shortcut"
    )
    assert table["verdict"].tolist() == [SUPPORTED, CONTRADICTED]
    assert verdicts(table)["shortcut"] == UNRESOLVED  # the conditions disagree


def test_without_a_shifted_test_set_the_shortcut_claim_says_so() -> None:
    table = run([delta("resnet50", "original", "tight", -0.05, 0.03, 0.001)])
    row = rows_of(table, "shortcut").iloc[0]
    assert row["verdict"] == UNRESOLVED and "no shifted test set" in row["note"]


# ---------------------------------------------------------------- whole rows, exactly


def assert_rows(rows: list[dict], expected: list[dict]) -> None:
    """Rows equal field by field (NaN equal to NaN, floats to 1e-12), every column present."""
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert list(row) == COLUMNS
        for key in COLUMNS:
            got, value = row[key], want[key]
            if isinstance(value, float) and np.isnan(value):
                assert isinstance(got, float) and np.isnan(got), (key, got)
            elif isinstance(value, float):
                assert got == pytest.approx(value, abs=1e-12), (key, got)
            else:
                assert got == value, (key, got)


def expected_row(
    claim, backbone, measure, estimate, low, high, p, verdict, note="", floor=NAN, needed=NAN, test_set="test"
) -> dict:
    values = [claim, backbone, measure, estimate, low, high, p, verdict, note, floor, needed, test_set]
    return dict(zip(COLUMNS, values, strict=True))


def test_the_loose_rows_carry_each_backbones_delta_interval_holm_p_and_floor() -> None:
    """Two backbones' loose - original deltas: Holm over the two p-values (0.01 -> 0.02), the 90%
    interval against the margin in the note, and the floor of a family of two at 1000 resamples."""
    contrasts = pd.DataFrame(
        [
            delta("resnet50", "original", "loose", 0.004, 0.02, 0.5),
            delta("resnet18", "original", "loose", -0.03, 0.01, 0.01),
            delta("resnet18", "original", "tight", -0.2, 0.01, 0.001),  # another pair: not in the family
        ],
        columns=CONTRAST_COLUMNS,
    )
    measure, floor = "Δ macro AUROC (loose - original)", 2 * 2 / 1001
    assert_rows(
        loose_comparable_claim(contrasts, RULES),
        [
            expected_row(
                "loose_comparable", "resnet50", measure, 0.004, -0.016, 0.024, 0.5, UNRESOLVED,
                "90% CI [-0.012, +0.020] vs ±0.02", floor, 80,
            ),
            expected_row(
                "loose_comparable", "resnet18", measure, -0.03, -0.04, -0.02, 0.02, CONTRADICTED,
                "90% CI [-0.038, -0.022] vs ±0.02", floor, 80,
            ),
        ],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("pair", "delta_", "p_holm", "verdict"),
    [
        (("original", "loose"), 0.03, 0.01, SUPPORTED),
        (("loose", "original"), -0.03, 0.01, SUPPORTED),  # the same test written the other way round
        (("original", "loose"), 0.0, 0.01, CONTRADICTED),  # significant, but no gain
        (("original", "loose"), 0.03, 0.05, UNRESOLVED),  # p at alpha is not below it
        (("original", "loose"), 0.0, 0.5, UNRESOLVED),  # its upper end exactly at the margin: not inside
        (("original", "loose"), -0.001, 0.5, CONTRADICTED),  # inside: negligible
    ],
)
def test_the_loose_no_finding_rows_from_delong_tests_in_either_order(pair, delta_, p_holm, verdict) -> None:
    delong = pd.DataFrame(
        [
            delong_row("resnet50", "original", "tight", NO_FINDING, 0.1, 0.001),  # not the loose pair
            delong_row("resnet50", *pair, NO_FINDING, delta_, p_holm),
            delong_row("resnet50", *pair, "Mass", 0.2, 0.001),  # not No Finding
            delong_row("resnet18", *pair, NO_FINDING, delta_, p_holm),
        ]
    )
    sign = 1 if pair == ("original", "loose") else -1
    gain = sign * delta_
    expected = expected_row(
        "loose_no_finding", "resnet50", "Δ No Finding AUROC (loose - original), DeLong", gain,
        gain - 0.02, gain + 0.02, p_holm, verdict, "Holm within backbone over all DeLong tests", 0.0,
        test_set="padchest",
    )  # fmt: skip
    assert_rows(
        loose_no_finding_claim(delong, RULES, test_set="padchest"),
        [expected, {**expected, "backbone": "resnet18"}],
    )


def test_best_with_one_cell_is_one_unresolved_row_saying_so() -> None:
    rows = best_claim(pd.DataFrame([cell("resnet50", "original", 0.8)], columns=CONTRAST_COLUMNS), RULES)
    assert_rows(
        rows, [expected_row("best", "all", "macro AUROC", NAN, NAN, NAN, NAN, UNRESOLVED, "one cell only")]
    )


def test_best_without_the_reference_cell_names_the_best_one() -> None:
    table = pd.DataFrame(
        [
            cell("densenet", "original", 0.8),
            cell("resnet50", "tight", 0.7),
            versus(("densenet", "original"), ("resnet50", "tight"), -0.1, 0.01),
        ],
        columns=CONTRAST_COLUMNS,
    )
    note = "resnet50 / original is not in this run; best is densenet / original"
    assert_rows(
        best_claim(table, RULES),
        [expected_row("best", "resnet50", "macro AUROC", NAN, NAN, NAN, NAN, UNRESOLVED, note)],
    )


def test_best_reads_the_reference_cell_itself_not_a_cell_sharing_its_backbone_or_condition() -> None:
    rows = [
        cell("densenet", "original", 0.85),
        cell("resnet50", "tight", 0.70),
        cell("resnet50", "original", 0.80),
        versus(("densenet", "original"), ("resnet50", "tight"), -0.15, 0.001),
        versus(("densenet", "original"), ("resnet50", "original"), -0.05, 0.01),
    ]
    (row,) = best_claim(pd.DataFrame(rows, columns=CONTRAST_COLUMNS), RULES)
    holm_p = 0.01  # the reference's own p after Holm over the two comparisons (the larger, times 1)
    note = "best is densenet / original; reference minus best -0.050 [-0.070, -0.030]"
    # two bootstrap tests of 1000 resamples: Holm's floor 2 * 2 / 1001; below 0.05 from 2 * 2 / 0.05 = 80
    floor, needed = 4 / 1001, 80
    expected = expected_row(
        "best", "resnet50", "macro AUROC", 0.80, 0.77, 0.83, holm_p, CONTRADICTED, note, floor, needed
    )
    assert_rows([row], [expected])


@pytest.mark.parametrize(("p", "verdict"), [(0.0499, SUPPORTED), (0.05, UNRESOLVED)])
def test_best_needs_every_holm_p_strictly_below_alpha(p, verdict) -> None:
    """Holm leaves the larger of two p-values as it is: at alpha exactly, the claim is not supported."""
    rows = [
        cell("resnet50", "original", 0.85),
        cell("resnet50", "tight", 0.70),
        cell("densenet", "original", 0.80),
        versus(("resnet50", "original"), ("resnet50", "tight"), -0.15, 0.001),
        versus(("resnet50", "original"), ("densenet", "original"), -0.05, p),
    ]
    (row,) = best_claim(pd.DataFrame(rows, columns=CONTRAST_COLUMNS), RULES)
    assert row["verdict"] == verdict and row["p_holm"] == pytest.approx(p)
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx((0.85, 0.82, 0.88))
    note = f"best cell; runner-up densenet / original -0.050 [-0.070, -0.030], Holm p {p:.3g}"
    assert row["note"] == note and row["backbone"] == "resnet50" and row["measure"] == "macro AUROC"


@pytest.mark.parametrize(("alpha", "margin"), [(0.5, 0.02), (0.0, 0.02), (0.05, 1.0), (0.05, 0.0)])
def test_the_rules_refuse_each_bound_itself(alpha, margin) -> None:
    with pytest.raises(ConfigError):
        ClaimRules(alpha=alpha, margin=margin)
    ClaimRules(alpha=0.49, margin=0.99)


def test_the_summary_page_is_the_verdicts_the_rows_and_the_rules_word_for_word() -> None:
    rows = [
        expected_row(
            "best",
            "resnet50",
            "macro AUROC",
            0.81234,
            0.78,
            0.84,
            0.012345,
            SUPPORTED,
            "best cell",
            0.004,
            80,
        ),
        expected_row("tight_lower", "resnet50", "Δ macro AUROC", -0.05, NAN, NAN, NAN, UNRESOLVED),
        # at its floor, and the floor at alpha: written as a bound, and named as undecidable
        expected_row("shortcut", "a", "drop", 0.03, 0.01, 0.05, 0.1, UNRESOLVED, "", 0.1, 40),
    ]
    text = summary_markdown(pd.DataFrame(rows, columns=COLUMNS), ClaimRules(alpha=0.1, margin=0.03), "##")
    lines = text.splitlines()
    assert lines[:4] == ["## The paper's claims against this run", "", "| claim | verdict |", "|---|---|"]
    judged = [claim for claim in CLAIMS if claim not in OPTIONAL]  # no row judges the mask source here
    table = {line.split(" | ")[0][2:]: line.split(" | ")[1] for line in lines[4 : 4 + len(judged)]}
    assert table == {CLAIMS[c]: f"**{SUPPORTED if c == 'best' else UNRESOLVED}** |" for c in judged}
    at = 4 + len(judged)
    assert lines[at : at + 6] == [
        "",
        "| claim | set | backbone | measure | estimate | CI | p (Holm) | p floor | verdict | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
        "| best | test | resnet50 | macro AUROC | 0.812 | [0.780, 0.840] | 0.0123 | 0.004 | supported | "
        "best cell |",
        "| tight_lower | test | resnet50 | Δ macro AUROC | -0.050 |  |  |  | not resolved |  |",
        "| shortcut | test | a | drop | 0.030 | [0.010, 0.050] | ≤ 0.1 | 0.1 | not resolved |  |",
    ]
    at += 1
    assert lines[at + 6] == (
        "How to read it: intervals are 90% (DeLong for the No Finding test, otherwise a paired bootstrap "
        "over test patients); p-values are Holm-adjusted within each claim (DeLong's within backbone, the "
        "paper's pairs apart from the mask source's). A difference counts as negligible when its 80% "
        "interval lies inside ±0.03 AUROC. *Comparable* is supported by a negligible difference; "
        "*better*, *lower* and *depends on the backbone* by a significant one in that direction, and "
        "contradicted by a significant one the other way or a negligible one. *Trains faster* means "
        "reaching the best validation macro AUROC in less wall time (paired over seeds, tested with "
        f">= {MIN_SEEDS_FOR_TIME_TEST} seeds). *Protects against a shortcut* means a masked condition "
        "loses significantly less AUROC "
        "than original images from the test set to the shifted one (images where the suspected cue no "
        "longer goes with the label; `tables/shift.csv`); *keeps more AUROC on another collection* the "
        "same from the internal test set to each external one (`tables/shift_test_sets.csv`), where the "
        "verdict above needs every set to agree. *Leaves unchanged* (the mask source) is supported when "
        "the difference between a classifier on CheXmask's masks and one on the segmenter's, of the same "
        "extent, is negligible, and contradicted when its interval lies outside the margin. Scores are "
        "averaged over seeds before every test, so the tests compare conditions on this test set. *Not "
        "resolved* means this sample cannot tell. A bootstrap p cannot fall below 2 / (resamples + 1), "
        "and Holm multiplies that by the family's size: *p floor* is the smallest adjusted p the row's "
        'family can reach (0 for DeLong and t tests), and a p written "≤ x" sits at it.'
    )
    assert lines[at + 5] == "" and lines[at + 7 :] == [
        "",
        "Undecidable at this run's resamples:",
        "",
        "- shortcut: at this run's resamples its smallest attainable Holm p is 0.1, not below alpha 0.1, "
        "so it cannot be found significant whatever the data; set evaluate.n_boot to at least 40.",
    ]


def test_the_written_summary_judges_the_shortcut_from_the_shift_table(tmp_path) -> None:
    pd.DataFrame(
        [
            cell("resnet50", "original", 0.8),
            cell("resnet50", "tight", 0.8),
            versus(("resnet50", "original"), ("resnet50", "tight"), 0.0, 1.0),
        ],
        columns=CONTRAST_COLUMNS,
    ).to_csv(tmp_path / "contrasts.csv", index=False)
    pd.DataFrame(
        columns=[
            "backbone",
            "label",
            "condition_a",
            "condition_b",
            "delta",
            "ci_low",
            "ci_high",
            "p_value",
            "p_holm",
        ]
    ).to_csv(tmp_path / "delong.csv", index=False)
    pd.DataFrame(training("resnet50", {"original": [10.0]})).to_csv(tmp_path / "training.csv", index=False)
    pd.DataFrame([shift_row("resnet50", "tight", 0.06, 0.001, (0.04, 0.08))]).to_csv(
        tmp_path / "shift.csv", index=False
    )
    paths = [
        tmp_path / n for n in ("contrasts.csv", "delong.csv", "training.csv", "summary.md", "claims.csv")
    ]
    with_shift = write_summary(
        *paths, alpha=0.05, margin=0.02, shift=tmp_path / "shift.csv", shortcut_label="Pneumonia"
    )
    shortcut = rows_of(with_shift, "shortcut")
    assert shortcut["verdict"].tolist() == [SUPPORTED]
    without = write_summary(*paths, alpha=0.05, margin=0.02)
    assert rows_of(without, "shortcut")["verdict"].tolist() == [UNRESOLVED]
    assert pd.read_csv(tmp_path / "claims.csv")["verdict"].tolist() == without["verdict"].tolist()


# ---------------------------------------------------------------- claims judged per external set


def set_shift_row(test_set, backbone, condition, estimate, p, eq, kind="excess_drop") -> dict:
    row = shift_row(backbone, condition, estimate, p, eq, label=MACRO)
    return {**row, "test_set": test_set, "kind": kind}


def test_transfer_is_judged_within_each_external_set_and_needs_every_set_to_agree() -> None:
    contrasts = pd.DataFrame(columns=CONTRAST_COLUMNS)
    empty = pd.DataFrame(columns=["backbone", "label", "condition_a", "condition_b", "delta", "p_holm"])
    train = pd.DataFrame(columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"])
    set_shift = pd.DataFrame(
        [
            set_shift_row("padchest", "a", "tight", 0.08, 0.01, (0.03, 0.13)),
            set_shift_row("padchest", "a", "loose", 0.06, 0.02, (0.01, 0.11)),
            set_shift_row("padchest", "a", "tight", 0.3, 0.0001, (0.2, 0.4), kind="drop"),  # not a claim
            set_shift_row("vindr", "a", "tight", 0.001, 0.9, (-0.01, 0.012)),
        ]
    )
    table = evaluate_claims(contrasts, empty, train, RULES, set_shift=set_shift)
    rows = rows_of(table, "transfer")
    assert rows["test_set"].tolist() == ["padchest", "padchest", "vindr"]
    # Holm within padchest only (two tests): 0.01 * 2, max(0.02 * 1, 0.02); vindr's one test is its own family
    assert rows["p_holm"].tolist() == pytest.approx([0.02, 0.02, 0.9])
    assert rows["verdict"].tolist() == [SUPPORTED, SUPPORTED, CONTRADICTED]
    assert rows["p_floor"].tolist() == pytest.approx([2 * 2 / 1001, 2 * 2 / 1001, 2 / 1001])
    assert rows["measure"].iloc[2] == "macro AUROC drop on vindr, original - tight"
    assert verdicts(table)["transfer"] == UNRESOLVED  # the sets disagree
    per_set = set_verdicts(table).set_index("claim")
    assert per_set.loc[CLAIMS["transfer"]].to_dict() == {"padchest": SUPPORTED, "vindr": CONTRADICTED}
    # a set without the No Finding test (no DeLong table given) is not resolved on it, not left out
    assert per_set.loc[CLAIMS["loose_no_finding"]].to_dict() == {"padchest": UNRESOLVED, "vindr": UNRESOLVED}
    text = summary_markdown(table, RULES)
    block = [
        "Judged on each external test set:",
        "",
        "| claim | padchest | vindr |",
        "|---|---|---|",
        f"| {CLAIMS['loose_no_finding']} | not resolved | not resolved |",
        f"| {CLAIMS['transfer']} | supported | contradicted |",
        "",
        "| claim | set | backbone | measure | estimate | CI | p (Holm) | p floor | verdict | note |",
    ]
    start = text.splitlines().index(block[0])
    assert text.splitlines()[start - 1] == "" and text.splitlines()[start : start + len(block)] == block


def test_the_no_finding_claim_is_judged_on_each_set_and_the_headline_on_the_internal_set_alone() -> None:
    internal = delong_row("resnet50", "original", "loose", NO_FINDING, 0.03, 0.01)
    elsewhere = [
        {**delong_row("resnet50", "original", "loose", NO_FINDING, -0.05, 0.001), "test_set": "padchest"},
        {**delong_row("resnet50", "original", "loose", "Mass", 0.2, 0.0001), "test_set": "padchest"},
    ]
    columns = ["backbone", "label", "condition_a", "condition_b", "delta", "ci_low", "ci_high", "p_value"]
    table = evaluate_claims(
        pd.DataFrame(columns=CONTRAST_COLUMNS),
        pd.DataFrame([internal], columns=[*columns, "p_holm"]),
        pd.DataFrame(columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"]),
        RULES,
        set_delong=pd.DataFrame(elsewhere),
    )
    rows = rows_of(table, "loose_no_finding")
    assert rows[["test_set", "verdict"]].values.tolist() == [["test", SUPPORTED], ["padchest", CONTRADICTED]]
    assert verdicts(table)["loose_no_finding"] == SUPPORTED
    assert set_verdicts(table).set_index("claim").loc[CLAIMS["loose_no_finding"], "padchest"] == CONTRADICTED


def test_without_external_sets_transfer_says_so_and_no_per_set_table_is_written() -> None:
    table = run([delta("resnet50", "original", "tight", -0.05, 0.03, 0.001)])
    row = rows_of(table, "transfer").iloc[0]
    assert row["verdict"] == UNRESOLVED and "no external test set" in row["note"]
    assert set_verdicts(table).empty
    assert "Judged on each external test set" not in summary_markdown(table, RULES)


def test_a_test_set_table_without_its_set_column_is_named() -> None:
    shift = pd.DataFrame([shift_row("a", "tight", 0.08, 0.01, (0.03, 0.13))])
    with pytest.raises(InputError, match=r"test sets' shift table lacks columns \['test_set'\]"):
        evaluate_claims(
            pd.DataFrame(columns=CONTRAST_COLUMNS),
            pd.DataFrame(columns=["backbone", "label", "condition_a", "condition_b", "delta", "p_holm"]),
            pd.DataFrame(columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"]),
            RULES,
            set_shift=shift,
        )


# ---------------------------------------------------------------- p floors


def test_the_floor_is_the_family_size_times_the_smallest_bootstrap_p():
    # the smallest bootstrap p of B resamples: every resample on one side of zero
    assert bootstrap_p(np.full(200, 0.1)) == pytest.approx(2 / 201)
    eighteen = Floor(tests=18, resamples=200, alpha=0.05)
    assert eighteen.p == pytest.approx(36 / 201)  # 0.179: the backbone claim's at the demo's n_boot
    assert eighteen.needed == 720
    assert Floor(18, 720).p < 0.05 <= Floor(18, 719).p
    assert Floor(4, 200).p == pytest.approx(0.0398, abs=5e-5)  # the demo's shortcut family
    assert Floor(300, 200).p == 1.0 and np.isnan(Floor(0, 0).p)


def test_the_resamples_needed_count_draws_when_some_define_no_auroc():
    # 5 tests need 200 defined resamples; if 85 of 200 draws were defined, 200 draws are not enough
    assert Floor(5, 200, alpha=0.05, drawn=200).needed == 200
    short = Floor(5, 85, alpha=0.05, drawn=200)
    assert short.needed == 471  # ceil(200 * 200 / 85)
    assert Floor(5, 85, alpha=0.05).needed == 200  # without the draws known, defined resamples only


def shortcut_at_floor(n: int, resamples: int) -> pd.DataFrame:
    """``n`` shift rows whose every resample favoured masking: each p at 2 / (resamples + 1)."""
    p = 2 / (resamples + 1)
    rows = [shift_row(f"b{i}", "tight", 0.1, p, (0.05, 0.15)) for i in range(n)]
    return pd.DataFrame(rows).assign(n_resamples=resamples)


def test_a_p_at_its_floor_is_written_as_a_bound_and_an_unreachable_claim_is_named(caplog):
    empty = pd.DataFrame(columns=["backbone", "label", "condition_a", "condition_b", "delta", "p_holm"])
    train = pd.DataFrame(columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"])
    contrasts = pd.DataFrame([delta("b0", "original", "tight", -0.05, 0.03, 0.001)], columns=CONTRAST_COLUMNS)
    # 4 tests at 200 resamples: floor 0.0398, below alpha; every p sits at it
    table = evaluate_claims(
        contrasts, empty, train, RULES, pd.DataFrame(shortcut_at_floor(4, 200)), "Pneumonia"
    )
    rows = rows_of(table, "shortcut")
    assert rows["p_holm"].tolist() == pytest.approx([8 / 201] * 4)
    assert rows["p_floor"].tolist() == pytest.approx([8 / 201] * 4)
    assert (rows["n_boot_needed"] == 160).all() and (rows["verdict"] == SUPPORTED).all()
    assert "| ≤ 0.0398 | 0.0398 | supported |" in summary_markdown(table, RULES)
    assert undecidable(table, RULES) == []
    # 30 tests at the same resamples: floor 0.299, nothing can pass 0.05 whatever the data
    with caplog.at_level("WARNING", logger="cxrmask.claims"):
        table = evaluate_claims(
            contrasts, empty, train, RULES, pd.DataFrame(shortcut_at_floor(30, 200)), "Pneumonia"
        )
    rows = rows_of(table, "shortcut")
    assert rows["p_floor"].tolist() == pytest.approx([60 / 201] * 30)
    assert (rows["verdict"] == UNRESOLVED).all()
    (line,) = undecidable(table, RULES)
    assert line.startswith("shortcut: ") and line.endswith("set evaluate.n_boot to at least 1200.")
    assert [r.getMessage() for r in caplog.records if r.name == "cxrmask.claims"] == [line]
    assert line in summary_markdown(table, RULES)
    # analytic tests have no floor; a row with no test has none to state
    tight = rows_of(table, "tight_lower").iloc[0]
    assert tight["p_floor"] == pytest.approx(2 / 1001) and tight["n_boot_needed"] == 40
    faster = rows_of(table, "tight_faster")
    assert faster.empty or faster["p_floor"].isna().all()


def test_analytic_rows_have_a_zero_floor():
    table = run(
        [delta("resnet50", "original", "loose", 0.0, 0.01, 0.9, label=MACRO)],
        delong=[delong_row("resnet50", "original", "loose", NO_FINDING, 0.05, 0.001)],
    )
    row = rows_of(table, "loose_no_finding").iloc[0]
    assert row["p_floor"] == 0.0 and np.isnan(row["n_boot_needed"])


# ---------------------------------------------------------------- the mask source


def test_the_source_claim_holds_each_extents_chexmask_twin_to_the_margin_with_holm_over_both() -> None:
    table = run(
        [
            delta("resnet50", "tight", "chexmask-tight", 0.004, 0.012, 0.4),  # eq ±0.0096 around it: inside
            delta("resnet50", "loose", "chexmask-loose", 0.06, 0.02, 0.01),  # eq [0.044, 0.076]: outside
            delta("densenet121", "tight", "chexmask-tight", 0.02, 0.03, 0.2),  # straddles the margin
            delta("resnet50", "tight", "chexmask-tight", 0.5, 0.01, 0.001, label="Mass"),  # not macro
        ]
    )
    rows = rows_of(table, "source")
    assert rows["verdict"].tolist() == [SUPPORTED, UNRESOLVED, CONTRADICTED]
    assert rows["backbone"].tolist() == ["resnet50", "densenet121", "resnet50"]
    assert rows["measure"].tolist()[2] == "Δ macro AUROC (chexmask-loose - loose)"
    assert rows["p_holm"].tolist() == pytest.approx([0.4, 0.4, 0.03])  # Holm over the family of three
    assert rows["p_floor"].tolist() == pytest.approx([2 * 3 / 1001] * 3)
    assert rows["estimate"].tolist() == pytest.approx([0.004, 0.02, 0.06])
    assert rows["ci_low"].tolist() == pytest.approx([-0.008, -0.01, 0.04])
    assert rows["ci_high"].tolist() == pytest.approx([0.016, 0.05, 0.08])
    assert rows["note"].tolist()[2] == "90% CI [+0.044, +0.076] vs ±0.02"
    assert verdicts(table)["source"] == UNRESOLVED


def test_without_chexmask_conditions_the_source_claim_is_absent_not_unresolved() -> None:
    table = run([delta("resnet50", "original", "loose", -0.004, 0.012, 0.5)])
    assert rows_of(table, "source").empty
    assert "source" not in verdicts(table)
    assert CLAIMS["source"] not in summary_markdown(table, RULES)
    assert CLAIMS["loose_comparable"] in summary_markdown(table, RULES)


def interaction(pair: str, estimate: float, p: float) -> dict:
    return contrast(
        "interaction", "resnet50", pair, "densenet121", pair, estimate=estimate, ci_low=estimate - 0.1,
        ci_high=estimate + 0.1, eq_low=estimate - 0.08, eq_high=estimate + 0.08, p_value=p,
    )  # fmt: skip


def test_the_study_grid_keeps_rows_whose_every_condition_is_the_papers() -> None:
    """Either column may name a CheXmask condition (a pair is written either way round); an interaction
    names two; a blank second condition (a cell's own row) names none."""
    first = ["original", "chexmask-tight", "original", "tight->loose", "loose->chexmask-loose"]
    second = ["loose", "tight", "chexmask-loose", None, None]
    table = pd.DataFrame({"condition_a": first, "condition_b": second})
    kept = study_grid(table, ["condition_a", "condition_b"])
    assert kept.index.tolist() == [0, 3]
    assert study_grid(table, ["condition_b"]).index.tolist() == [0, 1, 3, 4]


def test_the_papers_claims_never_count_a_chexmask_condition() -> None:
    """A CheXmask cell neither joins the tight claim's family (its Holm factor stays 1), nor the backbone
    interactions, nor the time-to-best ratio: the paper's claims are about its own segmenter's masks."""
    table = run(
        [
            delta("resnet50", "original", "tight", -0.05, 0.03, 0.02),
            delta("resnet50", "original", "chexmask-tight", -0.05, 0.03, 0.02),
            interaction("tight->chexmask-tight", 0.2, 0.001),
        ],
        delong=[delong_row("resnet50", "original", "chexmask-tight", "Mass", -0.2, 0.001)],
        train=training("resnet50", {"original": [100], "tight": [50], "chexmask-tight": [5]}),
    )
    tight = rows_of(table, "tight_lower").iloc[0]
    assert tight["p_holm"] == pytest.approx(0.02) and tight["note"].startswith("0 of 0 findings")
    assert rows_of(table, "backbone_dependent")["note"].tolist() == ["one backbone only"]
    assert rows_of(table, "tight_faster").iloc[0]["estimate"] == pytest.approx(0.5)


# ---------------------------------------------------------------- at the bars, and rows field by field


def test_each_verdict_rule_at_its_bar() -> None:
    """The margin and alpha are strict bars: an interval ending at ±margin is not inside it, a p at alpha
    is not significant; an interval starting at +margin (or ending at -margin) lies outside it."""
    assert directional(-0.05, 0.05, -0.3, -0.2, -1, RULES) == UNRESOLVED  # p at alpha
    assert directional(-0.01, 0.5, -0.02, 0.01, -1, RULES) == UNRESOLVED  # low at -margin
    assert directional(0.01, 0.5, -0.01, 0.02, -1, RULES) == UNRESOLVED  # high at +margin
    assert directional(0.0, 0.5, -0.0199, 0.0199, -1, RULES) == CONTRADICTED
    assert equivalent(0.02, 0.05, RULES) == CONTRADICTED
    assert equivalent(-0.05, -0.02, RULES) == CONTRADICTED
    assert equivalent(-0.05, -0.0199, RULES) == UNRESOLVED


def test_the_tight_rows_carry_each_backbones_delta_and_count_only_its_own_significant_drops() -> None:
    contrasts = pd.DataFrame(
        [
            delta("resnet50", "original", "tight", -0.05, 0.03, 0.01),
            delta("resnet18", "original", "tight", 0.001, 0.02, 0.5),  # negligible: contradicted
        ],
        columns=CONTRAST_COLUMNS,
    )
    delong = pd.DataFrame(
        [
            delong_row("resnet50", "original", "tight", "Mass", -0.06, 0.01),  # counted
            delong_row("resnet50", "original", "tight", "Edema", 0.0, 0.01),  # no drop
            delong_row("resnet50", "original", "tight", "Nodule", 0.3, 0.01),  # a rise
            delong_row("resnet50", "original", "tight", "Fibrosis", -0.04, 0.05),  # p at alpha
            delong_row("resnet50", "original", "loose", "Mass", -0.06, 0.01),  # another pair
            delong_row("resnet50", "loose", "tight", "Mass", -0.06, 0.01),  # another pair
            delong_row("resnet18", "original", "loose", "Mass", -0.06, 0.01),  # another backbone's pair
            delong_row("resnet50", "original", "tight", NO_FINDING, -0.08, 0.001),  # not a finding
        ]
    )
    measure, floor = "Δ macro AUROC (tight - original)", 2 * 2 / 1001
    assert_rows(
        tight_lower_claim(contrasts, delong, RULES),
        [
            expected_row(
                "tight_lower", "resnet50", measure, -0.05, -0.08, -0.02, 0.02, SUPPORTED,
                "1 of 4 findings significantly lower (DeLong, Holm)", floor, 80,
            ),
            expected_row(
                "tight_lower", "resnet18", measure, 0.001, -0.019, 0.021, 0.5, CONTRADICTED,
                "0 of 0 findings significantly lower (DeLong, Holm)", floor, 80,
            ),
        ],
    )  # fmt: skip


def test_the_time_rows_in_the_training_tables_order_with_their_epochs_and_without_a_test_below_three_seeds():
    """Backbones keep the order the training table lists them in; one without tight runs is skipped, the
    ones after it kept; below three seeds the row shows the ratio and epochs and leaves the test out."""
    train = pd.DataFrame(
        [
            *training("vit", {"original": [100.0], "tight": [50.0]}),
            *training("alexnet", {"original": [80.0]}),  # no tight run
            *training("convnext", {"original": [90.0, 90.0], "tight": [45.0, 180.0]}),
        ]
    )
    measure = "time to best, tight / original"
    assert_rows(
        tight_faster_claim(train, RULES),
        [
            expected_row(
                "tight_faster", "vit", measure, 0.5, NAN, NAN, NAN, UNRESOLVED,
                "epochs to best 3.0 (tight) vs 3.0 (original); 1 seed(s) (a test needs >= 3 seeds)",
            ),
            expected_row(
                "tight_faster", "convnext", measure, 1.0, NAN, NAN, NAN, UNRESOLVED,
                "epochs to best 3.5 (tight) vs 3.5 (original); 2 seed(s) (a test needs >= 3 seeds)",
            ),
        ],
    )  # fmt: skip
    # the tight epochs are the tight runs'
    later = train.assign(best_epoch=np.where(train["mask"] == "tight", 9, 4))
    assert tight_faster_claim(later, RULES)[0]["note"].startswith(
        "epochs to best 9.0 (tight) vs 4.0 (original)"
    )


@pytest.mark.parametrize(
    ("p", "floor", "text"),
    [
        (0.0398, 0.0398, "≤ 0.0398"),  # at its floor: a bound
        (0.0398 * (1 + 1e-12), 0.0398, "≤ 0.0398"),  # at it but for rounding
        (0.06, 0.0398, "0.06"),  # above it, even by less than twice it
        (0.0398 * 1.5, 0.0398, "0.0597"),
        (0.0, 0.0, "0"),  # an analytic test's zero floor bounds nothing
        (1.5e-5, 0.0, "1.5e-05"),
        (np.nan, 0.0398, ""),
    ],
)
def test_a_p_is_written_as_a_bound_only_at_its_floor(p, floor, text) -> None:
    assert _p_text(p, floor) == text


def test_a_family_is_floored_by_its_draws_where_some_define_no_auroc() -> None:
    family = pd.DataFrame([delta("a", "original", "loose", 0.0, 0.01, 0.5)]).assign(n_resamples=150)
    drawn = ClaimRules(alpha=0.05, margin=0.02, n_boot=200)
    assert Floor.of(family, drawn) == Floor(tests=1, resamples=150, alpha=0.05, drawn=200)
    assert Floor.of(family, drawn).needed == 54  # ceil(40 * 200 / 150)
    assert Floor.of(family.iloc[:0], drawn) == Floor(tests=0, resamples=0, alpha=0.05, drawn=200)


def test_the_effect_depends_claim_is_supported_by_any_one_significant_interaction() -> None:
    rows = [
        expected_row(claim, "b", "m", 0.0, NAN, NAN, NAN, verdict)
        for claim, verdict in [
            ("backbone_dependent", UNRESOLVED),
            ("backbone_dependent", SUPPORTED),
            ("tight_lower", SUPPORTED),
            ("tight_lower", CONTRADICTED),
        ]
    ]
    rows.append({**expected_row("transfer", "b", "m", 0.0, NAN, NAN, NAN, SUPPORTED), "test_set": "padchest"})
    found = verdicts(pd.DataFrame(rows, columns=COLUMNS))
    assert found["backbone_dependent"] == SUPPORTED and found["tight_lower"] == UNRESOLVED
    assert found["transfer"] == SUPPORTED  # judged on the external sets' rows alone
    assert found["best"] == UNRESOLVED and "source" not in found  # no row: not resolved, or absent


def test_the_written_summary_is_the_claims_judged_under_every_setting_it_is_given(tmp_path) -> None:
    """Each setting moves a verdict here: the reference cell (resnet18 / loose is best), alpha 0.1 (a p of
    0.07 is significant), the margin 0.03 (an interval of ±0.024 is negligible), the draws behind the
    resamples (150 of 200 defined) and the external sets' DeLong and shift tables."""
    contrasts = pd.DataFrame(
        [
            cell("resnet18", "loose", 0.85),
            cell("resnet18", "original", 0.8),
            versus(("resnet18", "loose"), ("resnet18", "original"), -0.05, 0.07),
            delta("resnet18", "original", "loose", 0.0, 0.03, 0.9),
        ],
        columns=CONTRAST_COLUMNS,
    ).assign(n_resamples=150)
    set_delong = pd.DataFrame(
        [{**delong_row("resnet18", "original", "loose", NO_FINDING, 0.05, 0.01), "test_set": "padchest"}]
    )
    set_shift = pd.DataFrame([set_shift_row("padchest", "resnet18", "tight", 0.08, 0.01, (0.03, 0.13))])
    files = {"contrasts": contrasts, "delong": pd.DataFrame(columns=[*set_delong.columns[:-1]]),
             "training": pd.DataFrame(training("resnet18", {"original": [10.0]})), "set_delong": set_delong,
             "set_shift": set_shift}  # fmt: skip
    for name, frame in files.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    rules = ClaimRules(alpha=0.1, margin=0.03, reference=("resnet18", "loose"), n_boot=200)
    table = write_summary(
        *(tmp_path / f"{name}.csv" for name in ("contrasts", "delong", "training")),
        tmp_path / "summary.md",
        tmp_path / "claims.csv",
        alpha=0.1,
        margin=0.03,
        reference=["resnet18", "loose"],
        set_delong=tmp_path / "set_delong.csv",
        set_shift=tmp_path / "set_shift.csv",
        n_boot=200,
    )
    expected = evaluate_claims(
        *(pd.read_csv(tmp_path / f"{name}.csv") for name in ("contrasts", "delong", "training")),
        rules,
        set_delong=set_delong,
        set_shift=set_shift,
    )
    pd.testing.assert_frame_equal(table, expected)
    found = verdicts(table)
    assert found["best"] == SUPPORTED and found["loose_comparable"] == SUPPORTED
    assert rows_of(table, "transfer")["verdict"].tolist() == [SUPPORTED]
    assert rows_of(table, "loose_no_finding")["test_set"].tolist() == ["padchest"]
    assert rows_of(table, "best")["n_boot_needed"].tolist() == [27]  # ceil(floor(2 / 0.1) * 200 / 150)
    assert (tmp_path / "summary.md").read_text() == summary_markdown(expected, rules)
    assert (tmp_path / "summary.md").read_text().startswith("# The paper's claims against this run\n")


def no_evidence(claim: str, note: str, backbone: str = "all", measure: str = "") -> dict:
    return expected_row(claim, backbone, measure, NAN, NAN, NAN, NAN, UNRESOLVED, note)


def test_claims_without_evidence_are_one_row_each_saying_why() -> None:
    """No deltas, interactions, shifted or external sets: each claim a row naming what is missing; a
    shifted or external table without the claim's rows leaves that claim's conditions missing."""
    missing = "the conditions it compares are not in this run"
    table = run([])
    assert_rows(
        table[table["claim"].isin(["loose_comparable", "tight_lower", "backbone_dependent", "shortcut",
                                   "transfer"])].to_dict("records"),
        [
            no_evidence("loose_comparable", missing),
            no_evidence("tight_lower", missing),
            no_evidence("backbone_dependent", "one backbone only", measure="interaction"),
            no_evidence("shortcut", "this run has no shifted test set"),
            no_evidence("transfer", "this run has no external test set"),
        ],
    )  # fmt: skip
    other = pd.DataFrame([shift_row("a", "tight", 0.08, 0.01, (0.03, 0.13), label="Mass")])
    table = evaluate_claims(
        pd.DataFrame(columns=CONTRAST_COLUMNS),
        pd.DataFrame(columns=["backbone", "label", "condition_a", "condition_b", "delta", "p_holm"]),
        pd.DataFrame(columns=["backbone", "mask", "seed", "seconds_to_best", "best_epoch"]),
        RULES,
        shift=other,
        shortcut_label="Pneumonia",
        set_shift=other.assign(test_set="padchest", kind="drop"),
    )
    assert_rows(
        table[table["claim"].isin(["shortcut", "transfer"])].to_dict("records"),
        [no_evidence("shortcut", missing), no_evidence("transfer", missing)],
    )


def test_the_interaction_rows_name_both_backbones_with_holm_over_all_and_the_familys_floor() -> None:
    def interaction(backbone_b, condition, label, estimate, p, eq_half):
        return contrast(
            "interaction", "resnet50", condition, backbone_b, condition, label, estimate=estimate,
            ci_low=estimate - 0.03, ci_high=estimate + 0.03, eq_low=estimate - eq_half,
            eq_high=estimate + eq_half, p_value=p,
        )  # fmt: skip

    contrasts = pd.DataFrame(
        [
            interaction("vit", "original->tight", MACRO, 0.06, 0.01, 0.02),  # Holm 0.03: supported
            interaction("vit", "original->loose", NO_FINDING, 0.0, 0.6, 0.01),  # negligible
            interaction("vit", "original->loose", MACRO, 0.01, 0.025, 0.02),  # Holm 0.05: at alpha
        ],
        columns=CONTRAST_COLUMNS,
    )
    floor = 2 * 3 / 1001
    assert_rows(
        backbone_claim(contrasts, RULES),
        [
            expected_row(
                "backbone_dependent", "vit vs resnet50",
                f"Δ of original->tight on {MACRO}, difference between backbones",
                0.06, 0.03, 0.09, 0.03, SUPPORTED, "", floor, 120,
            ),
            expected_row(
                "backbone_dependent", "vit vs resnet50", f"Δ of original->loose on {NO_FINDING}, difference "
                "between backbones", 0.0, -0.03, 0.03, 0.6, CONTRADICTED, "", floor, 120,
            ),
            expected_row(
                "backbone_dependent", "vit vs resnet50",
                f"Δ of original->loose on {MACRO}, difference between backbones",
                0.01, -0.02, 0.04, 0.05, UNRESOLVED, "", floor, 120,
            ),
        ],
    )  # fmt: skip


def test_the_shortcut_and_transfer_rows_field_by_field_in_the_sets_order() -> None:
    shift = pd.DataFrame(
        [
            shift_row("a", "tight", 0.06, 0.01, (0.04, 0.08)),
            shift_row("a", "loose", 0.01, 0.5, (-0.01, 0.03)),
            shift_row("a", "tight", 0.3, 0.0001, (0.2, 0.4), label="Mass"),  # another label
        ]
    )
    floor = 2 * 2 / 1001
    assert_rows(
        shortcut_claim(shift, "Pneumonia", RULES),
        [
            expected_row("shortcut", "a", "Pneumonia AUROC drop on the shifted set, original - tight", 0.06,
                         0.03, 0.09, 0.02, SUPPORTED, "", floor, 80, "shifted"),
            expected_row("shortcut", "a", "Pneumonia AUROC drop on the shifted set, original - loose", 0.01,
                         -0.02, 0.04, 0.5, UNRESOLVED, "", floor, 80, "shifted"),
        ],
    )  # fmt: skip
    sets = pd.DataFrame(
        [
            set_shift_row("vindr", "a", "tight", 0.001, 0.9, (-0.01, 0.012)),
            set_shift_row("padchest", "a", "tight", 0.08, 0.01, (0.03, 0.13)),
        ]
    )
    assert_rows(
        transfer_claim(sets, RULES),
        [
            expected_row("transfer", "a", "macro AUROC drop on vindr, original - tight", 0.001, -0.02, 0.022,
                         0.9, CONTRADICTED, "Holm within the set", 2 / 1001, 40, "vindr"),
            expected_row("transfer", "a", "macro AUROC drop on padchest, original - tight", 0.08, 0.02, 0.14,
                         0.01, SUPPORTED, "Holm within the set", 2 / 1001, 40, "padchest"),
        ],
    )  # fmt: skip


def test_best_reads_macro_cells_only_and_a_beaten_reference_needs_a_p_below_alpha() -> None:
    """The reference tops no macro cell here (a No Finding cell of the reference scores higher, and is
    not a macro cell): it is contradicted by a significant deficit, not by one at alpha."""
    contrasts = [
        {**cell("resnet50", "original", 0.99), "label": NO_FINDING},
        cell("resnet18", "loose", 0.85),
        cell("resnet50", "original", 0.8),
        versus(("resnet18", "loose"), ("resnet50", "original"), -0.05, 0.05),
    ]
    row = best_claim(pd.DataFrame(contrasts, columns=CONTRAST_COLUMNS), RULES)[0]
    assert row["estimate"] == pytest.approx(0.8) and row["verdict"] == UNRESOLVED
    contrasts[-1] = versus(("resnet18", "loose"), ("resnet50", "original"), -0.05, 0.049)
    assert best_claim(pd.DataFrame(contrasts, columns=CONTRAST_COLUMNS), RULES)[0]["verdict"] == CONTRADICTED


def test_time_over_three_seeds_is_contradicted_when_significantly_slower_and_unresolved_when_not() -> None:
    original = [100.0, 120.0, 90.0, 110.0]
    tight = [1.5 * t * (1 + 0.01 * k) for k, t in enumerate(original)]
    row = tight_faster_claim(pd.DataFrame(training("a", {"original": original, "tight": tight})), RULES)[0]
    assert row["estimate"] == pytest.approx(1.5, rel=0.02) and row["p_holm"] < 0.05
    assert row["verdict"] == CONTRADICTED
    noisy = training("a", {"original": original, "tight": [60.0, 200.0, 95.0, 100.0]})
    row = tight_faster_claim(pd.DataFrame(noisy), RULES)[0]
    assert row["p_holm"] > 0.05 and row["verdict"] == UNRESOLVED and row["note"].endswith("4 seed(s)")


def test_the_no_finding_rows_keep_the_external_sets_order() -> None:
    delong = pd.DataFrame(
        [
            {**delong_row("a", "original", "loose", NO_FINDING, 0.05, 0.01), "test_set": name}
            for name in ("vindr", "padchest", "chexpert")
        ]
    )
    rows = set_no_finding_claims(delong, RULES)
    assert [row["test_set"] for row in rows] == ["vindr", "padchest", "chexpert"]
    assert set_no_finding_claims(None, RULES) == []
