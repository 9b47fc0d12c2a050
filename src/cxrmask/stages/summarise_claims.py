"""Rule summarise_claims: the paper's claims against this run, ``summary.md`` and ``tables/claims.csv``."""

from __future__ import annotations

import pandas as pd

from cxrmask.claims import write_summary
from cxrmask.config import ClaimsSettings


def summarise_claims(
    contrasts: str,
    delong: str,
    training: str,
    shift: str | None,
    summary: str,
    claims: str,
    alpha: float,
    settings: ClaimsSettings,
    shortcut_label: str | None,
) -> pd.DataFrame:
    """Judge every claim from the contrasts, DeLong and training tables, and the shifted test set's table
    (``shift``, None without one) for the shortcut premise on ``shortcut_label`` (None: macro AUROC)."""
    return write_summary(
        contrasts,
        delong,
        training,
        summary,
        claims,
        alpha=alpha,
        margin=settings.margin,
        reference=settings.reference,
        shift=shift,
        shortcut_label=shortcut_label,
    )
