"""Rule plot_delta_auroc: AUROC differences between conditions with DeLong significance."""

from cxrmask.logs import run_step
from cxrmask.stages.evaluate import delta_figure

run_step(
    snakemake.log[0],
    delta_figure,
    delong=snakemake.input[0],
    style=snakemake.params.style,
    out=snakemake.output[0],
)
