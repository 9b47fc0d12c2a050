# Evaluation stage: AUROC tables, paired DeLong comparisons, figures, the report, MLflow.


rule evaluate_classifiers:
    input:
        predictions=cell_files("predictions.csv"),
        summaries=cell_files("summary.json"),
    output:
        auroc=results("tables", "auroc.csv"),
        training=results("tables", "training.csv"),
    log:
        results("logs", "evaluate_classifiers.log"),
    benchmark:
        results("benchmarks", "evaluate_classifiers.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("evaluate_classifiers", "threads")
    resources:
        mem_mb=res("evaluate_classifiers", "mem_mb"),
        runtime=res("evaluate_classifiers", "runtime"),
        gpu=res("evaluate_classifiers", "gpu"),
    params:
        cells=CELLS,
        labels=LABELS,
        settings=config["evaluate"],
        seed=config["seed"],
        code=code_version("evaluate_classifiers"),
    script:
        "../scripts/stage.py"


rule evaluate_expert_labels:
    input:
        predictions=cell_files("predictions.csv"),
        expert=expert_file(),
    output:
        auroc=results("tables", "auroc_expert.csv"),
    log:
        results("logs", "evaluate_expert_labels.log"),
    conda:
        "../../envs/cxrmask.yaml"
    params:
        cells=CELLS,
        labels=LABELS,
        settings=config["evaluate"],
        code=code_version("evaluate_expert_labels"),
    script:
        "../scripts/stage.py"


rule compare_conditions:
    input:
        predictions=cell_files("predictions.csv"),
    output:
        delong=results("tables", "delong.csv"),
    log:
        results("logs", "compare_conditions.log"),
    conda:
        "../../envs/cxrmask.yaml"
    params:
        cells=CELLS,
        labels=LABELS,
        settings=config["compare"],
        alpha=config["evaluate"]["alpha"],
        code=code_version("compare_conditions"),
    script:
        "../scripts/stage.py"


rule evaluate_shift:
    input:
        predictions=cell_files("predictions.csv"),
        predictions_shifted=cell_files("predictions_shifted.csv"),
    output:
        shift=results("tables", "shift.csv"),
    log:
        results("logs", "evaluate_shift.log"),
    benchmark:
        results("benchmarks", "evaluate_shift.tsv")
    conda:
        "../../envs/cxrmask.yaml"
    threads: res("evaluate_shift", "threads")
    resources:
        mem_mb=res("evaluate_shift", "mem_mb"),
        runtime=res("evaluate_shift", "runtime"),
        gpu=res("evaluate_shift", "gpu"),
    params:
        cells=CELLS,
        labels=LABELS,
        settings=config["evaluate"],
        seed=config["seed"],
        code=code_version("evaluate_shift"),
    script:
        "../scripts/stage.py"


rule plot_shift:
    input:
        shift=results("tables", "shift.csv"),
    output:
        figure=figure_output("plot_shift"),
    log:
        results("logs", "plot_shift.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        style=config["figures"],
        code=code_version("plot_shift"),
    script:
        "../scripts/stage.py"


rule plot_roc:
    input:
        predictions=lambda w: backbone_cell_files(w.backbone, "predictions.csv"),
    output:
        figure=figure_output("plot_roc"),
    log:
        results("logs", "plot_roc_{backbone}.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        cells=lambda w: backbone_cells(w.backbone),
        architecture=lambda w: BACKBONES[w.backbone],
        labels=LABELS,
        style=config["figures"],
        code=code_version("plot_roc"),
    script:
        "../scripts/stage.py"


rule plot_training_curves:
    input:
        histories=lambda w: backbone_cell_files(w.backbone, "history.csv"),
    output:
        figure=figure_output("plot_training_curves"),
    log:
        results("logs", "plot_training_curves_{backbone}.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        cells=lambda w: backbone_cells(w.backbone),
        architecture=lambda w: BACKBONES[w.backbone],
        style=config["figures"],
        code=code_version("plot_training_curves"),
    script:
        "../scripts/stage.py"


rule plot_auroc_heatmap:
    input:
        auroc=results("tables", "auroc.csv"),
    output:
        figure=figure_output("plot_auroc_heatmap"),
    log:
        results("logs", "plot_auroc_heatmap.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        style=config["figures"],
        code=code_version("plot_auroc_heatmap"),
    script:
        "../scripts/stage.py"


rule plot_delta_auroc:
    input:
        delong=results("tables", "delong.csv"),
    output:
        figure=figure_output("plot_delta_auroc"),
    log:
        results("logs", "plot_delta_auroc.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        style=config["figures"],
        code=code_version("plot_delta_auroc"),
    script:
        "../scripts/stage.py"


rule plot_mask_gallery:
    input:
        index=results("cache", f"index_{config['classifier']['image_size']}.csv"),
        tight=mask_dirs("tight"),
        loose=mask_dirs("loose"),
        truth=truth_dir(),
    output:
        figure=figure_output("plot_mask_gallery"),
    log:
        results("logs", "plot_mask_gallery.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        style=config["figures"],
        code=code_version("plot_mask_gallery"),
    script:
        "../scripts/stage.py"


rule plot_qc_gallery:
    input:
        index=results("cache", f"index_{config['classifier']['image_size']}.csv"),
        tables=mask_tables("tight"),
        tight=mask_dirs("tight"),
        loose=mask_dirs("loose"),
        truth=truth_dir(),
    output:
        figure=figure_output("plot_qc_gallery"),
    log:
        results("logs", "plot_qc_gallery.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        style=config["figures"],
        code=code_version("plot_qc_gallery"),
    script:
        "../scripts/stage.py"


rule plot_masks_reference:
    input:
        table=results("tables", "masks_vs_reference.csv"),
        subset=subset_file(),
        tables=mask_tables("tight"),
        qc=results("tables", "masks_qc_check.json"),
    output:
        figure=figure_output("plot_masks_reference"),
    log:
        results("logs", "plot_masks_reference.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        labels=LABELS,
        style=config["figures"],
        code=code_version("plot_masks_reference"),
    script:
        "../scripts/stage.py"


rule write_report:
    input:
        unpack(reference_tables),
        unpack(test_set_tables),
        unpack(expert_tables),
        unpack(reference_mask_tables),
        curation=curation_file(),
        finetune=results("segment", "finetune_summary.json"),
        tight=mask_tables("tight"),
        loose=mask_tables("loose"),
        auroc=results("tables", "auroc.csv"),
        delong=results("tables", "delong.csv"),
        training=results("tables", "training.csv"),
        figures=figure_files(),
        summary=results("summary.md"),
        shift=shift_table,
    output:
        report=results("report.md"),
    log:
        results("logs", "write_report.log"),
    localrule: True
    conda:
        "../../envs/cxrmask.yaml"
    params:
        code=code_version("write_report"),
    script:
        "../scripts/stage.py"


rule log_mlflow:
    input:
        records=run_records(),
    output:
        runs=results("mlflow", "runs.csv"),
    log:
        results("logs", "log_mlflow.log"),
    localrule: True
    conda:
        "../../envs/mlflow.yaml"
    params:
        settings=config["mlflow"],
        results=lambda w, output: str(Path(output.runs).parents[1]),
        code=code_version("log_mlflow"),
    script:
        "../scripts/stage.py"
