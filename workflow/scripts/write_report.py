"""Rule write_report: the run's Markdown report."""

from cxrmask.logs import run_step
from cxrmask.stages.report import write_report

run_step(
    snakemake.log[0],
    write_report,
    out=snakemake.output[0],
    curation=snakemake.input.curation,
    finetune=snakemake.input.finetune,
    tight_tables=snakemake.input.tight,
    loose_tables=snakemake.input.loose,
    auroc=snakemake.input.auroc,
    delong=snakemake.input.delong,
    training=snakemake.input.training,
    figure_paths=snakemake.input.figures,
    summary=snakemake.input.summary,
)
