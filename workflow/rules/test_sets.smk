# External test sets: each collection read into a manifest, segmented by the study's segmenter, predicted
# by every trained cell, and scored against the internal test set.


rule curate_test_set:
    input:
        table=test_set_table,
        images=test_set_images,
        metadata=test_set_metadata,
        training=training_subset_file,
    output:
        manifest=results("test_sets", "{test_set}", "manifest.csv"),
        summary=results("test_sets", "{test_set}", "curation.json"),
    log:
        results("logs", "curate_test_set_{test_set}.log"),
    conda:
        "../../envs/cxrmask.yaml"
    params:
        settings=test_set_settings,
        labels=LABELS,
        code=code_version("curate_test_set"),
    script:
        "../scripts/stage.py"


rule generate_test_set_masks:
    input:
        model=results("segment", "finetuned.pt"),
        manifest=results("test_sets", "{test_set}", "manifest.csv"),
    output:
        masks=directory(results("test_sets", "{test_set}", "masks", "tight")),
        table=results("test_sets", "{test_set}", "masks", "tight.csv"),
    log:
        results("logs", "generate_test_set_masks_{test_set}.log"),
    benchmark:
        results("benchmarks", "generate_test_set_masks_{test_set}.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("generate_test_set_masks", "threads")
    resources:
        mem_mb=res("generate_test_set_masks", "mem_mb"),
        runtime=res("generate_test_set_masks", "runtime"),
        gpu=res("generate_test_set_masks", "gpu"),
    params:
        segmenter=config["segmenter"],
        settings=config["segment"],
        on_bad=config["data"]["on_bad_image"],
        device=config["device"],
        code=code_version("generate_test_set_masks"),
    script:
        "../scripts/stage.py"


rule dilate_test_set_masks:
    input:
        tight=results("test_sets", "{test_set}", "masks", "tight"),
        tight_table=results("test_sets", "{test_set}", "masks", "tight.csv"),
    output:
        masks=directory(results("test_sets", "{test_set}", "masks", "loose")),
        table=results("test_sets", "{test_set}", "masks", "loose.csv"),
    log:
        results("logs", "dilate_test_set_masks_{test_set}.log"),
    benchmark:
        results("benchmarks", "dilate_test_set_masks_{test_set}.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("dilate_test_set_masks", "threads")
    resources:
        mem_mb=res("dilate_test_set_masks", "mem_mb"),
        runtime=res("dilate_test_set_masks", "runtime"),
        gpu=res("dilate_test_set_masks", "gpu"),
    params:
        settings=config["loose"],
        code=code_version("dilate_test_set_masks"),
    script:
        "../scripts/stage.py"


rule cache_test_set_images:
    input:
        manifest=results("test_sets", "{test_set}", "manifest.csv"),
    output:
        cache=results("test_sets", "{test_set}", "cache", "images_{size}.npy"),
        index=results("test_sets", "{test_set}", "cache", "index_{size}.csv"),
    log:
        results("logs", "cache_test_set_images_{test_set}_{size}.log"),
    benchmark:
        results("benchmarks", "cache_test_set_images_{test_set}_{size}.tsv")
    wildcard_constraints:
        size=r"\d+",
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("cache_test_set_images", "threads")
    resources:
        mem_mb=res("cache_test_set_images", "mem_mb"),
        runtime=res("cache_test_set_images", "runtime"),
        gpu=res("cache_test_set_images", "gpu"),
    params:
        on_bad=config["data"]["on_bad_image"],
        code=code_version("cache_test_set_images"),
    script:
        "../scripts/stage.py"


rule cache_test_set_masks:
    input:
        index=results("test_sets", "{test_set}", "cache", "index_{size}.csv"),
        masks=results("test_sets", "{test_set}", "masks", "{condition}"),
    output:
        cache=results(
            "test_sets", "{test_set}", "cache", "masks_{condition}_{size}.npy"
        ),
    log:
        results("logs", "cache_test_set_masks_{test_set}_{condition}_{size}.log"),
    benchmark:
        results("benchmarks", "cache_test_set_masks_{test_set}_{condition}_{size}.tsv")
    wildcard_constraints:
        size=r"\d+",
        condition="tight|loose",
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("cache_test_set_masks", "threads")
    resources:
        mem_mb=res("cache_test_set_masks", "mem_mb"),
        runtime=res("cache_test_set_masks", "runtime"),
        gpu=res("cache_test_set_masks", "gpu"),
    params:
        code=code_version("cache_test_set_masks"),
    script:
        "../scripts/stage.py"


rule predict_test_set:
    input:
        images=test_set_cache("images"),
        index=test_set_cache("index"),
        masks=test_set_mask_cache,
        model=str(Path(cell_dir(), "model.pt")),
    output:
        predictions=test_set_predictions_file(),
    log:
        results(
            "logs",
            "predict_test_set",
            "{test_set}",
            "{backbone}_{mask}_seed{seed}.log",
        ),
    benchmark:
        results(
            "benchmarks",
            "predict_test_set",
            "{test_set}",
            "{backbone}_{mask}_seed{seed}.tsv",
        )
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("predict_test_set", "threads")
    resources:
        mem_mb=res("predict_test_set", "mem_mb"),
        runtime=res("predict_test_set", "runtime"),
        gpu=res("predict_test_set", "gpu"),
    params:
        architecture=lambda w: BACKBONES[w.backbone],
        labels=LABELS,
        settings=classifier_settings(),
        device=config["device"],
        code=code_version("predict_test_set"),
    script:
        "../scripts/stage.py"


rule evaluate_test_sets:
    input:
        predictions=cell_files("predictions.csv"),
        external=test_set_predictions(),
    output:
        auroc=results("tables", "auroc_test_sets.csv"),
        delong=results("tables", "delong_test_sets.csv"),
        shift=results("tables", "shift_test_sets.csv"),
    log:
        results("logs", "evaluate_test_sets.log"),
    benchmark:
        results("benchmarks", "evaluate_test_sets.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("evaluate_test_sets", "threads")
    resources:
        mem_mb=res("evaluate_test_sets", "mem_mb"),
        runtime=res("evaluate_test_sets", "runtime"),
        gpu=res("evaluate_test_sets", "gpu"),
    params:
        cells=CELLS,
        test_sets=list(config["test_sets"]),
        labels=LABELS,
        settings=config["evaluate"],
        compare=config["compare"],
        seed=config["seed"],
        code=code_version("evaluate_test_sets"),
    script:
        "../scripts/stage.py"
