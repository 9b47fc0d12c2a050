"""Rule prepare_seg_data: decode the lung-mask pairs, split them, learn the box prior."""

from cxrmask.logs import run_step
from cxrmask.stages.data import seg_data

run_step(
    snakemake.log[0],
    seg_data,
    root=snakemake.input[0],
    out_data=snakemake.output.data,
    out_prior=snakemake.output.prior,
    out_pairs=snakemake.output.pairs,
    seg_settings=snakemake.params.settings,
    segmenter=snakemake.params.segmenter,
    seed=snakemake.params.seed,
    on_bad=snakemake.params.on_bad,
)
