# cxrmask: MedSAM lung masking for multi-label chest X-ray classification.
#
#   snakemake --profile profiles/local --use-conda               full reproduction (config/config.yaml)
#   snakemake --profile profiles/local --configfile config/demo.yaml   embedded demo, offline, CPU
#   snakemake --profile profiles/slurm --use-conda               on a SLURM cluster


from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/test_sets.smk"
include: "workflow/rules/study.smk"


report: "workflow/report/workflow.rst"


check_stages()


rule all:
    default_target: True
    input:
        results("report.md"),
        results("mlflow/runs.csv"),
        list(test_set_tables().values()),
