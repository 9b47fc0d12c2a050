"""Rule summarise_claims: the paper's claims against this run, summary.md and tables/claims.csv."""

from cxrmask.logs import run_step
from cxrmask.stages.study import summarise_claims

run_step(
    snakemake.log[0],
    summarise_claims,
    contrasts=snakemake.input.contrasts,
    delong=snakemake.input.delong,
    training=snakemake.input.training,
    out_summary=snakemake.output.summary,
    out_table=snakemake.output.table,
    alpha=snakemake.params.alpha,
    settings=snakemake.params.settings,
)
