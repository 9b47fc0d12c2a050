"""Rule compare_masks_reference: every curated image's tight mask against reference lungs (CheXmask's on NIH,
the ground truth in the demo), Dice by finding, and the QC flag judged by the reference."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask.atomic import write_csv, write_json
from cxrmask.chexmask import read_chexmask
from cxrmask.config import EvaluateSettings
from cxrmask.errors import InputError
from cxrmask.imageio import read_mask
from cxrmask.segment.reference import dice_by_finding, qc_against_reference, score_against_reference
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)


def compare_masks_reference(
    subset: str,
    masks: Sequence[str],
    tables: Sequence[str],
    reference: str,
    table: str,
    findings: str,
    qc: str,
    labels: Sequence[str],
    min_rca: float,
    bad_dice: float,
    settings: EvaluateSettings,
    seed: int,
) -> pd.DataFrame:
    """Score the masks of ``subset``'s images (in the shard folders ``masks``, listed by the shard
    ``tables``) against ``reference`` (a CheXmask CSV); write the per-image table, the by-finding table
    and the QC check (JSON), which judges the flag by ``bad_dice``, the Dice below which QC is meant to
    flag a mask (``finetune.qc_bad_dice``). The No Finding column is among the findings compared."""
    curated = pd.read_csv(subset)
    shard_tables = [pd.read_csv(path) for path in tables]
    folder_of = {
        image: Path(folder)
        for folder, frame in zip(masks, shard_tables, strict=True)
        for image in frame["image"]
    }
    unmasked = sorted(set(curated["image"]) - set(folder_of))
    if unmasked:
        raise InputError(
            f"{len(unmasked)} curated images have no tight mask (e.g. {unmasked[:3]}): rerun generate_masks."
        )
    rows = read_chexmask(reference, images=curated["image"].tolist())
    scored = score_against_reference(
        curated, lambda image: read_mask(folder_of[image] / image), rows, min_rca
    )
    compared = [*labels, NO_FINDING] if NO_FINDING in curated.columns else list(labels)
    by_finding = dice_by_finding(scored, curated, compared, settings.n_boot, settings.alpha, seed)
    qc_rows = pd.concat(shard_tables, ignore_index=True)
    if {"qc_score", "flag"} <= set(qc_rows.columns):
        check = {"available": True, **qc_against_reference(scored, qc_rows, bad_dice)}
    else:
        log.info("the masks carry no QC score (a segmenter without a QC reference): no QC check")
        check = {"available": False, "bad_dice": bad_dice}
    write_csv(table, scored)
    write_csv(findings, by_finding)
    write_json(qc, check)
    for row in by_finding.itertuples(index=False):
        log.info(
            "%s: Dice %.3f on %d positives against %.3f on %d negatives (difference %.3f, [%.3f, %.3f])",
            row.finding,
            row.dice_positive_mean,
            row.n_positive,
            row.dice_negative_mean,
            row.n_negative,
            row.difference,
            row.ci_low,
            row.ci_high,
        )
    return scored
