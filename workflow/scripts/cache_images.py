"""Rule cache_images: decode every curated image once at the classifier's size."""

from cxrmask.logs import run_step
from cxrmask.stages.classify import cache_images

run_step(
    snakemake.log[0],
    cache_images,
    subset=snakemake.input[0],
    out_cache=snakemake.output.cache,
    out_index=snakemake.output.index,
    size=int(snakemake.wildcards.size),
    on_bad=snakemake.params.on_bad,
    threads=snakemake.threads,
)
