"""The study's masks against a reference segmentation, and whether their error follows the findings.

The comparison original / tight / loose is only as sound as the masks. A
lung segmenter errs most where a finding makes the lung dense (it cuts the
opacity out, or follows it below the diaphragm), and those images are the
positives, so a masked classifier can lose exactly the evidence it is scored
on. This module measures that on the curated images themselves: each tight
mask against a reference (CheXmask's lungs on NIH; the ground truth in the
demo), Dice on the images with each finding against those without, with a
patient-bootstrap interval of the difference, and how well the QC flag picks
out the bad masks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from skimage.transform import resize
from tqdm import tqdm

from cxrmask.atomic import atomic_dir
from cxrmask.chexmask import ChexmaskRow
from cxrmask.errors import InputError
from cxrmask.imageio import read_mask as read_mask_file
from cxrmask.imageio import write_png
from cxrmask.segment.qc import flag_precision_recall
from cxrmask.segment.scoring import mask_scores
from cxrmask.stats import resample_counts

log = logging.getLogger(__name__)

REFERENCE_COLUMNS = ("image", "patient_id", "dice", "hd95", "rca_mean")
REFERENCE_MASK_COLUMNS = ("image", "source", "rca_mean", "lung_fraction")
"""Columns of a reference-mask shard's table (``masks/chexmask-tight/shard_N.csv``)."""
REFERENCE_SOURCE_ROW, SEGMENTER_SOURCE_ROW = "reference", "segmenter"
"""A reference-mask table's ``source``: the reference's lungs, or the segmenter's mask in their place."""


def fit_to(reference: np.ndarray, shape: tuple[int, int], image: str) -> np.ndarray:
    """The reference lungs at the mask's size: rescaled when only the scale differs, refused otherwise.

    CheXmask's NIH masks are at the images' 1024²; a study whose masks are
    at another size of the same aspect compares on its grid. Another aspect
    means another image, which no rescaling makes comparable.
    """
    if reference.shape == shape:
        return reference
    if abs(reference.shape[0] * shape[1] - reference.shape[1] * shape[0]) > max(shape):
        raise InputError(
            f"{image}: the reference mask is {reference.shape[1]} x {reference.shape[0]} but the image's is "
            f"{shape[1]} x {shape[0]}, another aspect: is the reference file of these images?"
        )
    return resize(reference.astype(np.float32), shape, order=1, anti_aliasing=True) >= 0.5


def score_against_reference(
    subset: pd.DataFrame,
    read_mask: Callable[[str], np.ndarray],
    reference: Mapping[str, ChexmaskRow],
    min_rca: float,
) -> pd.DataFrame:
    """Dice and HD95 (MONAI) of each curated image's mask against the reference lungs; one row an image.

    Only images whose reference row has ``Dice RCA (Mean) >= min_rca`` are
    scored (CheXmask's advice is 0.7); images the reference lacks and those
    below the threshold are counted in the log, the first few by name.
    """
    rows, absent, doubtful = [], [], []
    for record in tqdm(subset.itertuples(index=False), total=len(subset), desc="masks vs reference"):
        entry = reference.get(record.image)
        if entry is None:
            absent.append(record.image)
            continue
        if entry.rca_mean < min_rca:
            doubtful.append(record.image)
            continue
        mask = read_mask(record.image)
        truth = fit_to(entry.lungs(), mask.shape, record.image)
        scores = mask_scores(mask[None], truth[None])
        rows.append(
            {
                "image": record.image,
                "patient_id": record.patient_id,
                "dice": float(scores["dice"][0]),
                "hd95": float(scores["hd95"][0]),
                "rca_mean": entry.rca_mean,
            }
        )
    if absent:
        log.warning("%d of %d images have no reference mask, e.g. %s", len(absent), len(subset), absent[:10])
    if doubtful:
        log.info("%d reference masks below RCA %.2f left out, e.g. %s", len(doubtful), min_rca, doubtful[:10])
    if not rows:
        raise InputError(
            f"none of the {len(subset)} curated images has a reference mask with RCA >= {min_rca} "
            f"({len(absent)} absent, {len(doubtful)} below it): check the reference file and its threshold."
        )
    log.info("%d of %d images scored against the reference", len(rows), len(subset))
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def reference_masks(
    names: Sequence[str],
    tight: str,
    reference: Mapping[str, ChexmaskRow],
    min_rca: float,
    masks: str,
) -> pd.DataFrame:
    """Write the reference's lungs of each mask name in ``names`` into the folder ``masks`` (whole or not at
    all), at the size of the segmenter's mask of the same name in ``tight``; return one row per mask.

    A classifier trained on these masks must see a mask on every image the
    study's conditions see, so the comparison stays paired: where the
    reference has no row, a row below ``min_rca``, or empty lungs, the
    segmenter's own mask stands in, its ``source`` says so, and the log
    counts and names those images. A reference of other images altogether
    (none of ``names`` usable) is an InputError.
    """
    rows, stand_ins = [], []
    with atomic_dir(masks) as tmp:
        for name in tqdm(names, desc="reference masks", unit="mask"):
            own = read_mask_file(Path(tight) / name)
            entry = reference.get(name)
            lungs = None
            if entry is not None and entry.rca_mean >= min_rca:
                lungs = fit_to(entry.lungs(), own.shape, name)
                lungs = lungs if lungs.any() else None
            if lungs is None:
                stand_ins.append(name)
            chosen = own if lungs is None else lungs
            write_png(tmp / name, chosen)
            rows.append(
                {
                    "image": name,
                    "source": SEGMENTER_SOURCE_ROW if lungs is None else REFERENCE_SOURCE_ROW,
                    "rca_mean": float("nan") if entry is None else entry.rca_mean,
                    "lung_fraction": float(chosen.mean()),
                }
            )
        if len(stand_ins) == len(names) and names:
            raise InputError(
                f"none of the {len(names)} images (e.g. {list(names)[:3]}) has reference lungs with RCA >= "
                f"{min_rca}: is the reference file of these images, and is nih.chexmask_min_rca right?"
            )
    if stand_ins:
        log.warning(
            "%d of %d images have no usable reference lungs (absent, RCA below %.2f, or empty): the "
            "segmenter's mask stands in, e.g. %s",
            len(stand_ins),
            len(names),
            min_rca,
            stand_ins[:10],
        )
    return pd.DataFrame(rows, columns=list(REFERENCE_MASK_COLUMNS))


def dice_by_finding(
    scored: pd.DataFrame, labels: pd.DataFrame, findings: Sequence[str], n_boot: int, alpha: float, seed: int
) -> pd.DataFrame:
    """Per finding: Dice on the positive images against the negative ones, and a patient-bootstrap
    (1 - alpha) interval of the difference of means (positives minus negatives).

    ``labels`` has ``image`` and a 0/1 column per finding. Resampling whole
    patients keeps a patient's images together, since their masks err alike.
    A finding without positives or negatives among the scored images has
    NaN where a number cannot be had.
    """
    table = scored.merge(labels[["image", *findings]], on="image", how="left", validate="one_to_one")
    dice = table["dice"].to_numpy()
    _, patient_of = np.unique(table["patient_id"].to_numpy(), return_inverse=True)
    weights = resample_counts(np.random.default_rng(seed), int(patient_of.max()) + 1, n_boot)[:, patient_of]
    rows = []
    for finding in findings:
        positive = table[finding].to_numpy() == 1
        row = {"finding": finding, "n_positive": int(positive.sum()), "n_negative": int((~positive).sum())}
        row.update(_side_summary("positive", dice[positive]))
        row.update(_side_summary("negative", dice[~positive]))
        row["difference"] = row["dice_positive_mean"] - row["dice_negative_mean"]
        with np.errstate(invalid="ignore", divide="ignore"):
            boot_pos = (weights * positive).dot(dice) / (weights * positive).sum(axis=1)
            boot_neg = (weights * ~positive).dot(dice) / (weights * ~positive).sum(axis=1)
        differences = boot_pos - boot_neg
        finite = differences[np.isfinite(differences)]
        low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2]) if len(finite) else (np.nan, np.nan)
        row.update({"ci_low": float(low), "ci_high": float(high)})
        rows.append(row)
    return pd.DataFrame(rows)


def _side_summary(side: str, values: np.ndarray) -> dict[str, float]:
    """Mean and 10th percentile of one side's Dice (NaN for an empty side)."""
    if len(values) == 0:
        return {f"dice_{side}_mean": float("nan"), f"dice_{side}_p10": float("nan")}
    return {f"dice_{side}_mean": float(values.mean()), f"dice_{side}_p10": float(np.percentile(values, 10))}


def qc_against_reference(scored: pd.DataFrame, qc: pd.DataFrame, bad_dice: float) -> dict[str, float]:
    """How well the no-ground-truth QC ranks and flags masks, judged by their Dice with the reference.

    Spearman's correlation of the QC score with Dice, and for masks with
    Dice below ``bad_dice`` the flag's precision (flagged masks that are bad)
    and recall (bad masks that are flagged); NaN where undefined.
    """
    table = scored.merge(qc[["image", "qc_score", "flag"]], on="image", how="inner", validate="one_to_one")
    bad = table["dice"].to_numpy() < bad_dice
    flagged = table["flag"].astype(bool).to_numpy()
    precision, recall = flag_precision_recall(flagged, table["dice"].to_numpy(), bad_dice)
    rho = spearmanr(table["qc_score"], table["dice"]).statistic if len(table) > 2 else float("nan")
    return {
        "n": len(table),
        "bad_dice": bad_dice,
        "n_bad": int(bad.sum()),
        "n_flagged": int(flagged.sum()),
        "spearman_qc_dice": float(rho),
        "flag_precision": float("nan") if precision is None else precision,
        "flag_recall": float("nan") if recall is None else recall,
    }


def qc_sentence(qc: Mapping) -> str:
    """The QC flag judged by the reference, in words that hold when nothing is flagged or nothing is bad."""
    start = (
        f"QC without ground truth, judged by the reference on {qc['n']} masks: Spearman correlation of the "
        f"score with Dice {qc['spearman_qc_dice']:.2f}; "
    )
    if qc["n_bad"] == 0:
        return start + f"no mask has Dice below {qc['bad_dice']}, and the flag marks {qc['n_flagged']}."
    if qc["n_flagged"] == 0:
        return start + f"of {qc['n_bad']} masks with Dice below {qc['bad_dice']}, the flag marks none."
    return start + (
        f"of {qc['n_bad']} masks with Dice below {qc['bad_dice']}, the flag catches "
        f"{qc['flag_recall']:.0%} (recall), and {qc['flag_precision']:.0%} of the {qc['n_flagged']} "
        "flagged masks are such (precision)."
    )


def markdown_lines(by_finding: pd.DataFrame, qc: Mapping | None, heading: str = "##") -> list[str]:
    """The report's and the summary's section: Dice by finding with its interval, what it means for the
    masked conditions, and the QC flag judged by the reference."""
    rows = [
        f"| {r.finding} | {r.n_positive} | {r.dice_positive_mean:.3f} | {r.dice_positive_p10:.3f} | "
        f"{r.n_negative} | {r.dice_negative_mean:.3f} | "
        f"{r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] |"
        for r in by_finding.itertuples(index=False)
    ]
    lower = [r for r in by_finding.itertuples(index=False) if r.ci_high < 0]
    lines = [
        f"{heading} Mask error by finding",
        "",
        "Tight masks against the reference lungs (`tables/masks_vs_reference.csv`): Dice on the images with "
        "each finding and on those without, and the difference with its patient-bootstrap interval.",
        "",
        "| finding | positives | Dice | Dice p10 | negatives | Dice | difference |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        (
            f"The masks are significantly worse on images with {', '.join(r.finding for r in lower)} "
            f"(by up to {-min(r.difference for r in lower):.3f} Dice): there the tight and loose conditions "
            "lose lung where the finding is, so their AUROC against the original images is partly the "
            "segmentation's error, not only the masking's."
            if lower
            else "No finding's masks are significantly worse on its positive images, so the tight and loose "
            "claims are not an artefact of label-correlated mask error at this sample's resolution."
        ),
        "",
    ]
    if qc and qc.get("available"):
        lines += [qc_sentence(qc), ""]
    return lines
