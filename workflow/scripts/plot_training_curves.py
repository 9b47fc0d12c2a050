"""Rule plot_training_curves: validation AUROC and loss per epoch, per condition."""

from cxrmask.logs import run_step
from cxrmask.stages.evaluate import training_figure

run_step(
    snakemake.log[0],
    training_figure,
    histories=snakemake.input,
    cells=snakemake.params.cells,
    backbone=snakemake.params.backbone,
    style=snakemake.params.style,
    out=snakemake.output[0],
)
