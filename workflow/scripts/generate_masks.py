"""Rule generate_masks: segment one shard of the curated NIH images."""

from cxrmask.logs import run_step
from cxrmask.stages.segment import masks

run_step(
    snakemake.log[0],
    masks,
    model_path=snakemake.input.model,
    prior=snakemake.input.prior,
    index=snakemake.input.index,
    shard_index=int(snakemake.wildcards.shard),
    out_dir=snakemake.output.masks,
    out_table=snakemake.output.table,
    out_record=snakemake.output.record,
    segmenter=snakemake.params.segmenter,
    settings=snakemake.params.settings,
    device=snakemake.params.device,
    threads=snakemake.threads,
    truth_dir=snakemake.input.truth[0] if snakemake.input.truth else None,
)
