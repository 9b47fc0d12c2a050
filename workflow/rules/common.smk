# Shared set-up, config validation, paths and input functions.

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

from snakemake.exceptions import WorkflowError

# The library lives in src/. Putting it on PYTHONPATH for every job (local, conda or cluster: the
# environment is inherited) means jobs always run this checkout's code, with no install step to forget.
SRC = str(Path(workflow.basedir, "src").resolve())
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from cxrmask.config import load_config
from cxrmask.errors import ConfigError
from cxrmask.figure_registry import figure, figure_rules, figure_stems
from cxrmask.codetrace import code_version
from cxrmask.rule_call import check_rule
from cxrmask.vocabulary import (
    LOOSE_CONDITIONS,
    MASKED_CONDITIONS,
    ORIGINAL,
    REFERENCE_CONDITIONS,
    extent_of,
    tight_of,
)

try:
    SETTINGS = load_config(config)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
# Every key, defaults filled in from the model: rules read one complete config, and params hold whole
# sections, so a changed default reruns what it affects.
config.update(SETTINGS.model_dump(mode="json"))

RESULTS = config["results"]
RESOURCES = config["resources_dir"]
DEMO = config["data"]["source"] == "demo"
LABELS = config["nih"]["labels"]
CONDITIONS = config["classifier"]["masks"]
SEEDS = config["classifier"]["seeds"]
SHARDS = list(range(config["segment"]["shards"]))
FIG = config["figures"]["format"]
# Backbone names may carry a library prefix (torchvision:resnet50); paths use a dash instead.
BACKBONES = {name.replace(":", "-"): name for name in config["classifier"]["backbones"]}
NIH_METADATA = ["Data_Entry_2017_v2020.csv", "train_val_list.txt", "test_list.txt"]
# A collection trained on in NIH's place (training_set); the NIH-only keys are null then (config.py).
TRAINING = config["training_set"] is not None
# A second, shifted test set: the demo's marker-decorrelated twins, or a user's nih.shifted_list.
SHIFTED = not TRAINING and (
    config["demo"]["shortcut_rate_test"] is not None
    if DEMO
    else config["nih"]["shifted_list"] is not None
)
# The study's images have ground-truth lungs: the demo's NIH-style images (not its other collection).
TRUTH = DEMO and not TRAINING
# Reference lungs the tight masks are checked against: CheXmask's on NIH, the ground truth in the demo.
REFERENCE = TRUTH or config["nih"]["chexmask"] is not None


wildcard_constraints:
    backbone="|".join(re.escape(slug) for slug in BACKBONES),
    mask="|".join(CONDITIONS),
    condition="|".join([*MASKED_CONDITIONS, "truth"]),
    loose="|".join(LOOSE_CONDITIONS),
    seed=r"\d+",
    shard=r"\d+",
    part=r"\d{3}",
    # No name matches where there are no test sets.
    test_set="|".join(re.escape(name) for name in config["test_sets"]) or r"(?!)",


def results(*parts):
    """A path under the results folder."""
    return str(Path(RESULTS, *parts))


# The rules that read their resources from config: an entry for any other rule would do nothing.
RESOURCE_READERS = set()


def res(job, key):
    """A rule's resource from config (`resources:`), falling back to `resources.default`.

    `job` is the rule's own name (check_stages refuses an entry that no rule reads). Memory and
    wall time grow with the attempt: a job killed for either is retried (`--retries`) with twice,
    then three times the limits instead of failing again the same way.
    """
    RESOURCE_READERS.add(job)
    table = config["resources"]
    value = table.get(job, {}).get(key)
    value = table["default"][key] if value is None else value
    if key in ("mem_mb", "runtime"):
        return lambda wildcards, attempt: value * attempt
    return value


def check_stages():
    """The workflow holds together before any job: every rule that runs a stage names what its stage
    takes, its log and benchmark are named after it, every `plot_*` rule is a registered figure, and
    every `resources:` entry is read by its rule."""
    names = {definition.name for definition in workflow.rules}
    problems = [
        (
            f"resources.{name}: the workflow has no such rule; its rules are {sorted(names)}"
            if name not in names
            else f"resources.{name}: {name} reads no resources from config, so this entry would do "
            f"nothing; remove it. Those that read theirs are {sorted(RESOURCE_READERS)}"
        )
        for name in config["resources"]
        if name != "default" and name not in RESOURCE_READERS
    ]
    drawing = {name for name in names if name.startswith("plot_")}
    problems += [
        f"{name} draws a figure that cxrmask/figure_registry.py does not list"
        for name in sorted(drawing - figure_rules())
    ]
    problems += [
        f"figure_registry: {name} has no rule in the workflow"
        for name in sorted(figure_rules() - names)
    ]
    for definition in workflow.rules:
        if not str(definition.script or "").endswith("stage.py"):
            continue
        if definition.name in figure_rules():
            stem = figure(definition.name).stem.split("{")[0]
            if not Path(str(getattr(definition.output, "figure", ""))).name.startswith(
                stem
            ):
                problems.append(
                    f"{definition.name}: its figure is not the registry's {stem}..."
                )
        for kind, path in (
            ("log", next(iter(definition.log), None)),
            ("benchmark", definition.benchmark),
        ):
            # a file or folder named after the rule (wildcard patterns may hold a slash)
            if path and not re.search(rf"(^|/){definition.name}[._/]", str(path)):
                problems.append(
                    f"{definition.name}: its {kind} {path} is not named after its rule"
                )
        groups = {
            "input": dict(definition.input._get_names()),
            "output": dict(definition.output._get_names()),
            "params": dict(definition.params._get_names()),
            "wildcards": definition.wildcard_names,
        }
        code = getattr(definition.params, "code", None)
        problems += check_rule(definition.name, groups, code)
    if problems:
        raise WorkflowError(
            "the workflow does not hold together:\n  " + "\n  ".join(problems)
        )


def downloaded(group, name):
    """Where a downloaded source file is kept (resources/downloads/<group>/<name>)."""
    return str(Path(RESOURCES, "downloads", group, name))


def is_url(value):
    return urlparse(str(value)).scheme in ("http", "https", "ftp", "file")


def download_name(url):
    """File name a URL is saved under."""
    return Path(urlparse(url).path).name or "download"


# ---- input functions ------------------------------------------------------------------------------


def subset_file(wildcards=None):
    """The study's curated subset every later stage reads: NIH's, or the training_set collection's."""
    return results("training_set" if TRAINING else "nih", "subset.csv")


def curation_file(wildcards=None):
    """The curation's counts beside :func:`subset_file`."""
    return results("training_set" if TRAINING else "nih", "curation.json")


def training_subset_file(wildcards=None):
    """The training_set's subset, whose patients no test set may share ([] for NIH: its ids are not
    comparable with another collection's)."""
    return subset_file() if TRAINING else []


def training_set_settings(wildcards=None):
    """training_set with `{results}` in its paths made the results folder, as for a test set."""
    return resolved_paths(config["training_set"])


def training_set_path(key):
    """An input function for one of training_set's paths ([] where it has none)."""
    return lambda wildcards: training_set_settings()[key] or []


def nih_metadata(name):
    if DEMO:
        return results("demo", "nih", name)
    return downloaded("nih", name)


def nih_shifted_list(wildcards=None):
    """The shifted test set's image list, [] without one."""
    if not SHIFTED:
        return []
    if DEMO:
        return results("demo", "nih", "shifted_list.txt")
    return config["nih"]["shifted_list"]


def nih_image_dirs(wildcards=None):
    if DEMO:
        return [results("demo", "nih", "images")]
    return [
        str(Path(RESOURCES, "nih", f"images_{part:03d}"))
        for part in sorted(config["nih"]["archives"])
    ]


def resolved_paths(collection):
    """A collection's settings with `{results}` in its paths made the results folder (the demo's
    collection is written there)."""
    settings = dict(collection)
    for key in ("table", "images", "metadata"):
        if settings[key]:
            settings[key] = settings[key].replace("{results}", RESULTS)
    return settings


def test_set_settings(wildcards):
    """One external test set's settings (test_sets.<name>), paths resolved."""
    return resolved_paths(config["test_sets"][wildcards.test_set])


def test_set_table(wildcards):
    return test_set_settings(wildcards)["table"]


def test_set_images(wildcards):
    return test_set_settings(wildcards)["images"]


def test_set_metadata(wildcards):
    """MIMIC-CXR-JPG's image table, [] for the other collections."""
    return test_set_settings(wildcards)["metadata"] or []


def test_set_cache(kind):
    """A test set's image cache (`images`) or its index (`index`) at the classifier's size."""
    suffix = "npy" if kind == "images" else "csv"
    size = config["classifier"]["image_size"]
    return results("test_sets", "{test_set}", "cache", f"{kind}_{size}.{suffix}")


def test_set_mask_cache(wildcards):
    """The mask cache of the test set that a classifier cell's predictions read ([] for original images).

    A test set has the segmenter's masks only, so a cell trained on CheXmask's lungs predicts it through
    the segmenter's masks of the same extent, as a user of that classifier would."""
    if wildcards.mask == ORIGINAL:
        return []
    size = config["classifier"]["image_size"]
    extent = extent_of(wildcards.mask)
    return results(
        "test_sets", wildcards.test_set, "cache", f"masks_{extent}_{size}.npy"
    )


def test_set_predictions_file(
    test_set="{test_set}", backbone="{backbone}", mask="{mask}", seed="{seed}"
):
    return results(
        "test_sets", test_set, "predictions", backbone, mask, f"seed{seed}.csv"
    )


def test_set_predictions(wildcards=None):
    """Every cell's predictions on every test set: sets in config order, cells in grid order."""
    return [
        test_set_predictions_file(
            name, c["backbone"].replace(":", "-"), c["mask"], c["seed"]
        )
        for name in config["test_sets"]
        for c in CELLS
    ]


def test_set_tables(wildcards=None):
    """The external test sets' tables the report reads, {} without test sets."""
    if not config["test_sets"]:
        return {}
    return {
        "auroc_test_sets": results("tables", "auroc_test_sets.csv"),
        "delong_test_sets": results("tables", "delong_test_sets.csv"),
        "shift_test_sets": results("tables", "shift_test_sets.csv"),
    }


def test_set_claim_tables(wildcards=None):
    """The external test sets' tables the claims judged per set read, {} without test sets."""
    tables = test_set_tables()
    return {
        key: tables[key]
        for key in ("delong_test_sets", "shift_test_sets")
        if key in tables
    }


def seg_root(wildcards=None):
    if config["seg_data"]["root"]:
        return config["seg_data"]["root"]
    if DEMO:
        return results("demo", "airlangga")
    return str(Path(RESOURCES, "seg_data", "extracted"))


def truth_dir(wildcards=None):
    """Ground-truth lung masks of the NIH-style images (the demo has them, NIH does not)."""
    return [results("demo", "nih_lung_masks")] if TRUTH else []


def reference_file(wildcards=None):
    """The reference lungs' CheXmask file: the demo's own, a download, or a local path ([] without one)."""
    if TRUTH:
        return results("demo", "nih", "ChestX-Ray8.csv")
    source = config["nih"]["chexmask"]
    if source is None:
        return []
    return downloaded("reference", download_name(source)) if is_url(source) else source


def expert_file(wildcards=None):
    """Google's NIH expert-label table: a download or a local path ([] when nih.expert_labels is off)."""
    source = config["nih"]["expert_labels"]
    if source is None:
        return []
    return downloaded("expert", download_name(source)) if is_url(source) else source


def expert_tables(wildcards=None):
    """The expert-reading table the report reads, {} when nih.expert_labels is off."""
    if config["nih"]["expert_labels"] is None:
        return {}
    return {"auroc_expert": results("tables", "auroc_expert.csv")}


def reference_tables(wildcards=None):
    """The mask-vs-reference tables the claims and the report read, {} without a reference."""
    if not REFERENCE:
        return {}
    return {
        "masks_by_finding": results("tables", "masks_by_finding.csv"),
        "masks_qc": results("tables", "masks_qc_check.json"),
    }


def reference_mask_tables(wildcards=None):
    """The CheXmask conditions' shard tables the report counts sources in, {} where none is trained."""
    if not set(REFERENCE_CONDITIONS) & set(CONDITIONS):
        return {}
    return {"reference_masks": mask_tables(REFERENCE_CONDITIONS[0])}


def checkpoint_file(wildcards=None):
    """The segmenter's starting weights as an input file ([] for LiteMedSAM's bundled weights)."""
    weights = config["segmenter"]["checkpoint"]
    if weights in (None, "bundled"):
        return []
    if is_url(weights):
        return downloaded("checkpoints", download_name(weights))
    return weights


def checkpoint_value(wildcards, input):
    """What the fine-tuning script loads: the input file, or `bundled` / None."""
    return input.checkpoint if input.checkpoint else config["segmenter"]["checkpoint"]


def download_source(wildcards):
    """URL (or local path) of a file under resources/, by its place there."""
    if wildcards.group == "nih" and wildcards.name in NIH_METADATA:
        return config["nih"]["metadata_urls"][wildcards.name]
    match = re.fullmatch(r"images_(\d{3})\.tar\.gz", wildcards.name)
    if wildcards.group == "nih" and match:
        return config["nih"]["archive_urls"][int(match.group(1)) - 1]
    if wildcards.group == "seg_data":
        return config["seg_data"]["url"]
    if wildcards.group == "checkpoints":
        return config["segmenter"]["checkpoint"]
    if wildcards.group == "reference":
        return config["nih"]["chexmask"]
    if wildcards.group == "expert":
        return config["nih"]["expert_labels"]
    raise WorkflowError(f"no download source for {wildcards.group}/{wildcards.name}")


def download_sha256(wildcards):
    if wildcards.group in ("nih", "reference", "expert"):
        return config["nih"].get("sha256", {}).get(wildcards.name)
    if wildcards.group == "seg_data":
        return config["seg_data"].get("sha256")
    return config["segmenter"].get("checkpoint_sha256")


def seg_archive(wildcards=None):
    return downloaded("seg_data", download_name(config["seg_data"]["url"]))


def mask_dirs(condition):
    """Folders of one condition's masks; `truth` is the demo's ground-truth lungs."""
    if condition == "truth":
        return truth_dir()
    return expand(results("masks", condition, "shard_{shard}"), shard=SHARDS)


def lung_cache(wildcards=None):
    """The lungs saliency is measured against: the ground truth where known (demo), else the tight masks."""
    lungs = "truth" if TRUTH else "tight"
    return results("cache", f"masks_{lungs}_{config['classifier']['image_size']}.npy")


def tight_shard(suffix=""):
    """An input function: the tight shard (folder, or its table with suffix `.csv`) that a loose shard is
    dilated from, of the loose condition's own source."""
    return lambda wildcards: results(
        "masks", tight_of(wildcards.loose), f"shard_{wildcards.shard}{suffix}"
    )


def mask_tables(condition):
    return expand(results("masks", condition, "shard_{shard}.csv"), shard=SHARDS)


def mask_cache(wildcards):
    """The mask cache a classifier cell reads ([] for original images)."""
    if wildcards.mask == ORIGINAL:
        return []
    return results(
        "cache", f"masks_{wildcards.mask}_{config['classifier']['image_size']}.npy"
    )


def cell_dir(backbone="{backbone}", mask="{mask}", seed="{seed}"):
    return results("classify", backbone, mask, f"seed{seed}")


CELLS = [
    {"backbone": name, "mask": mask, "seed": seed}
    for name in config["classifier"]["backbones"]
    for mask in CONDITIONS
    for seed in SEEDS
]


def cell_files(filename):
    return [
        str(
            Path(
                cell_dir(c["backbone"].replace(":", "-"), c["mask"], c["seed"]),
                filename,
            )
        )
        for c in CELLS
    ]


def run_records(wildcards=None):
    """Every job's MLflow run record."""
    return [
        results("segment", "finetune_run.json"),
        *expand(results("masks", "tight", "shard_{shard}_run.json"), shard=SHARDS),
        *cell_files("run.json"),
        *cell_files("saliency_run.json"),
    ]


def figure_output(rule):
    """A figure rule's output, from the registry (cxrmask.figure_registry): file, caption, category."""
    entry = figure(rule)
    return report(
        results("figures", f"{entry.stem}.{FIG}"),
        caption=f"../report/{entry.caption}",
        category=entry.category,
    )


OPTIONAL_PRESENT = {
    name
    for name, present in (("shifted", SHIFTED), ("reference", REFERENCE))
    if present
}


def figure_files(wildcards=None):
    """Every figure of the run, in the report's order (the registry's)."""
    return [
        results("figures", f"{stem}.{FIG}")
        for stem in figure_stems(list(BACKBONES), OPTIONAL_PRESENT)
    ]


def shift_table(wildcards=None):
    """The shifted-test-set table the claims and the report read, [] without a shifted set."""
    return results("tables", "shift.csv") if SHIFTED else []


def classifier_settings():
    """The classifier section less the grid (backbones, masks, seeds): adding a backbone retrains nothing else."""
    return SETTINGS.classifier.train.model_dump(mode="json")


def backbone_cells(slug):
    return [c for c in CELLS if c["backbone"] == BACKBONES[slug]]


def backbone_cell_files(slug, filename):
    return [
        str(Path(cell_dir(slug, c["mask"], c["seed"]), filename))
        for c in backbone_cells(slug)
    ]
