"""The figure registry: one row per figure; the workflow, the tests and the README follow from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxrmask.figure_registry import FIGURES, OPTIONAL_INPUTS, figure, figure_rules, figure_stems

REPO = Path(__file__).resolve().parents[1]


def test_every_figure_has_its_caption_and_its_stage_and_a_file_of_its_own():
    for entry in FIGURES:
        assert (REPO / "workflow" / "report" / entry.caption).is_file(), entry.caption
        assert (REPO / "src" / "cxrmask" / "stages" / f"{entry.rule}.py").is_file(), entry.rule
    stems = [entry.stem for entry in FIGURES]
    assert len(set(stems)) == len(stems)
    assert len(figure_rules()) == len(FIGURES)


def test_figure_files_expand_per_backbone_and_keep_each_optional_figure_for_its_input():
    without = figure_stems(["a", "b"], set())
    assert "roc_a" in without and "roc_b" in without and "auroc_heatmap" in without
    assert "shift" not in without and "masks_vs_reference" not in without
    assert figure_stems(["a", "b"], {"shifted"}) == [*without, "shift"]
    assert figure_stems(["a", "b"], {"reference"}) == [*without, "masks_vs_reference"]
    assert figure_stems(["a", "b"], {"shifted", "reference"}) == [*without, "shift", "masks_vs_reference"]
    always = [entry for entry in FIGURES if entry.requires is None]
    per_backbone = sum(entry.per_backbone for entry in always)
    assert len(without) == 2 * per_backbone + (len(always) - per_backbone)
    assert {entry.requires for entry in FIGURES} - {None} == OPTIONAL_INPUTS
    with pytest.raises(ValueError, match=r"\['test_sets'\] are not optional inputs"):
        figure_stems(["a"], {"test_sets"})


def test_the_readme_lists_the_registered_figures():
    row = next(
        line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| `figures/`")
    )
    assert ", ".join(entry.title for entry in FIGURES) in row


def test_an_unregistered_rule_is_named_with_the_figure_rules():
    assert figure("plot_roc").caption == "roc.rst"
    with pytest.raises(KeyError, match="plot_roc"):
        figure("plot_nothing")
