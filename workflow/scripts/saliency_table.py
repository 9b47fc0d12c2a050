"""Rule saliency_table: the share of saliency inside the lungs per cell and label."""

from cxrmask.logs import run_step
from cxrmask.stages.study import saliency_table

run_step(snakemake.log[0], saliency_table, tables=snakemake.input, out=snakemake.output[0])
