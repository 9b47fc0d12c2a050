"""Rule cache_masks: one condition's masks, row-aligned with the image cache."""

from cxrmask.logs import run_step
from cxrmask.stages.classify import cache_masks

run_step(
    snakemake.log[0],
    cache_masks,
    index=snakemake.input.index,
    mask_dirs=snakemake.input.masks,
    out_cache=snakemake.output[0],
    size=int(snakemake.wildcards.size),
    threads=snakemake.threads,
)
