"""Rules extract_nih_archive and extract_seg_data: unpack an archive safely."""

from cxrmask.logs import run_step
from cxrmask.stages.data import extract_archive

run_step(snakemake.log[0], extract_archive, archive=snakemake.input[0], out_dir=snakemake.output[0])
