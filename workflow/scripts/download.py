"""Rule download: fetch one source file (resumable, retried, checksum-verified)."""

from cxrmask.logs import run_step
from cxrmask.stages.data import download

run_step(
    snakemake.log[0],
    download,
    source=snakemake.params.source,
    dest=snakemake.output[0],
    sha256=snakemake.params.sha256,
    lock_file=snakemake.params.lock_file,
    settings=snakemake.params.settings,
)
