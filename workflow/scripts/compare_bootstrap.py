"""Rule compare_bootstrap: paired patient-bootstrap contrasts between cells."""

from cxrmask.logs import run_step
from cxrmask.stages.study import compare_bootstrap

run_step(
    snakemake.log[0],
    compare_bootstrap,
    predictions=snakemake.input,
    cells=snakemake.params.cells,
    labels=snakemake.params.labels,
    settings=snakemake.params.settings,
    pairs=snakemake.params.pairs,
    seed=snakemake.params.seed,
    out=snakemake.output[0],
)
