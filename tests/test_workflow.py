"""The workflow as a whole: its plans, its lint, its profiles, and the demo end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from snakerun import (
    DEMO,
    FIGURE_RULES,
    REPO,
    SNAKEFILE,
    dry_run,
    overlay,
    planned_job_files,
    planned_jobs,
    snakemake,
    tiny_args,
)

from cxrmask.vocabulary import LOOSE_CONDITIONS, extent_of, tight_of

FULL_PLAN = {
    "download": 17,
    "extract_nih_archive": 12,
    "extract_seg_data": 1,
    "curate_nih": 1,
    "prepare_seg_data": 1,
    "finetune_medsam": 1,
    "cache_images": 1,
    "generate_masks": 8,
    "dilate_masks": 8,
    "cache_masks": 2,
    "train_classifier": 9,
    "evaluate_classifiers": 1,
    "compare_conditions": 1,
    "plot_roc": 3,
    "plot_training_curves": 3,
    "plot_auroc_heatmap": 1,
    "plot_delta_auroc": 1,
    "plot_mask_gallery": 1,
    "plot_qc_gallery": 1,
    "compare_bootstrap": 1,
    "summarise_claims": 1,
    "saliency_classifier": 9,
    "saliency_table": 1,
    "plot_saliency": 1,
    "plot_saliency_overlays": 3,
    "plot_no_finding": 3,
    "plot_training_efficiency": 1,
    "write_report": 1,
    "log_mlflow": 1,
    "all": 1,
}


def test_full_reproduction_plans_every_job_with_no_data(tmp_path):
    jobs = dry_run(
        "--config", f"results={tmp_path}/results", f"resources_dir={tmp_path}/resources", workdir=tmp_path
    )
    assert jobs == FULL_PLAN


def test_full_plan_downloads_each_source_file_once(tmp_path):
    result = snakemake(
        "-n", "--config", f"results={tmp_path}/r", f"resources_dir={tmp_path}/d", workdir=tmp_path
    )
    downloads = re.findall(rf"rule download:\n\s+output: {tmp_path}/d/downloads/(\S+)", result.stdout)
    archives = [f"nih/images_{i:03d}.tar.gz" for i in range(1, 13)]
    metadata = ["nih/Data_Entry_2017_v2020.csv", "nih/test_list.txt", "nih/train_val_list.txt"]
    expected = [*archives, *metadata, "seg_data/2jg8vfdmpm-1.zip", "checkpoints/medsam_vit_b.pth"]
    assert sorted(downloads) == sorted(expected)


CHEXMASK_URL = (
    "https://physionet.org/files/chexmask-cxr-segmentation-data/1.0.0/OriginalResolution/ChestX-Ray8.csv"
)


def test_a_chexmask_url_is_downloaded_once_and_checks_the_masks(tmp_path):
    reference = overlay(tmp_path, "reference", {"nih": {"chexmask": CHEXMASK_URL}})
    result = snakemake(
        "-n",
        "--configfile",
        reference,
        "--config",
        f"results={tmp_path}/r",
        f"resources_dir={tmp_path}/d",
        workdir=tmp_path,
    )
    jobs = planned_jobs(result.stdout)
    extra = {"download": 1, "compare_masks_reference": 1, "plot_masks_reference": 1}
    assert jobs == {**FULL_PLAN, **{rule: FULL_PLAN.get(rule, 0) + n for rule, n in extra.items()}}
    downloads = re.findall(rf"rule download:\n\s+output: {tmp_path}/d/downloads/(\S+)", result.stdout)
    assert "reference/ChestX-Ray8.csv" in downloads
    compare = next(
        job for job in planned_job_files(result.stdout) if job["rule"] == "compare_masks_reference"
    )
    assert f"{tmp_path}/d/downloads/reference/ChestX-Ray8.csv" in compare["input"]


def test_a_local_chexmask_file_is_read_where_it_is(tmp_path):
    local = tmp_path / "ChestX-Ray8.csv.gz"
    local.write_bytes(b"")
    reference = overlay(tmp_path, "reference", {"nih": {"chexmask": str(local)}})
    result = snakemake(
        "-n", "--configfile", reference, "--config", f"results={tmp_path}/r", f"resources_dir={tmp_path}/d",
        workdir=tmp_path,
    )  # fmt: skip
    jobs = planned_jobs(result.stdout)
    assert jobs["download"] == FULL_PLAN["download"] and jobs["compare_masks_reference"] == 1
    compare = next(
        job for job in planned_job_files(result.stdout) if job["rule"] == "compare_masks_reference"
    )
    assert str(local) in compare["input"]


def test_expert_labels_add_one_reading_of_the_test_predictions(tmp_path):
    """A URL is downloaded once into downloads/expert/; the reading is one job over all cells' predictions."""
    url = "https://example.org/four_findings_expert_labels/test_labels.csv"
    expert = overlay(tmp_path, "expert", {"nih": {"expert_labels": url}})
    result = snakemake(
        "-n", "--configfile", expert, "--config", f"results={tmp_path}/r", f"resources_dir={tmp_path}/d",
        workdir=tmp_path,
    )  # fmt: skip
    jobs = planned_jobs(result.stdout)
    assert jobs == {**FULL_PLAN, "download": FULL_PLAN["download"] + 1, "evaluate_expert_labels": 1}
    job = next(job for job in planned_job_files(result.stdout) if job["rule"] == "evaluate_expert_labels")
    assert f"{tmp_path}/d/downloads/expert/test_labels.csv" in job["input"]
    assert sum("/classify/" in path for path in job["input"]) == FULL_PLAN["train_classifier"]
    report = next(job for job in planned_job_files(result.stdout) if job["rule"] == "write_report")
    assert f"{tmp_path}/r/tables/auroc_expert.csv" in report["input"]


def test_subset_of_archives_plans_only_those(tmp_path):
    subset = overlay(tmp_path, "subset", {"nih": {"archives": [1, 2]}})
    jobs = dry_run(
        "--configfile",
        subset,
        "--config",
        f"results={tmp_path}/r",
        f"resources_dir={tmp_path}/d",
        workdir=tmp_path,
    )
    assert jobs["extract_nih_archive"] == 2
    assert jobs["download"] == 2 + 3 + 2


def test_demo_plan(tmp_path):
    jobs = dry_run("--configfile", DEMO, "--config", f"results={tmp_path}", workdir=tmp_path)
    assert "download" not in jobs
    assert jobs["make_demo_data"] == 1
    assert jobs["train_classifier"] == 2 * 5  # two backbones x original, and two extents of two sources
    assert jobs["saliency_classifier"] == 2 * 5
    assert jobs["generate_masks"] == 2
    assert jobs["decode_reference_masks"] == 2  # the ground truth's CheXmask file cut into the same shards
    assert jobs["dilate_masks"] == 2 * 2  # loose and chexmask-loose, per shard
    assert jobs["cache_masks"] == 5  # four masked conditions, and the ground-truth lungs saliency reads
    # the PadChest-style external set: curated, segmented once, dilated once, predicted by every cell
    assert {rule: jobs[rule] for rule in jobs if "test_set" in rule} == {
        "curate_test_set": 1,
        "generate_test_set_masks": 1,
        "dilate_test_set_masks": 1,
        "cache_test_set_images": 1,
        "cache_test_set_masks": 2,
        "predict_test_set": 10,
        "evaluate_test_sets": 1,
    }


def test_each_masked_condition_reads_its_own_masks_in_the_plan(tmp_path):
    """From the planned jobs' files: every job of a condition reads that condition's masks and no other's
    (the ground-truth lungs aside, which saliency is measured against), and the original reads none; a
    CheXmask condition's masks come from the reference file cut into the segmenter's shards, and on an
    external set, which has the segmenter's masks only, its cells read those of the same extent."""
    result = snakemake("-n", "--configfile", DEMO, "--config", f"results={tmp_path}", workdir=tmp_path)
    jobs = planned_job_files(result.stdout + result.stderr)
    root = str(tmp_path)

    def conditions_read(job: dict) -> set[str]:
        cache, folder = r"/cache/masks_([\w-]+?)_\d+\.npy$", r"/masks/([\w-]+)/shard_\d+"
        caches = {m.group(1) for p in job["input"] if (m := re.search(cache, p))}
        folders = {m.group(1) for p in job["input"] if (m := re.search(folder, p))}
        return (
            caches
            | folders
            | ({"truth"} if any(p.endswith("nih_lung_masks") for p in job["input"]) else set())
        )

    checked = {
        "train_classifier": 0,
        "saliency_classifier": 0,
        "cache_masks": 0,
        "dilate_masks": 0,
        "decode_reference_masks": 0,
        "predict_test_set": 0,
        "cache_test_set_masks": 0,
    }
    external = f"{root}/test_sets/padchest_demo"
    for job in jobs:
        rule, wildcards = job["rule"], job["wildcards"]
        if rule == "predict_test_set":  # the set's own masks of the cell's condition, and the cell's weights
            mask = wildcards["mask"]
            own = [] if mask == "original" else [f"{external}/cache/masks_{extent_of(mask)}_128.npy"]
            cell = f"{root}/classify/{wildcards['backbone']}/{mask}/seed{wildcards['seed']}/"
            assert sorted(job["input"]) == sorted(
                [
                    f"{external}/cache/images_128.npy",
                    f"{external}/cache/index_128.csv",
                    *own,
                    f"{cell}model.pt",
                ]
            ), job
        elif rule == "cache_test_set_masks":
            condition = wildcards["condition"]
            assert f"{external}/masks/{condition}" in job["input"], job
            assert job["output"] == [f"{external}/cache/masks_{condition}_128.npy"], job
        elif rule in ("train_classifier", "saliency_classifier"):
            mask = wildcards["mask"]
            own = set() if mask == "original" else {mask}
            extra = {"truth"} if rule == "saliency_classifier" else set()
            assert conditions_read(job) == own | extra, job
            cell = f"{root}/classify/{wildcards['backbone']}/{mask}/seed{wildcards['seed']}/"
            assert all(path.startswith(cell) for path in job["output"]), job
            if rule == "saliency_classifier":
                assert f"{cell}model.pt" in job["input"], job
        elif rule == "cache_masks":
            condition = wildcards["condition"]
            assert conditions_read(job) == {condition}, job
            if condition != "truth":
                shards = sorted(p for p in job["input"] if f"/masks/{condition}/shard_" in p)
                assert shards == [f"{root}/masks/{condition}/shard_{k}" for k in range(2)], job
            assert job["output"] == [f"{root}/cache/masks_{condition}_128.npy"], job
        elif rule == "dilate_masks":
            shard, loose = wildcards["shard"], wildcards["loose"]
            tight = {"loose": "tight", "chexmask-loose": "chexmask-tight"}[loose]
            assert job["input"][:2] == [
                f"{root}/masks/{tight}/shard_{shard}",
                f"{root}/masks/{tight}/shard_{shard}.csv",
            ], job
            assert job["output"] == [
                f"{root}/masks/{loose}/shard_{shard}",
                f"{root}/masks/{loose}/shard_{shard}.csv",
            ], job
        elif rule == "decode_reference_masks":
            shard = wildcards["shard"]
            assert sorted(job["input"]) == sorted(
                [
                    f"{root}/masks/tight/shard_{shard}",
                    f"{root}/masks/tight/shard_{shard}.csv",
                    f"{root}/demo/nih/ChestX-Ray8.csv",
                ]
            ), job
            assert job["output"] == [
                f"{root}/masks/chexmask-tight/shard_{shard}",
                f"{root}/masks/chexmask-tight/shard_{shard}.csv",
            ], job
        else:
            continue
        checked[rule] += 1
    assert checked == {
        "train_classifier": 10,
        "saliency_classifier": 10,
        "cache_masks": 5,
        "dilate_masks": 4,
        "decode_reference_masks": 2,
        "predict_test_set": 10,
        "cache_test_set_masks": 2,
    }


def test_planned_jobs_reads_a_job_table_or_nothing_to_be_done_and_refuses_anything_else():
    table = (
        "Job stats:\njob                 count\n----------------  -------\n"
        "all                 1\nplot_roc            3\ntotal               4\n"
    )
    assert planned_jobs("Building DAG of jobs...\n" + table) == {"all": 1, "plot_roc": 3}
    assert planned_jobs("Nothing to be done (all requested files are present and up to date).") == {}
    for unreadable in ("", "Building DAG of jobs...\nJob counts:\n\tcount\tjobs\n\t1\tall\n"):
        with pytest.raises(AssertionError, match="no job table"):
            planned_jobs(unreadable)


@pytest.mark.parametrize("configs", [[], [DEMO]], ids=["full", "demo"])
def test_lint_has_nothing_to_say(configs, tmp_path):
    result = snakemake(
        "--lint", *(["--configfile", *configs] if configs else []), workdir=tmp_path, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_rules_are_snakefmt_formatted():
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_python_is_ruff_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        command = [sys.executable, "-m", "ruff", *args]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_slurm_profile_plans_with_resources_from_config(tmp_path):
    result = snakemake(
        "--profile",
        "profiles/slurm",
        "-n",
        "--configfile",
        DEMO,
        "--config",
        f"results={tmp_path}",
        workdir=tmp_path,
    )
    jobs = planned_jobs(result.stdout + result.stderr)
    assert jobs["train_classifier"] == 10
    # resources come from config/demo.yaml's `resources:` section
    assert "mem_mb=4000" in result.stdout
    assert "runtime=60" in result.stdout


def test_no_profile_is_loaded_behind_the_cluster_profiles_back(tmp_path):
    """A workflow's profiles/default is loaded on every run and overrides --profile: there must be none."""
    result = snakemake(
        "--profile", "profiles/slurm", "-n", "--config", f"results={tmp_path}", workdir=tmp_path
    )
    assert "Using profile profiles/slurm for setting" in result.stderr
    assert "workflow specific profile" not in result.stderr
    assert not (REPO / "profiles" / "default").exists()
    # the full study's per-rule limits, not the profile's defaults for rules without any
    finetune = re.search(r"rule finetune_medsam:.*?resources: ([^\n]*)", result.stdout, re.S).group(1)
    assert "mem_mb=32000" in finetune and "runtime=480" in finetune and "gpu=1" in finetune


# ---- the demo, end to end, on a few images ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tiny_run):
    """The whole workflow on the tiny demo (run once per session, see conftest); its results folder."""
    return tiny_run


def demo_args(results, *configs) -> list:
    """Arguments of the tiny demo run into ``results``, with more config files layered on top."""
    return tiny_args(results, configs=configs)


def with_overlay(results, config: dict) -> list:
    """The demo run's arguments with ``config`` layered on top (as a user editing one key would)."""
    return demo_args(results, overlay(results.parent, "overlay", config))


@pytest.mark.slow
@pytest.mark.parametrize("loose", LOOSE_CONDITIONS)
def test_a_loose_conditions_job_run_alone_reads_its_own_sources_tight_masks(demo_run, loose):
    """A cluster node runs one job as `snakemake --target-jobs RULE:WILDCARDS --allowed-rules RULE`: the
    dilation of each loose condition must be that one job, reading its source's tight masks, and must not
    also claim the tight masks as a loose condition of its own (which failed every dilation on SLURM)."""
    target = f"dilate_masks:loose={loose},shard=0"
    result = snakemake("-n", *demo_args(demo_run), "--target-jobs", target, "--allowed-rules", "dilate_masks")
    jobs = planned_job_files(result.stdout + result.stderr)
    assert [(job["rule"], job["wildcards"]) for job in jobs] == [
        ("dilate_masks", {"loose": loose, "shard": "0"})
    ]
    assert jobs[0]["input"][:1] == [str(demo_run / "masks" / tight_of(loose) / "shard_0")]
    assert jobs[0]["output"][:1] == [str(demo_run / "masks" / loose / "shard_0")]


@pytest.mark.slow
def test_demo_writes_every_output(demo_run):
    results = demo_run
    report = (results / "report.md").read_text()
    assert "zero-shot" in report and "fine-tuned" in report
    assert "Against the ground-truth lungs: mean Dice" in report
    for name in ("roc_resnet10t", "training_resnet10t", "auroc_heatmap", "delta_auroc", "mask_gallery"):
        with Image.open(results / "figures" / f"{name}.png") as image:
            assert image.size[0] > 50 and image.size[1] > 50
    auroc = pd.read_csv(results / "tables" / "auroc.csv")
    assert set(auroc["mask"]) == {"original", "tight", "loose", "chexmask-loose"}
    assert set(auroc["label"]) == {"Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis", "No Finding", "macro"}
    delong = pd.read_csv(results / "tables" / "delong.csv")
    assert len(delong) == 4 * 6  # the study's three pairs and loose against chexmask-loose, six labels
    assert {"auc_a", "auc_b", "z", "p_value", "p_holm", "significant"} <= set(delong.columns)
    summary = json.loads((results / "segment" / "finetune_summary.json").read_text())
    assert 0 < summary["zero_shot_val_dice"] <= 1 and 0 < summary["finetuned_val_dice"] <= 1
    assert report.index("## The paper's claims against this run") < report.index("## Curated NIH subset")
    claims = pd.read_csv(results / "tables" / "claims.csv")
    assert set(claims["verdict"]) <= {"supported", "contradicted", "not resolved"}
    assert (results / "summary.md").read_text().startswith("# The paper's claims against this run")
    saliency = pd.read_csv(results / "tables" / "saliency.csv")
    assert len(saliency) == 4 * 5  # findings only
    # a label whose every map is empty (no positive Grad-CAM mass) has no mean, and says so
    test_images = int((pd.read_csv(results / "cache" / "index_64.csv").query("ok")["split"] == "test").sum())
    assert (saliency["n_images"] + saliency["n_undefined"] == test_images).all()
    assert saliency["inside_fraction"].dropna().between(0, 1).all()
    for name in ("saliency", "saliency_resnet10t", "no_finding_resnet10t", "training_efficiency"):
        assert (results / "figures" / f"{name}.png").is_file()
    tight = pd.concat(pd.read_csv(p) for p in sorted((results / "masks" / "tight").glob("shard_*.csv")))
    index = pd.read_csv(results / "cache" / "index_64.csv")
    assert len(tight) == int(index["ok"].sum())
    assert tight["dice"].mean() > 0.7
    # the shifted test set: every test image's twin is predicted, and the drops are in table, figure, report
    index = index.query("ok")
    shifted = pd.read_csv(
        results / "classify" / "resnet10t" / "original" / "seed0" / "predictions_shifted.csv"
    )
    assert len(shifted) == int((index["split"] == "shifted").sum()) == int((index["split"] == "test").sum())
    shift = pd.read_csv(results / "tables" / "shift.csv")
    assert (
        len(shift[shift["kind"] == "drop"]) == 4 * 7 and len(shift[shift["kind"] == "excess_drop"]) == 3 * 7
    )
    assert (results / "figures" / "shift.png").is_file() and "## Shifted test set" in report
    assert len(claims[claims["claim"] == "shortcut"]) == 2  # the paper's claim: its own two masked conditions
    # the masks against the demo's ground truth, encoded as a CheXmask file and read back: the same Dice
    reference = pd.read_csv(results / "tables" / "masks_vs_reference.csv")
    assert sorted(reference["image"]) == sorted(tight["image"])
    paired = reference.merge(tight[["image", "dice"]], on="image", suffixes=("", "_truth"))
    assert (paired["dice"] - paired["dice_truth"]).abs().max() < 1e-5
    by_finding = pd.read_csv(results / "tables" / "masks_by_finding.csv")
    assert by_finding["finding"].tolist() == [
        "Mass",
        "Nodule",
        "Pneumonia",
        "Edema",
        "Fibrosis",
        "No Finding",
    ]
    assert (by_finding["n_positive"] + by_finding["n_negative"] == len(reference)).all()
    qc = json.loads((results / "tables" / "masks_qc_check.json").read_text())
    assert qc["available"] and qc["n"] == len(reference)
    assert (
        "## Mask error by finding" in report
        and "# Mask error by finding" in (results / "summary.md").read_text()
    )
    assert (results / "figures" / "masks_vs_reference.png").is_file()
    # the external test set: every curated image masked and predicted by every cell, scored per set
    external = results / "test_sets" / "padchest_demo"
    manifest = pd.read_csv(external / "manifest.csv")
    assert len(manifest) and manifest["patient_id"].str.startswith("padchest:").all()
    assert len(pd.read_csv(external / "masks" / "tight.csv")) == len(manifest)
    assert len(list((external / "masks" / "loose").glob("*.png"))) == len(manifest)
    predicted = pd.read_csv(external / "predictions" / "resnet10t" / "tight" / "seed0.csv")
    assert sorted(predicted["image"]) == sorted(manifest["image"])
    external_auroc = pd.read_csv(results / "tables" / "auroc_test_sets.csv")
    assert set(external_auroc["test_set"]) == {"padchest_demo"} and len(external_auroc) == 4 * 7
    # an AUROC the set cannot define says so in its note (the tiny set may have none such)
    notes = external_auroc["note"].astype("string").fillna("")
    assert (external_auroc["auroc"].notna() | notes.str.startswith("undefined")).all()
    external_shift = pd.read_csv(results / "tables" / "shift_test_sets.csv")
    assert len(external_shift[external_shift["kind"] == "drop"]) == 4 * 7
    assert "## External test sets" in report and "### padchest_demo" in report
    # the claims an external set can decide are judged on it: two masked conditions' transfer rows
    transfer = claims[claims["claim"] == "transfer"]
    assert transfer["test_set"].tolist() == ["padchest_demo"] * 2
    assert "Judged on each external test set" in report
    # the mask source: the reference lungs cut into the segmenter's shards, dilated, one cell trained on them
    sources = pd.concat(
        pd.read_csv(p) for p in sorted((results / "masks" / "chexmask-tight").glob("shard_*.csv"))
    )
    assert sorted(sources["image"]) == sorted(tight["image"]) and set(sources["source"]) == {"reference"}
    for table in sorted((results / "masks" / "chexmask-tight").glob("shard_*.csv")):
        for name in pd.read_csv(table)["image"]:  # the demo's reference is its ground truth: the same lungs
            truth = np.asarray(Image.open(results / "demo" / "nih_lung_masks" / name)) > 0
            assert np.array_equal(np.asarray(Image.open(table.with_suffix("") / name)) > 0, truth), name
    loose_reference = sorted((results / "masks" / "chexmask-loose").glob("shard_*/*.png"))
    assert len(loose_reference) == len(tight)
    source = claims[claims["claim"] == "source"]
    assert source["measure"].tolist() == ["Δ macro AUROC (chexmask-loose - loose)"]
    assert "## Mask sources" in report and f"{len(tight)} of {len(tight)} images have them" in report


@pytest.mark.slow
def test_every_job_is_one_mlflow_run(demo_run):
    from mlflow.tracking import MlflowClient

    results = demo_run
    runs = pd.read_csv(results / "mlflow" / "runs.csv")
    assert len(runs) == 1 + 2 + 4 + 4  # fine-tuning, two mask shards, four classifier cells, their saliency
    client = MlflowClient(tracking_uri=runs["tracking_uri"].iloc[0])
    experiment = client.get_experiment_by_name("cxrmask")
    logged = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in logged) == sorted(runs["run_id"])
    for run in logged:
        assert run.info.status == "FINISHED"
        assert run.data.tags["cxrmask.config_hash"]
        assert run.data.metrics
    train = [r for r in logged if r.data.tags["cxrmask.rule"] == "train_classifier"]
    history = client.get_metric_history(train[0].info.run_id, "val_macro_auroc")
    assert [m.step for m in history] == [1, 2]


@pytest.mark.slow
def test_second_run_has_nothing_to_do(demo_run):
    assert dry_run(*demo_args(demo_run)) == {}


@pytest.mark.slow
def test_figure_keys_rerun_only_figures(demo_run):
    jobs = dry_run(*with_overlay(demo_run, {"figures": {"dpi": 41}}))
    assert set(jobs) == FIGURE_RULES | {"all"}


@pytest.mark.slow
def test_loose_radius_reruns_only_the_loose_branch(demo_run):
    jobs = dry_run(*with_overlay(demo_run, {"loose": {"radius": 60}}))
    assert jobs["dilate_masks"] == 2 * 2  # both sources' loose masks, two shards each
    assert jobs["cache_masks"] == 2
    assert jobs["train_classifier"] == 2
    assert not {"generate_masks", "decode_reference_masks", "finetune_medsam", "cache_images"} & set(jobs)


@pytest.mark.slow
def test_the_reference_threshold_reruns_only_the_mask_check_and_what_reads_it(demo_run):
    """The threshold decides which reference lungs the check scores and which the CheXmask conditions use:
    those rerun, with their cell and what reads it; the segmenter's masks and cells do not."""
    jobs = dry_run(*with_overlay(demo_run, {"nih": {"chexmask_min_rca": 0.8}}))
    reading = {"compare_masks_reference", "plot_masks_reference", "summarise_claims", "write_report"}
    assert reading <= set(jobs)
    assert jobs["decode_reference_masks"] == 2 and jobs["dilate_masks"] == 2  # chexmask-loose's shards
    assert jobs["cache_masks"] == 1 and jobs["train_classifier"] == 1  # chexmask-loose's
    assert not {"generate_masks", "finetune_medsam", "cache_images", "generate_test_set_masks"} & set(jobs)


@pytest.mark.slow
def test_new_backbone_trains_only_its_cells(demo_run):
    jobs = dry_run(*with_overlay(demo_run, {"classifier": {"backbones": ["resnet10t", "resnet14t"]}}))
    assert jobs["train_classifier"] == 4
    assert jobs["plot_roc"] == 1
    assert "generate_masks" not in jobs and "cache_masks" not in jobs


@pytest.mark.slow
def test_cpu_rerun_gives_identical_numbers(tiny_copy):
    """One classifier retrained in place, in a copy of the run (its new MLflow runs stay out of the shared
    store): the same prediction bytes, and only that cell and its saliency logged again.

    That a whole run in a new folder gives the same bytes is test_slurm.py's comparison of its run, made
    from scratch through sbatch, with this one; tests/test_resume.py does the same for killed runs."""
    results = tiny_copy
    cells = sorted((results / "classify").glob("*/*/seed*/predictions.csv"))
    assert len(cells) == 4
    before = {p: p.read_bytes() for p in cells}
    (retrained,) = [p for p in cells if p.parent.parent.name == "tight"]
    snakemake("--cores", "2", *demo_args(results), "--forcerun", retrained.parent / "model.pt")
    assert {p: p.read_bytes() for p in cells} == before
    runs = pd.read_csv(results / "mlflow" / "runs.csv")
    logged = runs.loc[runs["logged"], "record"]
    assert len(logged) == 1 + 1, logged  # the retrained cell and its saliency, on the new weights
    assert logged.str.contains("/classify/").all() and logged.str.contains("/tight/").all(), logged


@pytest.mark.slow
def test_classifier_image_size_reruns_caches_and_classifiers_not_segmentation(demo_run):
    jobs = dry_run(*with_overlay(demo_run, {"classifier": {"image_size": 96}}))
    assert jobs["cache_images"] == 1 and jobs["train_classifier"] == 4
    segmentation = {"finetune_medsam", "generate_masks", "decode_reference_masks", "dilate_masks"}
    assert not (segmentation | {"prepare_seg_data"}) & set(jobs)


def _checkout_copy(folder: Path) -> Path:
    """The workflow and its library, copied to edit as a developer would."""
    for name in ("Snakefile", "workflow", "src", "config"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, folder / name)
    return folder / "Snakefile"


SEGMENTATION = {"make_demo_data", "prepare_seg_data", "finetune_medsam", "generate_masks", "cache_images"}

# The rerun plan, edit by edit (README, *What reruns*): file -> (old, new) pairs, and a check of the plan.
PLAN_TABLE = {
    "documentation": (
        {
            "config.py": [
                ('description="dots per inch of raster output"', 'description="raster resolution"'),
                ('AMP_HELP = "bf16', 'AMP_HELP = "reworded: bf16'),
                (
                    "    backoff: float = Field(",
                    '    proxy: str | None = Field(None, description="new")\n    backoff: float = Field(',
                ),
            ],
            "classify/train.py": [('"""Training one classifier cell', '"""Reworded: training one cell')],
            "segment/postprocess.py": [("def dice(", "# a comment\ndef dice(")],
        },
        lambda jobs: jobs == {},
    ),
    "a default the loose masks take": (
        {"config.py": [("radius: float = Field(40.0,", "radius: float = Field(41.0,")]},
        lambda jobs: (
            jobs["dilate_masks"] == 2 * 2 and jobs["train_classifier"] == 2 and not SEGMENTATION & set(jobs)
        ),
    ),
    "mask scoring code": (
        {"segment/postprocess.py": [("if total == 0:\n", "if not total:\n")]},
        lambda jobs: (  # and the CheXmask condition, whose shards take the segmenter's masks where it lacks
            jobs["generate_masks"] == 2 and jobs["train_classifier"] == 3 and "finetune_medsam" not in jobs
        ),
    ),
    "figure code": (
        {"figures.py": [("def roc_curves(", "def _another_helper():\n    return 2\n\n\ndef roc_curves(")]},
        lambda jobs: jobs == {},
    ),
    "figure drawing code": (
        {"figure_style.py": [('MISSING_COLOUR = "#eeeeee"', 'MISSING_COLOUR = "#efefef"')]},
        lambda jobs: set(jobs) == {"plot_auroc_heatmap", "write_report", "all"},  # the heatmap's gaps only
    ),
    "how files are written and logged": (
        {
            "atomic.py": [("json.dumps(data, indent=2,", "json.dumps(data, indent=1,")],
            "logs.py": [('mode="w"', 'mode="w", encoding="utf-8"')],
        },
        lambda jobs: jobs == {},
    ),
    "the training loop": (
        {
            "classify/train.py": [
                ("torch.Generator().manual_seed(seed)", "torch.Generator().manual_seed(seed + 1)")
            ]
        },
        lambda jobs: (
            jobs["train_classifier"] == 4
            and jobs["saliency_classifier"] == 4
            and not SEGMENTATION & set(jobs)
        ),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("edit", list(PLAN_TABLE))
def test_an_edit_replans_exactly_what_depends_on_it(demo_run, tmp_path, edit):
    replacements, expected = PLAN_TABLE[edit]
    snakefile = _checkout_copy(tmp_path / "checkout")
    for name, pairs in replacements.items():
        source = tmp_path / "checkout" / "src" / "cxrmask" / name
        text = source.read_text()
        for old, new in pairs:
            assert text.count(old) == 1, f"{old!r} is not in {name} once"
            text = text.replace(old, new)
        source.write_text(text)
    args = [str(arg) for arg in demo_args(demo_run)]
    args[args.index(str(SNAKEFILE))] = str(snakefile)
    jobs = dry_run(*args)
    assert expected(jobs), jobs


def test_a_resources_entry_that_no_rule_reads_is_refused_before_any_job(tmp_path):
    """The figures run on the submit host and take no resources: an entry for one would do nothing."""
    settings = overlay(tmp_path, "resources", {"resources": {"plot_roc": {"threads": 4}}})
    result = snakemake(
        "-n",
        "--configfile",
        DEMO,
        settings,
        "--config",
        f"results={tmp_path}/r",
        workdir=tmp_path,
        check=False,
    )
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert "resources.plot_roc: plot_roc reads no resources from config" in said
    assert "'saliency_classifier'" in said  # which borrowed train_classifier's until it read its own
