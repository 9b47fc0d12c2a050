"""Rule plot_auroc_heatmap: AUROC, backbone x condition, per label."""

from cxrmask.logs import run_step
from cxrmask.stages.evaluate import heatmap_figure

run_step(
    snakemake.log[0],
    heatmap_figure,
    auroc=snakemake.input[0],
    style=snakemake.params.style,
    out=snakemake.output[0],
)
