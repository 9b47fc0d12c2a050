"""Rule evaluate_classifiers: AUROC with bootstrap CIs per cell, and training times."""

from cxrmask.logs import run_step
from cxrmask.stages.evaluate import auroc_table, training_table

run_step(
    snakemake.log[0],
    auroc_table,
    predictions=snakemake.input.predictions,
    cells=snakemake.params.cells,
    labels=snakemake.params.labels,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    out=snakemake.output.auroc,
)
run_step(snakemake.log[0], training_table, summaries=snakemake.input.summaries, out=snakemake.output.training)
