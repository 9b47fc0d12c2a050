"""Rule plot_saliency: the share of Grad-CAM inside the lungs per label, condition and backbone."""

from cxrmask.logs import run_step
from cxrmask.stages.study import plot_saliency

run_step(
    snakemake.log[0],
    plot_saliency,
    table=snakemake.input[0],
    style=snakemake.params.style,
    out=snakemake.output[0],
)
