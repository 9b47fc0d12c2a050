"""Rule make_demo_data: generate the embedded demo dataset."""

from cxrmask.logs import run_step
from cxrmask.stages.data import demo_data

run_step(
    snakemake.log[0],
    demo_data,
    out_dir=snakemake.params.out_dir,
    demo=snakemake.params.demo,
    threads=snakemake.threads,
)
