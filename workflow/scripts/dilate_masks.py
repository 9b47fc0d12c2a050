"""Rule dilate_masks: the loose condition, tight masks dilated."""

from cxrmask.logs import run_step
from cxrmask.stages.segment import loose_masks

run_step(
    snakemake.log[0],
    loose_masks,
    tight_dir=snakemake.input.masks,
    tight_table=snakemake.input.table,
    out_dir=snakemake.output.masks,
    out_table=snakemake.output.table,
    settings=snakemake.params.settings,
    truth_dir=snakemake.input.truth[0] if snakemake.input.truth else None,
)
