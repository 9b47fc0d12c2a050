# Data stage: the embedded demo, downloads, curation of the NIH subset, the lung-mask fine-tuning set.


rule make_demo_data:
    output:
        labels=results("demo", "nih", "Data_Entry_2017_v2020.csv"),
        train_val=results("demo", "nih", "train_val_list.txt"),
        test=results("demo", "nih", "test_list.txt"),
        images=directory(results("demo", "nih", "images")),
        truth=directory(results("demo", "nih_lung_masks")),
        seg=directory(results("demo", "airlangga")),
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
        demo=config.get("demo", {}),
        out_dir=lambda w, output: str(Path(output.labels).parents[1]),
    script:
        "../scripts/make_demo_data.py"


rule download:
    output:
        downloaded("{group}", "{name}"),
    log:
        str(Path(RESOURCES, "logs", "download_{group}_{name}.log")),
    wildcard_constraints:
        group="nih|seg_data|checkpoints",
        name=r"[^/]+",
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        source=download_source,
        sha256=download_sha256,
        lock_file=str(Path(RESOURCES, "downloads.lock.json")),
        settings=config["download"],
    script:
        "../scripts/download.py"


rule extract_nih_archive:
    input:
        downloaded("nih", "images_{part}.tar.gz"),
    output:
        directory(str(Path(RESOURCES, "nih", "images_{part}"))),
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
    script:
        "../scripts/extract_archive.py"


rule extract_seg_data:
    input:
        seg_archive(),
    output:
        directory(str(Path(RESOURCES, "seg_data", "extracted"))),
    log:
        str(Path(RESOURCES, "logs", "extract_seg_data.log")),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    script:
        "../scripts/extract_archive.py"


rule curate_nih:
    input:
        labels=nih_metadata("Data_Entry_2017_v2020.csv"),
        train_val=nih_metadata("train_val_list.txt"),
        test=nih_metadata("test_list.txt"),
        images=nih_image_dirs(),
    output:
        subset=results("nih", "subset.csv"),
        summary=results("nih", "curation.json"),
    log:
        results("logs", "curate_nih.log"),
    conda:
        "../../envs/cxrmask.yaml"
    params:
        settings={
            k: config["nih"][k]
            for k in ("labels", "no_finding", "views", "val_fraction")
        },
        seed=config["seed"],
    script:
        "../scripts/curate_nih.py"


rule prepare_seg_data:
    input:
        seg_root(),
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
        settings={
            k: config["seg_data"][k]
            for k in ("images", "masks", "val_fraction", "box_margin")
        },
        segmenter=config["segmenter"],
        seed=config["seed"],
        on_bad=config["data"]["on_bad_image"],
    script:
        "../scripts/prepare_seg_data.py"
