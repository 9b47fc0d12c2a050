"""Every figure of the study, declared once: its rule, its file, its report caption and category.

The workflow derives from this table each figure rule's output (with its
``report()`` caption and category) and the figures ``rule all`` and the
report ask for; the tests derive the figure rules whose plans they check; a
test keeps the README's list of figures in step. A new figure is a row here,
its rule, its stage and its caption (``workflow/report/<caption>``).

Kept free of plotting imports: the Snakefile reads it while it builds the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    rule: str
    """The rule (and stage) that draws it."""
    stem: str
    """File name without the format's suffix; ``{backbone}`` where there is one per backbone."""
    caption: str
    """Its report caption, under ``workflow/report/``."""
    category: str
    """The report's section."""
    title: str
    """What it shows, in a few words (the README's list)."""
    requires: str | None = None
    """An optional input it is drawn from (one of :data:`OPTIONAL_INPUTS`); None: always drawn."""

    @property
    def per_backbone(self) -> bool:
        return "{backbone}" in self.stem


FIGURES: tuple[Figure, ...] = (  # in the report's order
    Figure("plot_roc", "roc_{backbone}", "roc.rst", "ROC curves", "ROC curves"),
    Figure(
        "plot_training_curves", "training_{backbone}", "training_curves.rst", "Training", "training curves"
    ),
    Figure("plot_auroc_heatmap", "auroc_heatmap", "auroc_heatmap.rst", "AUROC", "AUROC heatmap"),
    Figure("plot_delta_auroc", "delta_auroc", "delta_auroc.rst", "DeLong", "ΔAUROC"),
    Figure("plot_mask_gallery", "mask_gallery", "mask_gallery.rst", "Masks", "mask gallery"),
    Figure("plot_qc_gallery", "qc_gallery", "qc_gallery.rst", "Masks", "worst-QC mask gallery"),
    Figure("plot_saliency", "saliency", "saliency.rst", "Saliency", "saliency inside the lungs"),
    Figure(
        "plot_saliency_overlays",
        "saliency_{backbone}",
        "saliency_overlays.rst",
        "Saliency",
        "saliency overlays",
    ),
    Figure("plot_no_finding", "no_finding_{backbone}", "no_finding.rst", "No Finding", "No Finding scores"),
    Figure(
        "plot_training_efficiency",
        "training_efficiency",
        "training_efficiency.rst",
        "Training",
        "training efficiency",
    ),
    Figure(
        "plot_shift",
        "shift",
        "shift.rst",
        "Shortcut",
        "AUROC lost on the shifted test set",
        requires="shifted",
    ),
    Figure(
        "plot_masks_reference",
        "masks_vs_reference",
        "masks_vs_reference.rst",
        "Masks",
        "mask Dice against reference lungs by finding",
        requires="reference",
    ),
)
OPTIONAL_INPUTS = frozenset({"shifted", "reference"})
"""What a run may lack: a shifted (external) test set, reference lungs for the masks (CheXmask)."""
REPORT_RULE = "write_report"
"""The rule that shows every figure: it reruns whenever one does."""

_BY_RULE = {figure.rule: figure for figure in FIGURES}


def figure(rule: str) -> Figure:
    """The figure rule ``rule`` draws (a KeyError names the rules that draw one)."""
    try:
        return _BY_RULE[rule]
    except KeyError:
        raise KeyError(
            f"{rule!r} draws no registered figure; the figure rules are {sorted(_BY_RULE)}"
        ) from None


def figure_rules() -> frozenset[str]:
    """The rules that draw figures."""
    return frozenset(_BY_RULE)


def figure_stems(backbones: list[str] | tuple[str, ...], present: frozenset[str] | set[str]) -> list[str]:
    """Every figure file's stem for these backbones (path slugs), with those of the optional inputs
    ``present`` (from :data:`OPTIONAL_INPUTS`) where a figure requires one."""
    unknown = set(present) - OPTIONAL_INPUTS
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not optional inputs; those are {sorted(OPTIONAL_INPUTS)}")
    return [
        stem
        for entry in FIGURES
        if entry.requires is None or entry.requires in present
        for stem in (
            [entry.stem.format(backbone=b) for b in backbones] if entry.per_backbone else [entry.stem]
        )
    ]
