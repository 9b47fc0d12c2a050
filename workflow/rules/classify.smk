# Classification stage: decode images and masks once into caches, train one classifier per cell.


rule cache_images:
    input:
        subset=subset_file(),
    output:
        cache=results("cache", "images_{size}.npy"),
        index=results("cache", "index_{size}.csv"),
    log:
        results("logs", "cache_images_{size}.log"),
    benchmark:
        results("benchmarks", "cache_images_{size}.tsv")
    wildcard_constraints:
        size=r"\d+",
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("cache_images", "threads")
    resources:
        mem_mb=res("cache_images", "mem_mb"),
        runtime=res("cache_images", "runtime"),
        gpu=res("cache_images", "gpu"),
    params:
        on_bad=config["data"]["on_bad_image"],
        code=code_version("cache_images"),
    script:
        "../scripts/stage.py"


rule cache_masks:
    input:
        index=results("cache", "index_{size}.csv"),
        masks=lambda w: mask_dirs(w.condition),
    output:
        cache=results("cache", "masks_{condition}_{size}.npy"),
    log:
        results("logs", "cache_masks_{condition}_{size}.log"),
    benchmark:
        results("benchmarks", "cache_masks_{condition}_{size}.tsv")
    wildcard_constraints:
        size=r"\d+",
    priority: 10
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("cache_masks", "threads")
    resources:
        mem_mb=res("cache_masks", "mem_mb"),
        runtime=res("cache_masks", "runtime"),
        gpu=res("cache_masks", "gpu"),
    params:
        code=code_version("cache_masks"),
    script:
        "../scripts/stage.py"


rule train_classifier:
    input:
        images=results("cache", f"images_{config['classifier']['image_size']}.npy"),
        index=results("cache", f"index_{config['classifier']['image_size']}.csv"),
        masks=mask_cache,
    output:
        predictions=str(Path(cell_dir(), "predictions.csv")),
        predictions_shifted=str(Path(cell_dir(), "predictions_shifted.csv")),
        history=str(Path(cell_dir(), "history.csv")),
        summary=str(Path(cell_dir(), "summary.json")),
        model=str(Path(cell_dir(), "model.pt")),
        record=str(Path(cell_dir(), "run.json")),
    log:
        results("logs", "train_classifier", "{backbone}_{mask}_seed{seed}.log"),
    benchmark:
        results("benchmarks", "train_classifier", "{backbone}_{mask}_seed{seed}.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("train_classifier", "threads")
    resources:
        mem_mb=res("train_classifier", "mem_mb"),
        runtime=res("train_classifier", "runtime"),
        gpu=res("train_classifier", "gpu"),
    params:
        architecture=lambda w: BACKBONES[w.backbone],
        labels=LABELS,
        settings=classifier_settings(),
        device=config["device"],
        code=code_version("train_classifier"),
    script:
        "../scripts/stage.py"
