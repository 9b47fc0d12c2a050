"""Rule plot_roc: ROC curves of one backbone, one curve per mask condition."""

from cxrmask.logs import run_step
from cxrmask.stages.evaluate import roc_figure

run_step(
    snakemake.log[0],
    roc_figure,
    predictions=snakemake.input,
    cells=snakemake.params.cells,
    backbone=snakemake.params.backbone,
    labels=snakemake.params.labels,
    style=snakemake.params.style,
    out=snakemake.output[0],
)
