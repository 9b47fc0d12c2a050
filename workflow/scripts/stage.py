"""Every rule's script: rule X runs cxrmask.stages.X with the rule's named inputs, outputs and params."""

from cxrmask.rule_call import run_rule

run_rule(snakemake)
