"""Rule plot_no_finding: No Finding score distributions of one backbone, a panel per condition."""

from cxrmask.logs import run_step
from cxrmask.stages.study import plot_no_finding

run_step(
    snakemake.log[0],
    plot_no_finding,
    predictions=snakemake.input,
    cells=snakemake.params.cells,
    backbone=snakemake.params.backbone,
    style=snakemake.params.style,
    out=snakemake.output[0],
)
