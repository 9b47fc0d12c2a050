"""Rule saliency_classifier: Grad-CAM of one cell on the test images, the share inside the lungs."""

from cxrmask.logs import run_step
from cxrmask.stages.study import saliency_classifier

run_step(
    snakemake.log[0],
    saliency_classifier,
    images=snakemake.input.images,
    index=snakemake.input.index,
    masks=snakemake.input.masks or None,
    lungs=snakemake.input.lungs,
    model=snakemake.input.model,
    out_table=snakemake.output.table,
    out_examples=snakemake.output.examples,
    out_record=snakemake.output.record,
    backbone=snakemake.params.backbone,
    condition=snakemake.wildcards.mask,
    seed=int(snakemake.wildcards.seed),
    labels=snakemake.params.labels,
    settings=snakemake.params.settings,
    examples=snakemake.params.examples,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
