"""Rule write_report: one Markdown page with every number a reader asks for first."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from cxrmask.atomic import write_text
from cxrmask.metrics import MACRO
from cxrmask.segment.reference import REFERENCE_SOURCE_ROW, markdown_lines
from cxrmask.uncertainty import seed_spread
from cxrmask.vocabulary import DELONG_COLUMNS, REFERENCE_CONDITIONS

PathLike = str | os.PathLike[str]


def _table(frame: pd.DataFrame, digits: int = 3, column_digits: Mapping[str, int] | None = None) -> str:
    """A DataFrame as a Markdown table (no extra dependency); floats to ``digits`` unless named otherwise."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            places = (column_digits or {}).get(column, digits)
            frame[column] = frame[column].map(lambda v, n=places: "" if pd.isna(v) else f"{v:.{n}f}")
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _test_table(finetune: Mapping) -> list[str]:
    """Zero-shot and fine-tuned, per prompt, on the test split nothing was trained or selected on."""
    rows = [
        {
            "model": model.replace("_", "-"),
            "prompt": prompt,
            "Dice mean": numbers["dice_mean"],
            "Dice p10": numbers["dice_p10"],
            "IoU mean": numbers["iou_mean"],
            "HD95 mean (px)": numbers["hd95_mean"],
        }
        for model, by_prompt in finetune["test"].items()
        for prompt, numbers in by_prompt.items()
    ]
    return [
        f"Test split ({finetune['n_test']} images; masks cleaned, HD95 in pixels of the decoder's grid); "
        f"the no-ground-truth prompt is `{finetune['default_prompt']}`:",
        "",
        _table(pd.DataFrame(rows), digits=4, column_digits={"HD95 mean (px)": 1}),
        "",
        *_qc_lines(finetune),
        "",
    ]


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _qc_lines(finetune: Mapping) -> list[str]:
    """QC's calibration and how right it is on the validation split (where it was calibrated) and on the
    test split: Spearman of the estimated Dice with the true Dice, the flag's precision and recall."""
    calibration = finetune["qc_calibration"]
    lines = [
        "QC without ground truth: the estimated Dice is the mask's certainty (one less the decoder's "
        f"uncertain pixels per mask pixel) as {calibration['dice_offset']:+.4f} + "
        f"{calibration['dice_slope']:.4f} x certainty, calibrated on {calibration['n_calibration']} "
        "validation masks, "
        f"where it strays from the true Dice by {calibration['dice_spread']:.4f} (standard deviation); "
        f"a mask is flagged below {calibration['bad_dice']} + {calibration['dice_spread']:.4f} or with its "
        "lungs in one body.",
        "",
        "| split | masks | Spearman with true Dice | flagged | bad | flag precision | flag recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for split in ("val", "test"):
        qc = finetune[f"qc_{split}"]
        rho = "n/a" if qc["spearman_qc_dice"] is None else f"{qc['spearman_qc_dice']:.2f}"
        lines.append(
            f"| {split} | {qc['n']} | {rho} | {qc['flagged']} | {qc['n_bad']} | "
            f"{_share(qc['flag_precision'])} | {_share(qc['flag_recall'])} |"
        )
    return lines


def _segmentation_section(
    finetune: Mapping, tight: pd.DataFrame, loose: pd.DataFrame, shards: Sequence[pd.DataFrame]
) -> list[str]:
    lines = [
        "## Lung segmentation",
        "",
        f"Fine-tuning set: {finetune['n_train']} train / {finetune['n_val']} validation / "
        f"{finetune['n_test']} test images; best epoch {finetune['best_epoch']}.",
        "",
        *_test_table(finetune),
        "| validation Dice | zero-shot | fine-tuned |",
        "|---|---|---|",
        f"| ground-truth box | {finetune['zero_shot_val_dice']:.4f} | {finetune['finetuned_val_dice']:.4f} |",
        f"| learned prior box | {finetune['zero_shot_val_dice_prior_box']:.4f} | "
        f"{finetune['finetuned_val_dice_prior_box']:.4f} |",
        "",
        f"Study masks: {len(tight)} images, mean lung fraction {tight['lung_fraction'].mean():.3f} (tight), "
        f"{loose['lung_fraction'].mean():.3f} (loose); "
        f"{int(tight['fallback'].sum())} fell back to the full image.",
    ]
    flagged = ", ".join(f"shard {i}: {int(t['flag'].sum())} of {len(t)}" for i, t in enumerate(shards))
    lines.append(f"Masks flagged by QC: {flagged}.")
    if "dice" in tight and tight["dice"].notna().any():
        lines.append(
            f"Against the ground-truth lungs: mean Dice {tight['dice'].mean():.4f} (tight), "
            f"loose masks cover {loose['truth_coverage'].mean():.1%} of the true lung area."
        )
    return [*lines, ""]


def seed_table(aurocs: pd.DataFrame) -> pd.DataFrame:
    """Backbone x mask rows, a column per label (macro first), each "mean ± sd" over seeds.

    With one seed the sd is undefined and the cell shows the mean alone.
    """
    spread = seed_spread(aurocs)
    spread["text"] = [
        f"{m:.3f}" if pd.isna(sd) else f"{m:.3f} ± {sd:.3f}"
        for m, sd in zip(spread["mean"], spread["sd"], strict=True)
    ]
    wide = spread.set_index(["backbone", "mask", "label"])["text"].unstack("label")
    labels = [c for c in dict.fromkeys(spread["label"]) if c != MACRO]
    order = spread[["backbone", "mask"]].drop_duplicates()
    return wide.loc[list(order.itertuples(index=False, name=None)), [MACRO, *labels]].reset_index()


def _interval(row: object) -> str:
    """A bootstrap interval as text; where too few resamples define it, said so instead of [nan, nan]."""
    low, high = row.ci_low, row.ci_high
    return "[no interval]" if pd.isna(low) or pd.isna(high) else f"[{low:+.3f}, {high:+.3f}]"


def _drop_table(shift: pd.DataFrame) -> pd.DataFrame:
    """Backbone x condition rows, a column per label: AUROC on the internal test set → on the other set,
    and the drop with its interval; "undefined" where the other set cannot score the label."""
    drops = shift[shift["kind"] == "drop"].copy()
    drops["text"] = [
        "undefined"
        if pd.isna(r.auroc_shifted) or pd.isna(r.auroc_test)
        else f"{r.auroc_test:.3f} → {r.auroc_shifted:.3f} (Δ {r.estimate:+.3f} {_interval(r)})"
        for r in drops.itertuples(index=False)
    ]
    wide = drops.pivot_table(index=["backbone", "condition"], columns="label", values="text", aggfunc="first")
    order = drops[["backbone", "condition"]].drop_duplicates()
    columns = list(dict.fromkeys(drops["label"]))
    return wide.loc[list(order.itertuples(index=False, name=None)), columns].reset_index()


def _shift_section(shift: pd.DataFrame) -> list[str]:
    """Per cell and label: AUROC on the test set, on the shifted set, and the drop with its interval."""
    return [
        "## Shifted test set (the shortcut measured)",
        "",
        "AUROC on the test images → on the shifted test set (images where a suspected cue no longer goes "
        "with the label; in the demo, the test images redrawn with the marker placed independently of it), "
        "and the drop with its patient-bootstrap interval. "
        "`tables/shift.csv` also has each masked condition's drop against the original images' "
        "(`excess_drop`).",
        "",
        _table(_drop_table(shift)),
        "",
    ]


def _delong_lines(tests: pd.DataFrame) -> list[str]:
    """How many of a set's paired DeLong tests are significant after Holm, and which."""
    done = tests[tests["p_value"].notna()]
    significant = done[done["significant"].astype(bool)]
    return [
        f"- Paired DeLong tests between conditions (Holm within backbone, `tables/delong_test_sets.csv`): "
        f"{len(significant)} of {len(done)} significant",
        *[
            f"  - {r.backbone} {r.label}: {r.condition_a} {r.auc_a:.3f} against {r.condition_b} "
            f"{r.auc_b:.3f}, Holm p = {r.p_holm:.3g}"
            for r in significant.itertuples(index=False)
        ],
    ]


def _test_sets_section(aurocs: pd.DataFrame, delong: pd.DataFrame, shift: pd.DataFrame) -> list[str]:
    """Per external test set: the drop table, each masked condition's excess drop, its DeLong tests, and the
    findings the set cannot score (undefined, never 0.5)."""
    lines = [
        "## External test sets",
        "",
        "Every trained cell predicts every external set, its images masked by the same fine-tuned segmenter. "
        "Macro AUROCs average the findings both sets can score. `tables/auroc_test_sets.csv` has each "
        "cell's AUROC with its interval; `tables/shift_test_sets.csv` the drops and excess drops.",
        "",
    ]
    for name, rows in shift.groupby("test_set", sort=False):
        excess = rows[(rows["kind"] == "excess_drop") & (rows["label"] == MACRO)]
        notes = aurocs[(aurocs["test_set"] == name) & aurocs["note"].notna() & (aurocs["note"] != "")]
        undefined = notes.drop_duplicates("label")
        lines += [
            f"### {name}",
            "",
            _table(_drop_table(rows)),
            "",
            *[
                f"- {r.backbone} / {r.condition}: macro excess drop over original images "
                f"{r.estimate:+.3f} {_interval(r)}, p = {r.p_value:.3g}"
                for r in excess.itertuples(index=False)
            ],
            *_delong_lines(delong[delong["test_set"] == name]),
            *[f"- {r.label}: AUROC {r.note}" for r in undefined.itertuples(index=False)],
            "",
        ]
    return lines


def _expert_section(table: pd.DataFrame) -> list[str]:
    """Mass and Nodule outputs scored against NIH's labels and against the experts' on the same images."""
    heading = ["## Expert labels as a second reading", ""]
    if table.empty:
        return [*heading, "The expert table covers none of the test images: no second reading.", ""]
    table = table.assign(
        text=[
            "undefined" if pd.isna(r.auroc) else f"{r.auroc:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
            for r in table.itertuples(index=False)
        ],
        column=[f"{r.output} ({r.reading})" for r in table.itertuples(index=False)],
    )
    wide = table.pivot_table(index=["backbone", "mask"], columns="column", values="text", aggfunc="first")
    order = table[["backbone", "mask"]].drop_duplicates()
    wide = wide.loc[list(order.itertuples(index=False, name=None)), list(dict.fromkeys(table["column"]))]
    first = table.iloc[0]
    return [
        *heading,
        f"On the {first.n_pos + first.n_neg} test images that Google's radiologists adjudicated (Majkowska "
        "et al., Radiology 2020), each output's AUROC against NIH's NLP labels (nlp) and against the "
        'experts\' "Nodule or mass" (expert), with DeLong 95% intervals; seeds averaged. '
        "`tables/auroc_expert.csv`.",
        "",
        _table(wide.reset_index()),
        "",
    ]


def _sources_section(shards: Sequence[pd.DataFrame]) -> list[str]:
    """How many images the CheXmask conditions really cut from the reference's lungs, and which kept the
    segmenter's mask: a reader weighs the source comparison by it."""
    table = pd.concat(shards, ignore_index=True)
    stand_ins = table[table["source"] != REFERENCE_SOURCE_ROW]["image"].tolist()
    return [
        "## Mask sources",
        "",
        f"Conditions {' and '.join(f'`{c}`' for c in REFERENCE_CONDITIONS)} cut the same extents from the "
        f"reference lungs (CheXmask's, `nih.chexmask`; in the demo its ground truth as a CheXmask file): "
        f"{len(table) - len(stand_ins)} of {len(table)} images have them; "
        + (
            f"{len(stand_ins)} kept the segmenter's mask (no reference row, RCA below "
            f"`nih.chexmask_min_rca`, or empty lungs), e.g. {', '.join(stand_ins[:5])}. "
            if stand_ins
            else "none kept the segmenter's mask. "
        )
        + "External test sets have the segmenter's masks only, so a CheXmask cell predicts them through "
        "the segmenter's masks of its extent. `masks/chexmask-tight/shard_*.csv` lists each image's source.",
        "",
    ]


def write_report(
    curation: str,
    finetune: str,
    tight: Sequence[str],
    loose: Sequence[str],
    auroc: str,
    delong: str,
    training: str,
    figures: Sequence[str],
    report: str,
    summary: str | None = None,
    shift: str | None = None,
    masks_by_finding: str | None = None,
    masks_qc: str | None = None,
    auroc_test_sets: str | None = None,
    delong_test_sets: str | None = None,
    shift_test_sets: str | None = None,
    auroc_expert: str | None = None,
    reference_masks: Sequence[str] = (),
) -> None:
    """Curation counts, segmentation quality, AUROC per cell, DeLong results, training time, figures.

    ``summary`` (the claims' ``summary.md``) becomes the report's first section, one heading level down;
    ``shift`` (the shifted test set's table, where the run has one) gets a section after the DeLong tests;
    ``masks_by_finding`` and ``masks_qc`` (where the masks have a reference) one after the segmentation's;
    ``auroc_test_sets``, ``delong_test_sets`` and ``shift_test_sets`` (where the run has external test sets)
    one per set after it; ``auroc_expert`` (with ``nih.expert_labels``) one before them;
    ``reference_masks`` (the CheXmask conditions' shard tables, where the grid has them) one on the masks'
    sources after the segmentation's.
    """
    out = Path(report)
    cur = json.loads(Path(curation).read_text())
    tight_shards = [pd.read_csv(p) for p in tight]
    tight_qc = pd.concat(tight_shards)
    loose_qc = pd.concat([pd.read_csv(p) for p in loose])
    mean = seed_table(pd.read_csv(auroc))
    tests = pd.read_csv(delong)
    train = pd.read_csv(training)
    time_cols = ["best_epoch", "epochs_run", "seconds_to_best", "train_seconds", "test_macro_auroc"]
    train_summary = train.groupby(["backbone", "mask"], sort=False)[time_cols].mean().reset_index()
    splits = pd.DataFrame(cur["splits"]).T.reset_index(names="split")
    claims = Path(summary).read_text().replace("\n#", "\n##") if summary else ""
    lines = [
        "# cxrmask report",
        "",
        *(["#" + claims] if claims else []),
        f"## Curated {cur.get('collection', 'NIH')} subset",
        "",
        _table(splits),
        "",
        f"Patients in two splits: {cur['patients_in_two_splits']}.",
        "",
        *_segmentation_section(json.loads(Path(finetune).read_text()), tight_qc, loose_qc, tight_shards),
        *(
            markdown_lines(pd.read_csv(masks_by_finding), json.loads(Path(masks_qc).read_text()))
            if masks_by_finding and masks_qc
            else []
        ),
        *(_sources_section([pd.read_csv(p) for p in reference_masks]) if reference_masks else []),
        "## Test AUROC (mean ± sd over seeds)",
        "",
        _table(mean),
        "",
        "Intervals (`tables/auroc.csv`): DeLong per label and a patient-level bootstrap for the macro AUROC, "
        "at `evaluate.alpha`. Tests between conditions use each condition's scores averaged over seeds, "
        "so they compare conditions on this test set; the ± above is the spread a rerun with another seed "
        "shows.",
        "",
        "## Paired DeLong tests (Holm within backbone: the paper's pairs, and the mask source's apart)",
        "",
        _table(
            tests[[c for c in DELONG_COLUMNS if c not in ("se", "z", "ci_low", "ci_high", "n_pos", "n_neg")]]
        ),
        "",
        *(_shift_section(pd.read_csv(shift)) if shift else []),
        *(_expert_section(pd.read_csv(auroc_expert)) if auroc_expert else []),
        *(
            _test_sets_section(
                pd.read_csv(auroc_test_sets), pd.read_csv(delong_test_sets), pd.read_csv(shift_test_sets)
            )
            if auroc_test_sets and delong_test_sets and shift_test_sets
            else []
        ),
        "## Training",
        "",
        _table(train_summary, digits=1, column_digits={"test_macro_auroc": 3}),
        "",
        "## Figures",
        "",
        *[f"![{Path(p).stem}]({os.path.relpath(p, out.parent)})" for p in figures],
        "",
    ]
    write_text(out, "\n".join(lines))
