"""Rule summarise_claims: the paper's claims against this run, ``summary.md`` and ``tables/claims.csv``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cxrmask.atomic import write_text
from cxrmask.claims import write_summary
from cxrmask.config import ClaimsSettings
from cxrmask.segment.reference import markdown_lines


def summarise_claims(
    contrasts: str,
    delong: str,
    training: str,
    shift: str | None,
    summary: str,
    claims: str,
    alpha: float,
    n_boot: int,
    settings: ClaimsSettings,
    shortcut_label: str | None,
    masks_by_finding: str | None = None,
    masks_qc: str | None = None,
    delong_test_sets: str | None = None,
    shift_test_sets: str | None = None,
) -> pd.DataFrame:
    """Judge every claim from the contrasts, DeLong and training tables, and the shifted test set's table
    (``shift``, None without one) for the shortcut premise on ``shortcut_label`` (None: macro AUROC), and
    the external test sets' DeLong and shift tables (None without sets) for the claims judged per set.
    ``n_boot``, the resamples drawn, turns each family's defined resamples into the ``n_boot`` it needs.

    Where the masks have a reference, ``summary.md`` also states their error by finding
    (``masks_by_finding``, ``masks_qc``), which bears on the tight and loose claims."""
    table = write_summary(
        contrasts,
        delong,
        training,
        summary,
        claims,
        alpha=alpha,
        n_boot=n_boot,
        margin=settings.margin,
        reference=settings.reference,
        shift=shift,
        shortcut_label=shortcut_label,
        set_delong=delong_test_sets,
        set_shift=shift_test_sets,
    )
    if masks_by_finding and masks_qc:
        lines = markdown_lines(pd.read_csv(masks_by_finding), json.loads(Path(masks_qc).read_text()), "#")
        write_text(summary, Path(summary).read_text() + "\n" + "\n".join(lines))
    return table
