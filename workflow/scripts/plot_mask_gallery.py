"""Rule plot_mask_gallery: test images with their tight and loose lung masks."""

from cxrmask.logs import run_step
from cxrmask.stages.evaluate import gallery_figure

run_step(
    snakemake.log[0],
    gallery_figure,
    index=snakemake.input.index,
    tight_dirs=snakemake.input.tight,
    loose_dirs=snakemake.input.loose,
    truth_dir=snakemake.input.truth[0] if snakemake.input.truth else None,
    style=snakemake.params.style,
    out=snakemake.output[0],
)
