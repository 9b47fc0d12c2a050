"""Rule compare_conditions: paired DeLong tests between mask conditions, Holm-corrected."""

from cxrmask.logs import run_step
from cxrmask.stages.evaluate import delong_table

run_step(
    snakemake.log[0],
    delong_table,
    predictions=snakemake.input,
    cells=snakemake.params.cells,
    labels=snakemake.params.labels,
    settings=snakemake.params.settings,
    alpha=snakemake.params.alpha,
    out=snakemake.output[0],
)
