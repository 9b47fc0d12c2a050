"""Rule finetune_medsam: fine-tune the segmenter on the lung masks."""

from cxrmask.logs import run_step
from cxrmask.stages.segment import finetune_segmenter

run_step(
    snakemake.log[0],
    finetune_segmenter,
    seg_data=snakemake.input.data,
    prior=snakemake.input.prior,
    checkpoint=snakemake.params.checkpoint,
    out_model=snakemake.output.model,
    out_history=snakemake.output.history,
    out_summary=snakemake.output.summary,
    out_record=snakemake.output.record,
    segmenter=snakemake.params.segmenter,
    settings=snakemake.params.settings,
    device=snakemake.params.device,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
