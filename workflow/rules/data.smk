# Data stage: the embedded demo, downloads, curation of the study's subset (NIH's, or a training_set
# collection's), the lung-mask fine-tuning set.


rule make_demo_data:
    output:
        labels=results("demo", "nih", "Data_Entry_2017_v2020.csv"),
        train_val=results("demo", "nih", "train_val_list.txt"),
        test=results("demo", "nih", "test_list.txt"),
        shifted=results("demo", "nih", "shifted_list.txt"),
        images=directory(results("demo", "nih", "images")),
        truth=directory(results("demo", "nih_lung_masks")),
        seg=directory(results("demo", "airlangga")),
        padchest_table=results(
            "demo", "padchest", "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
        ),
        padchest_images=directory(results("demo", "padchest", "images")),
    log:
        results("logs", "make_demo_data.log"),
    benchmark:
        results("benchmarks", "make_demo_data.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("make_demo_data", "threads")
    resources:
        mem_mb=res("make_demo_data", "mem_mb"),
        runtime=res("make_demo_data", "runtime"),
        gpu=res("make_demo_data", "gpu"),
    params:
        settings=config["demo"],
        code=code_version("make_demo_data"),
    script:
        "../scripts/stage.py"


rule make_demo_reference:
    input:
        truth=results("demo", "nih_lung_masks"),
    output:
        chexmask=results("demo", "nih", "ChestX-Ray8.csv"),
    log:
        results("logs", "make_demo_reference.log"),
    benchmark:
        results("benchmarks", "make_demo_reference.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("make_demo_reference", "threads")
    resources:
        mem_mb=res("make_demo_reference", "mem_mb"),
        runtime=res("make_demo_reference", "runtime"),
        gpu=res("make_demo_reference", "gpu"),
    params:
        code=code_version("make_demo_reference"),
    script:
        "../scripts/stage.py"


rule download:
    output:
        dest=downloaded("{group}", "{name}"),
    log:
        str(Path(RESOURCES, "logs", "download_{group}_{name}.log")),
    wildcard_constraints:
        group="nih|seg_data|checkpoints|reference|expert",
        name=r"[^/]+",
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        source=download_source,
        sha256=download_sha256,
        lock_file=str(Path(RESOURCES, "downloads.lock.json")),
        settings=config["download"],
        code=code_version("download"),
    script:
        "../scripts/stage.py"


rule extract_nih_archive:
    input:
        archive=downloaded("nih", "images_{part}.tar.gz"),
    output:
        folder=directory(str(Path(RESOURCES, "nih", "images_{part}"))),
    log:
        str(Path(RESOURCES, "logs", "extract_nih_archive_{part}.log")),
    benchmark:
        str(Path(RESOURCES, "benchmarks", "extract_nih_archive_{part}.tsv"))
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("extract_nih_archive", "threads")
    resources:
        mem_mb=res("extract_nih_archive", "mem_mb"),
        runtime=res("extract_nih_archive", "runtime"),
        gpu=res("extract_nih_archive", "gpu"),
    params:
        code=code_version("extract_nih_archive"),
    script:
        "../scripts/stage.py"


rule extract_seg_data:
    input:
        archive=seg_archive(),
    output:
        folder=directory(str(Path(RESOURCES, "seg_data", "extracted"))),
    log:
        str(Path(RESOURCES, "logs", "extract_seg_data.log")),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        code=code_version("extract_seg_data"),
    script:
        "../scripts/stage.py"


rule curate_nih:
    input:
        labels_csv=nih_metadata("Data_Entry_2017_v2020.csv"),
        train_val=nih_metadata("train_val_list.txt"),
        test=nih_metadata("test_list.txt"),
        shifted=nih_shifted_list(),
        images=nih_image_dirs(),
    output:
        subset=results("nih", "subset.csv"),
        summary=results("nih", "curation.json"),
    log:
        results("logs", "curate_nih.log"),
    conda:
        "../../envs/cxrmask.yaml"
    params:
        labels=LABELS,
        no_finding=config["nih"]["no_finding"],
        views=config["nih"]["views"],
        val_fraction=config["nih"]["val_fraction"],
        seed=config["seed"],
        code=code_version("curate_nih"),
    script:
        "../scripts/stage.py"


rule curate_training_set:
    input:
        table=training_set_path("table"),
        images=training_set_path("images"),
        metadata=training_set_path("metadata"),
    output:
        subset=results("training_set", "subset.csv"),
        summary=results("training_set", "curation.json"),
    log:
        results("logs", "curate_training_set.log"),
    conda:
        "../../envs/cxrmask.yaml"
    params:
        settings=training_set_settings,
        labels=LABELS,
        val_fraction=config["nih"]["val_fraction"],
        seed=config["seed"],
        code=code_version("curate_training_set"),
    script:
        "../scripts/stage.py"


rule prepare_seg_data:
    input:
        root=seg_root(),
    output:
        data=results("segment", "seg_data.npz"),
        prior=results("segment", "box_prior.json"),
        pairs=results("segment", "pairs.csv"),
    log:
        results("logs", "prepare_seg_data.log"),
    benchmark:
        results("benchmarks", "prepare_seg_data.tsv")
    priority: 10
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("prepare_seg_data", "threads")
    resources:
        mem_mb=res("prepare_seg_data", "mem_mb"),
        runtime=res("prepare_seg_data", "runtime"),
        gpu=res("prepare_seg_data", "gpu"),
    params:
        # Functions, so Snakemake leaves the patterns' {id} and {group} alone.
        image_pattern=lambda w: config["seg_data"]["images"],
        mask_patterns=lambda w: config["seg_data"]["masks"],
        val_fraction=config["seg_data"]["val_fraction"],
        test_fraction=config["seg_data"]["test_fraction"],
        box_margin=config["seg_data"]["box_margin"],
        segmenter=config["segmenter"],
        seed=config["seed"],
        on_bad=config["data"]["on_bad_image"],
        code=code_version("prepare_seg_data"),
    script:
        "../scripts/stage.py"
