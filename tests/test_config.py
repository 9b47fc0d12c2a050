"""cxrmask.config + config/schema.yaml: the shipped configs validate, a bad key is one clear error."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from cxrmask.config import load_schema, validate_config
from cxrmask.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "config" / "schema.yaml")


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


def test_full_config_validates(full: dict) -> None:
    validate_config(full, SCHEMA)
    assert full["data"]["source"] == "nih"


def test_demo_config_merged_over_the_full_one_validates() -> None:
    demo = _merged(REPO / "config" / "demo.yaml")
    validate_config(demo, SCHEMA)
    # The merge is deep: the demo overrides some keys of a section and inherits the rest.
    assert demo["data"] == {"source": "demo", "on_bad_image": "fail"}
    assert demo["classifier"]["masks"] == ["original", "tight", "loose"]
    assert demo["segmenter"]["arch"] == "litemedsam"


def test_test_overlay_merged_over_the_demo_validates() -> None:
    validate_config(_merged(REPO / "config" / "demo.yaml", REPO / "tests" / "configs" / "tiny.yaml"), SCHEMA)


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
    ("nih.lables", ["Mass"], "nih.lables", "unknown key"),
    ("seeed", 1, "seeed", "unknown key"),
    ("classifier.epochs", "ten", "classifier.epochs", "not of type 'integer'"),
    ("finetune.amp", "yes", "finetune.amp", "not of type 'boolean'"),
    ("seg_data.box_margin", 0.9, "seg_data.box_margin", "greater than the maximum of 0.5"),
    ("nih.val_fraction", 1.0, "nih.val_fraction", "greater than or equal to the maximum"),
    ("segment.shards", 0, "segment.shards", "less than the minimum of 1"),
    ("nih.labels", ["Mass", "Nodle"], "nih.labels.1", "'Nodle' is not one of"),
    ("resources.train_clasifier", {"threads": 2}, "resources.train_clasifier", "unknown key"),
    ("resources.generate_masks.gpus", 1, "resources.generate_masks.gpus", "unknown key"),
    ("loose.units", "mm", "loose.units", "'mm' is not one of"),
    ("device", "gpu", "device", "does not match"),
]


@pytest.mark.parametrize(
    ("key", "value", "dotted", "what"), [pytest.param(*case, id=case[2]) for case in BAD_VALUES]
)
def test_a_bad_value_names_its_dotted_key(
    full: dict, key: str, value: object, dotted: str, what: str
) -> None:
    _set(key, value)(full)
    with pytest.raises(ConfigError) as info:
        validate_config(full, SCHEMA)
    message = str(info.value)
    assert f"  - {dotted}: " in message
    assert what in message
    assert "(1 problem)" in message
    assert "config/schema.yaml" in message


def test_every_problem_is_listed_at_once(full: dict) -> None:
    _set("nih.lables", ["Mass"])(full)
    _set("classifier.epochs", -1)(full)
    del full["seed"]
    with pytest.raises(ConfigError, match=r"\(3 problems\)") as info:
        validate_config(full, SCHEMA)
    message = str(info.value)
    assert "nih.lables: unknown key" in message
    assert "classifier.epochs: -1 is less than the minimum" in message
    assert "(top level): 'seed' is a required property" in message


def test_unknown_key_message_lists_what_is_allowed(full: dict) -> None:
    _set("nih.lables", ["Mass"])(full)
    with pytest.raises(ConfigError, match=r"allowed here: \[.*'labels'.*\]"):
        validate_config(full, SCHEMA)


def test_a_typo_in_the_demo_overlay_is_caught_too(tmp_path: Path) -> None:
    overlay = tmp_path / "typo.yaml"
    overlay.write_text("classifier:\n  backbone: [resnet18]\n")
    config = _merged(REPO / "config" / "demo.yaml", overlay)
    with pytest.raises(ConfigError, match=r"classifier\.backbone: unknown key"):
        validate_config(config, SCHEMA)


def test_snakemake_stops_before_any_job_on_a_typo(tmp_path: Path) -> None:
    """The Snakefile validates the merged config: a typo fails the dry run with the message, no job planned.

    A correct overlay is dry-run alongside, so the check cannot pass because Snakemake never got as far as
    the config.
    """
    results = tmp_path / "results"
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"results": str(results)}))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"results": str(results), "nih": {"lables": ["Mass"]}}))
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, path in (("good", good), ("bad", bad))
    }
    outputs = {name: process.communicate(timeout=120)[0] for name, process in runs.items()}
    codes = {name: process.returncode for name, process in runs.items()}

    assert codes["good"] == 0, outputs["good"]
    assert "This was a dry-run" in outputs["good"]
    assert "train_classifier" in outputs["good"]

    bad_output = outputs["bad"]
    assert codes["bad"] != 0
    assert "invalid configuration (1 problem)" in bad_output
    assert "nih.lables: unknown key" in bad_output
    assert "Job stats" not in bad_output and "rule " not in bad_output
    assert "This was a dry-run" not in bad_output
    assert not results.exists()
