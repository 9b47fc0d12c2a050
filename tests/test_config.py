"""cxrmask.config: one model of the configuration; the schema, the defaults and the settings come from it."""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

import annotated_types
import pytest
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from snakemake.utils import update_config

from cxrmask import config as cfg
from cxrmask.config import (
    ClassifierSettings,
    Config,
    FinetuneSettings,
    SegmenterSettings,
    TrainSettings,
    load_config,
    parse,
    schema_text,
)
from cxrmask.errors import ConfigError
from cxrmask.vocabulary import NIH_LABELS

REPO = Path(__file__).resolve().parents[1]


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _merged(*overlays: Path) -> dict:
    """config/config.yaml with ``overlays`` deep-merged over it, in order, as ``--configfile`` does."""
    config = _yaml(REPO / "config" / "config.yaml")
    for path in overlays:
        update_config(config, _yaml(path))
    return config


@pytest.fixture
def full() -> dict:
    return _merged()


# ---- one source of truth ---------------------------------------------------------------------------------


def test_config_yaml_is_the_models_defaults(full: dict) -> None:
    """config/config.yaml shows exactly the model's defaults: deleting any key from it changes nothing."""
    assert load_config(full) == Config()


def _leaves(mapping: dict, prefix: str = "") -> Iterator[str]:
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _field(model: type[BaseModel], dotted: str):
    """The model field a dotted config key belongs to (a key inside a mapping: the mapping's field)."""
    current: object = model
    field = None
    for part in dotted.split("."):
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return field
        field = fields[part]
        current = field.annotation
    return field


def test_every_key_of_the_config_file_has_a_description(full: dict) -> None:
    undocumented = [
        key for key in _leaves(full) if not (_field(Config, key) and _field(Config, key).description)
    ]
    assert not undocumented
    assert len(list(_leaves(full))) > 100


def _model_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, object]]:
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _model_fields(field.annotation, f"{prefix}{name}.")


def test_every_field_of_the_model_is_described_and_shown_in_the_config_file(full: dict) -> None:
    keys = set(_leaves(full)) | {key.rsplit(".", 1)[0] for key in _leaves(full)}
    for dotted, field in _model_fields(Config):
        assert field.description, f"{dotted} has no description"
        if not dotted.startswith("segmenter.encoder."):  # overrides, empty by default
            assert dotted in keys or any(k.startswith(f"{dotted}.") for k in keys), (
                f"{dotted} not in config.yaml"
            )


def test_schema_file_is_the_models_output() -> None:
    assert (REPO / "config" / "schema.yaml").read_text() == schema_text(), (
        "config/schema.yaml is stale: run `python -m cxrmask.config > config/schema.yaml`"
    )


def test_library_sections_have_no_defaults_of_their_own() -> None:
    """The settings the library receives are the model's sections, so their defaults are the file's."""
    assert FinetuneSettings().epochs == _yaml(REPO / "config" / "config.yaml")["finetune"]["epochs"] == 30
    assert FinetuneSettings().patience == 8
    assert Config().segment.batch_size == 16 and Config().segment.num_workers == 4
    assert Config().figures.dpi == 200


# ---- the shipped configs ---------------------------------------------------------------------------------


def test_demo_config_merged_over_the_full_one_validates() -> None:
    demo = load_config(_merged(REPO / "config" / "demo.yaml"))
    assert demo.data.source == "demo"
    # The merge is deep: the demo overrides some keys of a section and inherits the rest.
    assert demo.classifier.masks == ["original", "tight", "loose", "chexmask-tight", "chexmask-loose"]
    assert demo.compare.pairs == [
        ("original", "tight"),
        ("original", "loose"),
        ("tight", "loose"),
        ("tight", "chexmask-tight"),
        ("loose", "chexmask-loose"),
    ]
    assert demo.segmenter.arch == "litemedsam"
    assert demo.finetune.lr == Config().finetune.lr


def test_test_overlay_merged_over_the_demo_validates() -> None:
    tiny = load_config(_merged(REPO / "config" / "demo.yaml", REPO / "tests" / "configs" / "tiny.yaml"))
    assert tiny.classifier.image_size == 64


def test_a_deleted_key_takes_the_default_the_file_showed(full: dict) -> None:
    del full["finetune"]["epochs"]
    del full["finetune"]["patience"]
    del full["segment"]
    del full["figures"]["dpi"]
    config = load_config(full)
    assert config.finetune.epochs == 30 and config.finetune.patience == 8
    assert (config.segment.batch_size, config.segment.num_workers) == (16, 4)
    assert config.figures.dpi == 200


# ---- errors ----------------------------------------------------------------------------------------------


def _set(path: str, value: object) -> Callable[[dict], None]:
    """A change to the config at dotted ``path``."""

    def change(config: dict) -> None:
        *parents, last = path.split(".")
        for part in parents:
            config = config[part]
        config[last] = value

    return change


BAD_VALUES = [
    # (key to set, value, dotted key the message must name, what it must say)
    ("nih.lables", ["Mass"], "nih.lables", "unknown key; allowed here: ['archive_urls'"),
    ("seeed", 1, "seeed", "unknown key"),
    ("classifier.epochs", "ten", "classifier.epochs", "valid integer"),
    ("finetune.amp", "maybe", "finetune.amp", "valid boolean"),
    ("seg_data.box_margin", 0.9, "seg_data.box_margin", "less than or equal to 0.5"),
    ("nih.val_fraction", 1.0, "nih.val_fraction", "less than 1"),
    ("segment.shards", 0, "segment.shards", "greater than or equal to 1"),
    ("evaluate.n_boot", 0, "evaluate.n_boot", "greater than or equal to 1"),
    (
        "nih.labels",
        ["Mass", "Nodle"],
        "nih.labels",
        "['Nodle'] not among NIH's findings; allowed: ['Atelectasis'",
    ),
    ("resources.generate_masks.gpus", 1, "resources.generate_masks.gpus", "unknown key"),
    ("loose.units", "mm", "loose.units", "'px1024' or 'fraction'"),
    ("device", "gpu", "device", "should match pattern"),
    ("compare.pairs", [["original", "cropped"]], "compare.pairs.0.1", "'chexmask-tight' or 'chexmask-loose'"),
    ("classifier.masks", ["original", "cropped"], "classifier.masks.1", "'tight', 'loose', 'chexmask-tight'"),
    ("compare.pairs", [["loose", "loose"]], "compare.pairs", "compares a condition with itself"),
    ("classifier.seeds", [0, 0], "classifier.seeds", "listed twice"),
    ("segmenter.encoder", {"depth": 2, "widht": 3}, "segmenter.encoder.widht", "unknown key"),
    ("test_sets", {"x": {"collection": "padchest", "images": "i"}}, "test_sets.x.table", "required key"),
    (
        "test_sets",
        {"x": {"collection": "padchest", "table": "t", "images": "i", "colour": 1}},
        "test_sets.x.colour",
        "unknown key; allowed here: ['collection', 'images'",
    ),
    (
        "training_set",
        {"collection": "padchest", "table": "t", "images": "i", "colour": 1},
        "training_set.colour",
        "unknown key; allowed here: ['collection', 'images'",
    ),
]


@pytest.mark.parametrize(("key", "value", "dotted", "what"), [pytest.param(*c, id=c[2]) for c in BAD_VALUES])
def test_a_bad_value_names_its_dotted_key(
    full: dict, key: str, value: object, dotted: str, what: str
) -> None:
    _set(key, value)(full)
    with pytest.raises(ConfigError) as info:
        load_config(full)
    message = str(info.value)
    assert f"  - {dotted}: " in message
    assert what in message
    assert "(1 problem)" in message
    assert "config/schema.yaml" in message


CROSS_FIELD = [
    # a valid value each, contradicting another key
    (
        {"classifier": {"masks": ["original", "loose"]}, "compare": {"pairs": [["original", "tight"]]}},
        "compare.pairs: [original, tight] names 'tight'",
    ),
    (
        {"classifier": {"masks": ["original", "tight", "chexmask-tight"]}},
        "classifier.masks: ['chexmask-tight'] cut CheXmask's lungs, so nih.chexmask must name",
    ),
    (
        {
            "classifier": {"masks": ["original", "chexmask-loose"]},
            "training_set": {"collection": "padchest", "table": "t.csv", "images": "i"},
        },
        "classifier.masks: ['chexmask-loose'] cut CheXmask's lungs of NIH's images, which a training_set",
    ),
    ({"segmenter": {"arch": "litemedsam", "checkpoint": "bundled"}}, "LiteMedSAM takes 256, not 1024"),
    (
        {"segmenter": {"arch": "litemedsam", "image_size": 256, "encoder": {"depth": 2}}},
        "TinyViT has a fixed shape",
    ),
    (
        {"data": {"source": "demo"}, "nih": {"labels": ["Mass"]}},
        "demo.shortcut_label: 'Pneumonia' is not among",
    ),
    ({"saliency": {"label": "Hernia"}}, "saliency.label: 'Hernia' is not among nih.labels"),
]


@pytest.mark.parametrize(("change", "what"), CROSS_FIELD, ids=[c[1][:30] for c in CROSS_FIELD])
def test_keys_that_contradict_each_other_are_one_error(full: dict, change: dict, what: str) -> None:
    update_config(full, change)
    with pytest.raises(ConfigError, match=r"\(1 problem\)") as info:
        load_config(full)
    assert what in str(info.value)


def test_the_default_resources_need_every_key(full: dict) -> None:
    _set("resources.default", {"threads": 1})(full)
    with pytest.raises(ConfigError, match=r"resources.default: \['gpu', 'mem_mb', 'runtime'\] missing"):
        load_config(full)


def test_every_problem_is_listed_at_once(full: dict) -> None:
    _set("nih.lables", ["Mass"])(full)
    _set("classifier.epochs", -1)(full)
    _set("seed", -3)(full)
    with pytest.raises(ConfigError, match=r"\(3 problems\)") as info:
        load_config(full)
    message = str(info.value)
    assert "nih.lables: unknown key" in message
    assert "classifier.epochs: Input should be greater than or equal to 1 (got -1)" in message
    assert "seed: Input should be greater than or equal to 0 (got -3)" in message


def test_labels_are_checked_against_nihs_vocabulary(full: dict) -> None:
    _set("nih.labels", list(NIH_LABELS))(full)
    assert load_config(full).nih.labels == list(NIH_LABELS)


def test_a_section_parses_alone_with_its_name_in_errors() -> None:
    assert parse(FinetuneSettings, {"mode": "decoder"}).mode == "decoder"
    with pytest.raises(ConfigError, match=r"finetune\.learning_rate: unknown key"):
        parse(FinetuneSettings, {"learning_rate": 1e-4}, where="finetune")


def test_training_settings_leave_out_the_grid() -> None:
    classifier = ClassifierSettings(backbones=["resnet18"], seeds=[1, 2])
    assert classifier.train == TrainSettings()
    assert "backbones" not in classifier.train.model_dump()


def test_segmenter_spec_is_built_from_the_preset_and_overrides() -> None:
    spec = SegmenterSettings(encoder={"depth": 2, "global_attn_indexes": [1]}).spec
    assert spec == {
        "arch": "vit_b",
        "image_size": 1024,
        "embed_dim": 768,
        "depth": 2,
        "num_heads": 12,
        "global_attn_indexes": [1],
    }
    assert SegmenterSettings(arch="litemedsam", image_size=256).spec == {
        "arch": "litemedsam",
        "image_size": 256,
    }


def test_snakemake_stops_before_any_job_on_a_bad_value(tmp_path: Path) -> None:
    """The Snakefile validates the merged config: each bad case fails the dry run with one message, no job.

    A correct overlay is dry-run alongside, so the check cannot pass because Snakemake never got as far as
    the config.
    """
    results = tmp_path / "results"
    cases = {
        "good": {"results": str(results)},
        "typo": {"results": str(results), "nih": {"lables": ["Mass"]}},
        "n_boot": {"results": str(results), "evaluate": {"n_boot": 0}},
        "pairs": {"results": str(results), "compare": {"pairs": [["original", "cropped"]]}},
    }
    runs = {}
    for name, values in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        runs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snakemake",
                "-n",
                "--directory",
                str(tmp_path),
                "--snakefile",
                str(REPO / "Snakefile"),
                "--configfile",
                str(REPO / "config" / "config.yaml"),
                str(path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    outputs = {name: process.communicate(timeout=300)[0] for name, process in runs.items()}
    codes = {name: process.returncode for name, process in runs.items()}

    assert codes["good"] == 0, outputs["good"]
    assert "This was a dry-run" in outputs["good"]
    assert "train_classifier" in outputs["good"]
    expected = {
        "typo": "nih.lables: unknown key",
        "n_boot": "evaluate.n_boot: Input should be greater than or equal to 1",
        "pairs": "compare.pairs.0.1: Input should be 'original', 'tight', 'loose', 'chexmask-tight' or",
    }
    for name, what in expected.items():
        output = outputs[name]
        assert codes[name] != 0
        assert "invalid configuration (1 problem)" in output
        assert what in output
        assert "Job stats" not in output and "rule " not in output
    assert not results.exists()


# ---- every bound, by value -------------------------------------------------------------------------------

URLS = [f"https://example.org/images_{i:03d}.tar.gz" for i in range(1, 14)]
FRACTION = ([0.001, 0.5, 0.999], [0.0, 1.0, -0.1])
SHARE = ([0.0, 1.0], [-0.01, 1.01])
POSITIVE = ([1e-9, 3.0], [0.0, -1.0])
NON_NEGATIVE = ([0, 2.5], [-1e-9, -1])
AT_LEAST_ONE = ([1, 7], [0, -1])
COUNT = ([0, 7], [-1])
TEXT = (["x"], [""])
METADATA = ("Data_Entry_2017_v2020.csv", "train_val_list.txt", "test_list.txt")

# (settings class, field, values it must accept, values it must refuse): each bound written out here, so a
# bound dropped from the model (and from a regenerated schema) fails below by value.
BOUNDS = [
    (cfg.DemoSettings, "seed", *COUNT),
    (cfg.DemoSettings, "n_seg_images", [4], [3]),
    (cfg.DemoSettings, "n_patients", [4], [3]),
    (cfg.DemoSettings, "max_images_per_patient", [1, 500], [0, 501]),
    (cfg.DemoSettings, "nih_size", [64], [63]),
    (cfg.DemoSettings, "seg_size", [64], [63]),
    (cfg.DemoSettings, "shortcut_rate_train", *SHARE),
    (cfg.DemoSettings, "shortcut_rate_other", *SHARE),
    (cfg.DemoSettings, "shortcut_rate_test", [None, *SHARE[0]], SHARE[1]),
    (cfg.DemoSettings, "test_fraction", *FRACTION),
    (cfg.DemoSettings, "n_external", *COUNT),
    (cfg.DownloadSettings, "retries", *COUNT),
    (cfg.DownloadSettings, "timeout", *POSITIVE),
    (cfg.DownloadSettings, "backoff", *NON_NEGATIVE),
    (cfg.NihSettings, "archives", [[1], [12], [1, 2]], [[0], [13], []]),
    (cfg.NihSettings, "archive_urls", [URLS[:12]], [URLS[:11], URLS, [*URLS[:11], ""]]),
    (
        cfg.NihSettings,
        "metadata_urls",
        [dict.fromkeys(METADATA, "x")],
        [{**dict.fromkeys(METADATA, "x"), "test_list.txt": ""}],
    ),
    (cfg.NihSettings, "labels", [["Mass"]], [[]]),
    (cfg.NihSettings, "no_finding", [None, 0], [-1]),
    (cfg.NihSettings, "views", [["PA"]], [[]]),
    (cfg.NihSettings, "val_fraction", *FRACTION),
    (cfg.NihSettings, "chexmask", [None, "x"], [""]),
    (cfg.NihSettings, "expert_labels", [None, "x"], [""]),
    (cfg.NihSettings, "chexmask_min_rca", *SHARE),
    (cfg.SegDataSettings, "url", *TEXT),
    (cfg.SegDataSettings, "masks", [["{id}.png"]], [[]]),
    (cfg.SegDataSettings, "val_fraction", *FRACTION),
    (cfg.SegDataSettings, "test_fraction", *FRACTION),
    (cfg.SegDataSettings, "box_margin", [0.0, 0.5], [-0.01, 0.51]),
    (cfg.EncoderOverrides, "embed_dim", [None, 8], [7]),
    (cfg.EncoderOverrides, "depth", [None, 1], [0]),
    (cfg.EncoderOverrides, "num_heads", [None, 1], [0]),
    (cfg.EncoderOverrides, "global_attn_indexes", [None, [0, 3]], [[-1]]),
    (cfg.SegmenterSettings, "checkpoint", [None, "x"], [""]),
    (cfg.SegmenterSettings, "image_size", [64, 1024], [48, 1000]),
    (cfg.HeadSettings, "epochs", *AT_LEAST_ONE),
    (cfg.HeadSettings, "lr", *POSITIVE),
    (cfg.HeadSettings, "weight_decay", *NON_NEGATIVE),
    (cfg.HeadSettings, "batch_size", *AT_LEAST_ONE),
    (cfg.FinetuneSettings, "epochs", *COUNT),
    (cfg.FinetuneSettings, "batch_size", *AT_LEAST_ONE),
    (cfg.FinetuneSettings, "lr", *POSITIVE),
    (cfg.FinetuneSettings, "weight_decay", *NON_NEGATIVE),
    (cfg.FinetuneSettings, "box_jitter", *NON_NEGATIVE),
    (cfg.FinetuneSettings, "patience", *COUNT),
    (cfg.FinetuneSettings, "inward_jitter", *NON_NEGATIVE),
    (cfg.FinetuneSettings, "prior_share", *SHARE),
    (cfg.FinetuneSettings, "refine_steps", *COUNT),
    (cfg.FinetuneSettings, "refine_margin", [0.0, 0.2], [-0.01, 0.21]),
    (cfg.FinetuneSettings, "head_fusion", [0.0, 4.0], [-0.01, 4.01]),
    (cfg.FinetuneSettings, "opacity_copies", [0, 8], [-1, 9]),
    (cfg.FinetuneSettings, "qc_bad_dice", *FRACTION),
    (cfg.InferenceSettings, "batch_size", *AT_LEAST_ONE),
    (cfg.InferenceSettings, "num_workers", *COUNT),
    (cfg.InferenceSettings, "keep_components", *COUNT),
    (cfg.InferenceSettings, "min_lung_fraction", *SHARE),
    (cfg.InferenceSettings, "max_empty_fraction", *SHARE),
    (cfg.SegmentSettings, "shards", *AT_LEAST_ONE),
    (cfg.LooseSettings, "radius", *NON_NEGATIVE),
    (cfg.TrainSettings, "image_size", [32], [31]),
    (cfg.TrainSettings, "epochs", *AT_LEAST_ONE),
    (cfg.TrainSettings, "batch_size", *AT_LEAST_ONE),
    (cfg.TrainSettings, "lr", *POSITIVE),
    (cfg.TrainSettings, "weight_decay", *NON_NEGATIVE),
    (cfg.TrainSettings, "patience", *COUNT),
    (cfg.ClassifierSettings, "backbones", [["resnet18"]], [[]]),
    (cfg.ClassifierSettings, "masks", [["tight"]], [[]]),
    (cfg.ClassifierSettings, "seeds", [[0], [3, 1]], [[-1], []]),
    (cfg.EvaluateSettings, "n_boot", *AT_LEAST_ONE),
    (cfg.EvaluateSettings, "alpha", *FRACTION),
    (cfg.ClaimsSettings, "margin", *FRACTION),
    (cfg.SaliencySettings, "examples", *COUNT),
    (cfg.FigureSettings, "dpi", [10, 2400], [9, 2401]),
    (cfg.FigureSettings, "font_size", *POSITIVE),
    (cfg.FigureSettings, "width", *POSITIVE),
    (cfg.FigureSettings, "gallery", *AT_LEAST_ONE),
    (cfg.MlflowSettings, "experiment", *TEXT),
    (cfg.RuleResources, "threads", [None, 1], [0]),
    (cfg.RuleResources, "mem_mb", [None, 100], [99]),
    (cfg.RuleResources, "runtime", [None, 1], [0]),
    (cfg.RuleResources, "gpu", [None, 0], [-1]),
    (cfg.Config, "results", *TEXT),
    (cfg.Config, "resources_dir", *TEXT),
    (cfg.Config, "seed", *COUNT),
    (cfg.ExternalSetSettings, "views", [["PA"]], [[]]),
    (cfg.ExternalSetSettings, "min_readers", [1], [0]),
    (cfg.ExternalSetSettings, "max_missing", [0.0, 1.0], [-0.01, 1.01]),
    (cfg.TrainingSetSettings, "test_fraction", *FRACTION),
]
# Keys a model needs before any one bound can be tried on it.
REQUIRED = {
    cfg.ExternalSetSettings: {"collection": "vindr", "table": "train.csv", "images": "png"},
    cfg.TrainingSetSettings: {"collection": "padchest", "table": "t.csv", "images": "png"},
}
BOUND_KINDS = (
    annotated_types.Ge,
    annotated_types.Gt,
    annotated_types.Le,
    annotated_types.Lt,
    annotated_types.MultipleOf,
    annotated_types.MinLen,
    annotated_types.MaxLen,
)


def _bounded(annotation: object, metadata: list) -> bool:
    """Whether a field, or any item type inside it (a list's, a mapping's), carries a bound."""
    if any(isinstance(m, BOUND_KINDS) for m in metadata):
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        nested = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return _bounded(inner, nested)
    return any(_bounded(arg, []) for arg in typing.get_args(annotation))


@pytest.mark.parametrize(
    ("model", "name", "accepted", "refused"), BOUNDS, ids=[f"{m.__name__}.{n}" for m, n, *_ in BOUNDS]
)
def test_each_bound_accepts_its_edge_and_refuses_what_lies_past_it(model, name, accepted, refused) -> None:
    for value in accepted:
        assert getattr(model(**{**REQUIRED.get(model, {}), name: value}), name) == value
    for value in refused:
        with pytest.raises(ValidationError, match=name):
            model(**{**REQUIRED.get(model, {}), name: value})


def test_the_table_of_bounds_lists_every_bounded_field_of_the_model() -> None:
    """A bound added to the model needs its row above, so every bound is tested by value."""
    bounded = {
        (model.__name__, name)
        for model in vars(cfg).values()
        if isinstance(model, type) and issubclass(model, cfg.Section)
        for name, field in model.model_fields.items()
        if name in model.__annotations__ and _bounded(field.annotation, field.metadata)
    }
    assert bounded == {(model.__name__, name) for model, name, *_ in BOUNDS}


def test_each_kind_of_problem_reads_as_one_exact_line() -> None:
    """A type error shows the value given; a rule on a whole section speaks for itself; a rule on a key is
    prefixed by its key; an unknown key lists its section's keys."""

    def problems(model, values, where=""):
        with pytest.raises(ConfigError) as info:
            parse(model, values, where)
        return [line[4:] for line in str(info.value).splitlines() if line.startswith("  - ")]

    assert problems(cfg.LooseSettings, {"radius": "wide"}) == [
        "radius: Input should be a valid number, unable to parse string as a number (got 'wide')"
    ]
    assert problems(cfg.SegmenterSettings, {"arch": "litemedsam", "image_size": 1024}) == [
        "image_size: LiteMedSAM takes 256, not 1024"
    ]
    assert problems(cfg.CompareSettings, {"pairs": [["tight", "tight"]]}) == [
        "pairs: [tight, tight] compares a condition with itself"
    ]
    assert problems(cfg.LooseSettings, {"radius": 4, "unit": "px"}) == [
        "unit: unknown key; allowed here: ['radius', 'units']"
    ]
    assert problems(cfg.Config, {"loose": {"radiuss": 4}}) == [
        "loose.radiuss: unknown key; allowed here: ['radius', 'units']"
    ]
    assert problems(cfg.LooseSettings, {"radius": -1}, where="loose") == [
        "loose.radius: Input should be greater than or equal to 0 (got -1)"
    ]
    assert problems(cfg.FigureSettings, {"dpi": 0}) == [
        "dpi: Input should be greater than or equal to 10 (got 0)"
    ]


GRIDS = [
    # classifier.masks -> the pairs compared when compare.pairs is left null
    (["original", "tight", "loose"], [("original", "tight"), ("original", "loose"), ("tight", "loose")]),
    (["loose", "original"], [("original", "loose")]),
    (["original", "chexmask-tight", "tight"], [("original", "tight"), ("tight", "chexmask-tight")]),
    (["original", "loose", "chexmask-tight"], [("original", "loose")]),
    (["tight"], []),
]


@pytest.mark.parametrize(("masks", "pairs"), GRIDS, ids=["+".join(g[0]) for g in GRIDS])
def test_the_pairs_left_null_follow_the_conditions_trained(full: dict, masks: list, pairs: list) -> None:
    """Study pairs in the study's order, then each extent against CheXmask's where both are trained; a
    grid without a condition compares nothing with it (it used to fail on the default's loose pairs)."""
    _set("classifier.masks", masks)(full)
    _set("nih.chexmask", "ChestX-Ray8.csv")(full)
    assert full["compare"]["pairs"] is None
    assert load_config(full).compare.pairs == pairs


def test_pairs_given_are_kept_as_given(full: dict) -> None:
    _set("classifier.masks", ["original", "tight", "chexmask-tight"])(full)
    _set("nih.chexmask", "ChestX-Ray8.csv")(full)
    _set("compare.pairs", [["chexmask-tight", "original"]])(full)
    assert load_config(full).compare.pairs == [("chexmask-tight", "original")]
