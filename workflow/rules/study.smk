# The study's answers: paired patient-bootstrap contrasts, the paper's claims against this run, where each
# classifier looks (Grad-CAM inside the lungs), and the figures that show them.


rule compare_bootstrap:
    input:
        predictions=cell_files("predictions.csv"),
    output:
        contrasts=results("tables", "contrasts.csv"),
    log:
        results("logs", "compare_bootstrap.log"),
    benchmark:
        results("benchmarks", "compare_bootstrap.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("compare_bootstrap", "threads")
    resources:
        mem_mb=res("compare_bootstrap", "mem_mb"),
        runtime=res("compare_bootstrap", "runtime"),
        gpu=res("compare_bootstrap", "gpu"),
    params:
        cells=CELLS,
        labels=LABELS,
        settings=config["evaluate"],
        pairs=config["compare"]["pairs"],
        seed=config["seed"],
        code=code_version("compare_bootstrap"),
    script:
        "../scripts/stage.py"


rule summarise_claims:
    input:
        unpack(reference_tables),
        unpack(test_set_claim_tables),
        contrasts=results("tables", "contrasts.csv"),
        delong=results("tables", "delong.csv"),
        training=results("tables", "training.csv"),
        shift=shift_table,
    output:
        summary=report(
            results("summary.md"),
            caption="../report/summary.rst",
            category="Claims",
        ),
        claims=results("tables", "claims.csv"),
    log:
        results("logs", "summarise_claims.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        alpha=config["evaluate"]["alpha"],
        n_boot=config["evaluate"]["n_boot"],
        settings=config["claims"],
        # the finding the demo's marker predicts; a user's shifted set is judged on macro AUROC
        shortcut_label=config["demo"]["shortcut_label"] if DEMO else None,
        code=code_version("summarise_claims"),
    script:
        "../scripts/stage.py"


rule saliency_classifier:
    input:
        images=results("cache", f"images_{config['classifier']['image_size']}.npy"),
        index=results("cache", f"index_{config['classifier']['image_size']}.csv"),
        masks=mask_cache,
        lungs=lung_cache(),
        model=str(Path(cell_dir(), "model.pt")),
    output:
        saliency=str(Path(cell_dir(), "saliency.csv")),
        examples=str(Path(cell_dir(), "saliency.npz")),
        record=str(Path(cell_dir(), "saliency_run.json")),
    log:
        results("logs", "saliency_classifier", "{backbone}_{mask}_seed{seed}.log"),
    benchmark:
        results("benchmarks", "saliency_classifier", "{backbone}_{mask}_seed{seed}.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("saliency_classifier", "threads")
    resources:
        mem_mb=res("saliency_classifier", "mem_mb"),
        runtime=res("saliency_classifier", "runtime"),
        gpu=res("saliency_classifier", "gpu"),
    params:
        architecture=lambda w: BACKBONES[w.backbone],
        labels=LABELS,
        settings=classifier_settings(),
        keep=config["saliency"]["examples"],
        device=config["device"],
        code=code_version("saliency_classifier"),
    script:
        "../scripts/stage.py"


rule saliency_table:
    input:
        saliency=cell_files("saliency.csv"),
    output:
        table=results("tables", "saliency.csv"),
    log:
        results("logs", "saliency_table.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        code=code_version("saliency_table"),
    script:
        "../scripts/stage.py"


rule plot_saliency:
    input:
        table=results("tables", "saliency.csv"),
    output:
        figure=figure_output("plot_saliency"),
    log:
        results("logs", "plot_saliency.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        style=config["figures"],
        code=code_version("plot_saliency"),
    script:
        "../scripts/stage.py"


rule plot_saliency_overlays:
    input:
        examples=lambda w: backbone_cell_files(w.backbone, "saliency.npz"),
    output:
        figure=figure_output("plot_saliency_overlays"),
    log:
        results("logs", "plot_saliency_overlays_{backbone}.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        cells=lambda w: backbone_cells(w.backbone),
        architecture=lambda w: BACKBONES[w.backbone],
        label=config["saliency"]["label"] or LABELS[0],
        style=config["figures"],
        code=code_version("plot_saliency_overlays"),
    script:
        "../scripts/stage.py"


rule plot_no_finding:
    input:
        predictions=lambda w: backbone_cell_files(w.backbone, "predictions.csv"),
    output:
        figure=figure_output("plot_no_finding"),
    log:
        results("logs", "plot_no_finding_{backbone}.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        cells=lambda w: backbone_cells(w.backbone),
        architecture=lambda w: BACKBONES[w.backbone],
        style=config["figures"],
        code=code_version("plot_no_finding"),
    script:
        "../scripts/stage.py"


rule plot_training_efficiency:
    input:
        summaries=cell_files("summary.json"),
    output:
        figure=figure_output("plot_training_efficiency"),
    log:
        results("logs", "plot_training_efficiency.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        style=config["figures"],
        code=code_version("plot_training_efficiency"),
    script:
        "../scripts/stage.py"
