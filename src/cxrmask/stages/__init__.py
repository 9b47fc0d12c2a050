"""One function per workflow rule, taking plain paths and config sections.

``workflow/scripts`` only unpack ``snakemake.input/output/params`` into these
calls, so every rule's behaviour is importable and testable without
Snakemake, and a script never reads ``snakemake.config`` directly (which
would hide config changes from Snakemake's rerun triggers).
"""
