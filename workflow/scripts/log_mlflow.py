"""Rule log_mlflow: the single writer that logs every job's run record into MLflow."""

from cxrmask.logs import run_step
from cxrmask.mlflow_store import log_pipeline_runs

run_step(
    snakemake.log[0],
    log_pipeline_runs,
    records=snakemake.input,
    settings=snakemake.params.settings,
    results=snakemake.params.results,
    out=snakemake.output[0],
)
