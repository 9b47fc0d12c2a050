"""Rule curate_nih: select the study's NIH subset."""

from cxrmask.logs import run_step
from cxrmask.stages.data import curate

run_step(
    snakemake.log[0],
    curate,
    labels_csv=snakemake.input.labels,
    train_val=snakemake.input.train_val,
    test=snakemake.input.test,
    image_dirs=snakemake.input.images,
    out_subset=snakemake.output.subset,
    out_summary=snakemake.output.summary,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
)
