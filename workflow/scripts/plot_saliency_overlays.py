"""Rule plot_saliency_overlays: Grad-CAM over test images of one backbone, a column per condition."""

from cxrmask.logs import run_step
from cxrmask.stages.study import plot_saliency_overlays

run_step(
    snakemake.log[0],
    plot_saliency_overlays,
    examples=snakemake.input,
    cells=snakemake.params.cells,
    backbone=snakemake.params.backbone,
    label=snakemake.params.label,
    style=snakemake.params.style,
    out=snakemake.output[0],
)
