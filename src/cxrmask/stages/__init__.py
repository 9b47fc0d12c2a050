"""One module and one function per workflow rule: rule ``X`` runs ``cxrmask.stages.X.X``.

A stage's parameters are named after its rule's named ``input``, ``output``
and ``params`` entries (and, where it needs them, wildcards and ``threads``);
``cxrmask.rule_call`` passes them and checks the names agree when the
workflow is parsed. Settings arrive as the typed sections of
``cxrmask.config``. Every stage is importable and testable without Snakemake,
and none reads ``snakemake.config`` (which would hide config changes from
Snakemake's rerun triggers).
"""
