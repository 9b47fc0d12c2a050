"""Rule train_classifier: one backbone x mask condition x seed."""

from cxrmask.logs import run_step
from cxrmask.stages.classify import train_cell

run_step(
    snakemake.log[0],
    train_cell,
    images=snakemake.input.images,
    index=snakemake.input.index,
    masks=snakemake.input.masks or None,
    out_predictions=snakemake.output.predictions,
    out_history=snakemake.output.history,
    out_summary=snakemake.output.summary,
    out_model=snakemake.output.model,
    out_record=snakemake.output.record,
    backbone=snakemake.params.backbone,
    condition=snakemake.wildcards.mask,
    seed=int(snakemake.wildcards.seed),
    labels=snakemake.params.labels,
    settings=snakemake.params.settings,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
