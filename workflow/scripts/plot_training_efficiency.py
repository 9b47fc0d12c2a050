"""Rule plot_training_efficiency: time and epochs to the best validation AUROC per cell."""

from cxrmask.logs import run_step
from cxrmask.stages.study import plot_training_efficiency

run_step(
    snakemake.log[0],
    plot_training_efficiency,
    summaries=snakemake.input,
    style=snakemake.params.style,
    out=snakemake.output[0],
)
