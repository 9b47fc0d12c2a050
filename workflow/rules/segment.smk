# Segmentation stage: fine-tune MedSAM (or LiteMedSAM), generate tight lung masks in shards, dilate them;
# with a reference (CheXmask), its lungs cut into the same shards as a second mask source.
# The segmentation chain is the critical path, so its rules have priority over classifiers that need no mask.


rule finetune_medsam:
    input:
        data=results("segment", "seg_data.npz"),
        prior=results("segment", "box_prior.json"),
        checkpoint=checkpoint_file(),
    output:
        model=results("segment", "finetuned.pt"),
        history=results("segment", "finetune_history.csv"),
        summary=results("segment", "finetune_summary.json"),
        record=results("segment", "finetune_run.json"),
    log:
        results("logs", "finetune_medsam.log"),
    benchmark:
        results("benchmarks", "finetune_medsam.tsv")
    priority: 10
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("finetune_medsam", "threads")
    resources:
        mem_mb=res("finetune_medsam", "mem_mb"),
        runtime=res("finetune_medsam", "runtime"),
        gpu=res("finetune_medsam", "gpu"),
    params:
        start_weights=checkpoint_value,
        segmenter=config["segmenter"],
        settings=config["finetune"],
        device=config["device"],
        seed=config["seed"],
        code=code_version("finetune_medsam"),
    script:
        "../scripts/stage.py"


rule generate_masks:
    input:
        model=results("segment", "finetuned.pt"),
        subset=subset_file(),
        truth=truth_dir(),
    output:
        masks=directory(results("masks", "tight", "shard_{shard}")),
        table=results("masks", "tight", "shard_{shard}.csv"),
        record=results("masks", "tight", "shard_{shard}_run.json"),
    log:
        results("logs", "generate_masks_{shard}.log"),
    benchmark:
        results("benchmarks", "generate_masks_{shard}.tsv")
    priority: 10
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("generate_masks", "threads")
    resources:
        mem_mb=res("generate_masks", "mem_mb"),
        runtime=res("generate_masks", "runtime"),
        gpu=res("generate_masks", "gpu"),
    params:
        segmenter=config["segmenter"],
        settings=config["segment"],
        on_bad=config["data"]["on_bad_image"],
        device=config["device"],
        code=code_version("generate_masks"),
    script:
        "../scripts/stage.py"


rule dilate_masks:
    input:
        tight=tight_shard(),
        tight_table=tight_shard(".csv"),
        truth=truth_dir(),
    output:
        masks=directory(results("masks", "{loose}", "shard_{shard}")),
        table=results("masks", "{loose}", "shard_{shard}.csv"),
    log:
        results("logs", "dilate_masks_{loose}_{shard}.log"),
    benchmark:
        results("benchmarks", "dilate_masks_{loose}_{shard}.tsv")
    priority: 10
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("dilate_masks", "threads")
    resources:
        mem_mb=res("dilate_masks", "mem_mb"),
        runtime=res("dilate_masks", "runtime"),
        gpu=res("dilate_masks", "gpu"),
    params:
        settings=config["loose"],
        code=code_version("dilate_masks"),
    script:
        "../scripts/stage.py"


rule decode_reference_masks:
    input:
        tight=results("masks", "tight", "shard_{shard}"),
        tight_table=results("masks", "tight", "shard_{shard}.csv"),
        reference=reference_file(),
    output:
        masks=directory(results("masks", REFERENCE_CONDITIONS[0], "shard_{shard}")),
        table=results("masks", REFERENCE_CONDITIONS[0], "shard_{shard}.csv"),
    log:
        results("logs", "decode_reference_masks_{shard}.log"),
    benchmark:
        results("benchmarks", "decode_reference_masks_{shard}.tsv")
    priority: 10
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("decode_reference_masks", "threads")
    resources:
        mem_mb=res("decode_reference_masks", "mem_mb"),
        runtime=res("decode_reference_masks", "runtime"),
        gpu=res("decode_reference_masks", "gpu"),
    params:
        min_rca=config["nih"]["chexmask_min_rca"],
        code=code_version("decode_reference_masks"),
    script:
        "../scripts/stage.py"


rule compare_masks_reference:
    input:
        subset=subset_file(),
        masks=mask_dirs("tight"),
        tables=mask_tables("tight"),
        reference=reference_file(),
    output:
        table=results("tables", "masks_vs_reference.csv"),
        findings=results("tables", "masks_by_finding.csv"),
        qc=results("tables", "masks_qc_check.json"),
    log:
        results("logs", "compare_masks_reference.log"),
    benchmark:
        results("benchmarks", "compare_masks_reference.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("compare_masks_reference", "threads")
    resources:
        mem_mb=res("compare_masks_reference", "mem_mb"),
        runtime=res("compare_masks_reference", "runtime"),
        gpu=res("compare_masks_reference", "gpu"),
    params:
        labels=LABELS,
        min_rca=config["nih"]["chexmask_min_rca"],
        bad_dice=config["finetune"]["qc_bad_dice"],
        settings=config["evaluate"],
        seed=config["seed"],
        code=code_version("compare_masks_reference"),
    script:
        "../scripts/stage.py"
