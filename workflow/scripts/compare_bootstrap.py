"""Rule compare_bootstrap: paired patient-bootstrap contrasts between cells."""

from cxrmask.logs import run_step
from cxrmask.stages.study import contrast_table

run_step(
    snakemake.log[0],
    contrast_table,
    predictions=snakemake.input,
    cells=snakemake.params.cells,
    labels=snakemake.params.labels,
    settings=snakemake.params.settings,
    pairs=snakemake.params.pairs,
    seed=snakemake.params.seed,
    out=snakemake.output[0],
)
