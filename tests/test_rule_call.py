"""Rule X runs cxrmask.stages.X: names agree from rule to stage, settings arrive typed, code edits rerun."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, ResourceList, Wildcards
from snakemake.script import Snakemake
from snakerun import snakemake

from cxrmask import rule_call
from cxrmask.chexmask import read_chexmask
from cxrmask.codetrace import code_version
from cxrmask.config import FinetuneSettings, LooseSettings
from cxrmask.errors import ConfigError, InputError
from cxrmask.imageio import read_mask, write_png
from cxrmask.logs import run_step
from cxrmask.rule_call import (
    check_rule,
    coerce,
    rule_arguments,
    run_rule,
    snakemake_entries,
    stage_parameters,
)
from cxrmask.segment.preprocess import resize_mask

REPO = Path(__file__).resolve().parents[1]


def _rules(workdir: Path) -> list[str]:
    """Every rule the workflow defines, as Snakemake lists them (its .snakemake in ``workdir``)."""
    result = snakemake("--list-rules", workdir=workdir)
    return [line.strip() for line in result.stdout.splitlines() if line.strip() and line.strip() != "all"]


def test_every_rule_has_a_stage_function_of_its_own_name(tmp_path):
    rules = _rules(tmp_path)
    assert len(rules) >= 20
    for rule in rules:
        assert stage_parameters(rule) is not None, f"no cxrmask.stages.{rule}.{rule}"
        assert (REPO / "src" / "cxrmask" / "stages" / f"{rule}.py").is_file()


def test_a_rule_and_a_stage_that_agree_have_no_problems():
    groups = {
        "input": ["tight", "tight_table", "truth"],
        "output": ["masks", "table"],
        "params": ["settings", "code"],
        "wildcards": ["shard"],
    }
    assert check_rule("dilate_masks", groups, code_version("dilate_masks")) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"input": ["tight_mask", "tight_table", "truth"]},
            "gives ['tight_mask'], which stages.dilate_masks",
        ),
        ({"params": []}, "needs ['settings'], which the rule does not name"),
        ({"output": ["masks", "table", "settings"]}, "'settings' names both a output and a params entry"),
    ],
)
def test_a_renamed_entry_is_named_in_the_problem(change, problem):
    groups = {
        "input": ["tight", "tight_table", "truth"],
        "output": ["masks", "table"],
        "params": ["settings"],
    }
    problems = check_rule("dilate_masks", {**groups, **change})
    assert len(problems) >= 1 and any(problem in p for p in problems), problems


def test_a_rule_without_a_stage_and_a_wrong_code_param_are_problems():
    assert "no function `def plot_everything`" in check_rule("plot_everything", {})[0]
    groups = {"input": ["auroc"], "output": ["figure"], "params": ["style"]}
    assert check_rule("plot_auroc_heatmap", groups, code_version("plot_delta_auroc")) == [
        "rule plot_auroc_heatmap: its `code` param is not code_version('plot_auroc_heatmap')"
    ]


def test_a_workflow_whose_rule_and_stage_disagree_stops_before_any_job(tmp_path):
    """A copy of the workflow with one input renamed: the dry run fails in seconds, naming rule and name."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("Snakefile", "config", "workflow", "src"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, copy / name)
    smk = copy / "workflow" / "rules" / "segment.smk"
    smk.write_text(smk.read_text().replace("tight_table=", "shard_table=").replace("input.tight_table", "x"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--snakefile",
            str(copy / "Snakefile"),
            "--directory",
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the workflow does not hold together" in output
    assert "rule dilate_masks: gives ['shard_table']" in output
    assert "needs ['tight_table']" in output
    assert "Job stats" not in output


# ---- the adapter -----------------------------------------------------------------------------------------


def test_settings_arrive_as_their_typed_section():
    settings = coerce("settings", {"mode": "decoder", "epochs": 2}, FinetuneSettings)
    assert isinstance(settings, FinetuneSettings) and settings.epochs == 2 and settings.patience == 8
    with pytest.raises(ConfigError, match=r"settings\.epochs: Input should be greater than or equal to 0"):
        coerce("settings", {"epochs": -1}, FinetuneSettings)


def test_file_lists_stay_lists_or_become_one_optional_path():
    assert coerce("masks", ["a", "b"], list[str], files=True) == ["a", "b"]
    assert coerce("truth", [], str | None, files=True) is None
    assert coerce("truth", ["t"], str | None, files=True) == "t"
    with pytest.raises(InputError, match="truth: one file expected, the rule gives 2"):
        coerce("truth", ["a", "b"], str | None, files=True)
    assert coerce("shard", "3", int) == 3
    assert coerce("source", "http://x", str) == "http://x"
    cells = [{"backbone": "r", "mask": "tight", "seed": 0}]
    assert coerce("cells", cells, list) == cells  # params pass as they are


def test_rule_arguments_follow_the_stage_signature(tmp_path):
    entries = {
        "tight": str(tmp_path / "t"),
        "tight_table": str(tmp_path / "t.csv"),
        "truth": [],
        "masks": str(tmp_path / "l"),
        "table": str(tmp_path / "l.csv"),
        "settings": {"radius": 5, "units": "fraction"},
        "code": "abc",
        "shard": "0",  # a wildcard the stage does not take is left out
    }
    kwargs = rule_arguments(
        "dilate_masks", entries, threads=4, files=["tight", "tight_table", "truth", "masks", "table"]
    )
    assert kwargs["truth"] is None
    assert kwargs["settings"] == LooseSettings(radius=5, units="fraction")
    assert set(kwargs) == {"tight", "tight_table", "truth", "masks", "table", "settings"}


@pytest.fixture
def job_process():
    """run_step sets up the process as a job's (a SIGTERM handler, the root logger's handlers and level);
    put back what the test session had, so no later test logs into this test's files."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_crash_leaves_its_traceback_in_the_log_and_a_user_error_one_line(tmp_path, job_process):
    def crash():
        raise RuntimeError("CUDA out of memory (simulated by the test)")

    def user_error():
        raise InputError("image.png is not a PNG: replace it or set data.on_bad_image: skip")

    log = tmp_path / "crash.log"
    with pytest.raises(RuntimeError):
        run_step(log, crash)
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "CUDA out of memory" in text
    log = tmp_path / "user.log"
    with pytest.raises(SystemExit):
        run_step(log, user_error)
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count("\n") == 1 and "data.on_bad_image: skip" in text


def test_a_stage_signature_says_which_parameters_are_required_read_from_its_source():
    """Positional parameters before the first default are required, those after are not; a kw-only
    parameter is required exactly when it has no default."""
    assert stage_parameters("write_report") == {
        "curation": True,
        "finetune": True,
        "tight": True,
        "loose": True,
        "auroc": True,
        "delong": True,
        "training": True,
        "figures": True,
        "report": True,
        "summary": False,
        "shift": False,
        "masks_by_finding": False,
        "masks_qc": False,
        "auroc_test_sets": False,
        "delong_test_sets": False,
        "shift_test_sets": False,
        "auroc_expert": False,
        "reference_masks": False,
    }
    assert stage_parameters("no_such_rule") is None


def test_kw_only_parameters_are_required_without_a_default(tmp_path, monkeypatch):
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "a_rule.py").write_text("def a_rule(x, y=1, *, z, w=None):\n    pass\n")
    monkeypatch.setattr(
        rule_call, "stage_path", lambda rule, package=tmp_path: package / "stages" / f"{rule}.py"
    )
    assert stage_parameters("a_rule") == {"x": True, "y": False, "z": True, "w": False}


def test_the_problem_of_a_rule_without_a_stage_names_the_file_to_write():
    (problem,) = check_rule("no_such_rule", {"input": [], "output": [], "params": [], "wildcards": []})
    assert problem == "rule no_such_rule: no function `def no_such_rule` in cxrmask/stages/no_such_rule.py"


def test_a_file_entry_becomes_text_and_an_optional_list_of_paths_its_one_path():
    assert coerce("figure", Path("a/b.png"), str, files=True) == "a/b.png"
    assert coerce("shift", ["t.csv"], str | None, files=True) == "t.csv"
    assert coerce("masks", ["a", "b"], list[str] | None, files=True) == ["a", "b"]


def test_threads_reach_a_stage_that_asks_for_them():
    entries = {"labels": "l.csv", "train_val": "tv", "test": "t", "shifted": "s", "images": "i"}
    entries |= {"truth": "m", "seg": "g", "settings": {}, "code": "x"}
    kwargs = rule_arguments("make_demo_data", entries, threads=3, files=set(entries) - {"settings", "code"})
    assert kwargs["threads"] == 3 and "code" not in kwargs and kwargs["labels"] == "l.csv"


def test_a_snakemake_job_object_runs_its_stage_with_its_named_entries_and_logs_there(tmp_path, job_process):
    """The object Snakemake's script directive hands a script, built from Snakemake's own containers."""
    truth = tmp_path / "truth"
    truth.mkdir()
    lungs = np.zeros((20, 20), bool)
    lungs[4:16, 2:8] = lungs[4:16, 12:18] = True
    write_png(truth / "a.png", lungs)
    job = Snakemake(
        InputFiles(fromdict={"truth": str(truth)}),
        OutputFiles(fromdict={"chexmask": str(tmp_path / "ChestX-Ray8.csv")}),
        Params(fromdict={"code": "any"}),
        Wildcards(fromdict={"shard": "0"}),
        1,
        ResourceList(),
        Log(fromdict={"log": str(tmp_path / "job.log")}),
        {},
        "make_demo_reference",
        None,
    )
    entries, files = snakemake_entries(job)
    assert entries == {
        "truth": str(truth),
        "chexmask": str(tmp_path / "ChestX-Ray8.csv"),
        "code": "any",
        "shard": "0",
    }
    assert files == {"truth", "chexmask"}
    run_rule(job)
    assert np.array_equal(read_chexmask(tmp_path / "ChestX-Ray8.csv")["a.png"].lungs(), lungs)
    assert "1 ground-truth lung masks written" in (tmp_path / "job.log").read_text()


def test_a_job_with_a_list_input_a_size_wildcard_threads_and_no_log_runs_its_stage(tmp_path, job_process):
    """cache_masks: its mask folders arrive as a list, its ``size`` wildcard as an int and the job's
    threads as the stage's; without a log the stage still runs (and logs to the job's stderr)."""
    folders = [tmp_path / "shard_0", tmp_path / "shard_1"]
    for index, folder in enumerate(folders):
        folder.mkdir()
        mask = np.zeros((12, 12), bool)
        mask[2:10, index : index + 4] = True
        write_png(folder / f"{index:08d}_000.png", mask)
    index_csv = tmp_path / "index.csv"
    index_csv.write_text("image,ok\n00000000_000.png,True\n00000001_000.png,True\n")
    inputs = InputFiles([str(index_csv), *map(str, folders)])  # named as Snakemake names a rule's input
    inputs._set_name("index", 0)
    inputs._set_name("masks", 1, 3)
    job = Snakemake(
        inputs,
        OutputFiles(fromdict={"cache": str(tmp_path / "masks.npy")}),
        Params(fromdict={"code": "any"}),
        Wildcards(fromdict={"condition": "tight", "size": "6"}),
        2,
        ResourceList(),
        Log(),
        {},
        "cache_masks",
        None,
    )
    entries, files = snakemake_entries(job)
    assert entries["masks"] == [str(f) for f in folders] and type(entries["masks"]) is list
    kwargs = rule_arguments("cache_masks", entries, job.threads, files)
    assert kwargs["size"] == 6 and kwargs["threads"] == 2 and "condition" not in kwargs
    run_rule(job)
    cache = np.load(tmp_path / "masks.npy")
    expected = [resize_mask(read_mask(folder / f"{i:08d}_000.png"), 6) for i, folder in enumerate(folders)]
    assert np.array_equal(cache, np.stack(expected)) and not np.array_equal(*expected)


def test_a_bad_setting_is_named_by_the_parameter_it_arrives_as():
    entries = {"tight": "t", "tight_table": "t.csv", "truth": [], "masks": "l", "table": "l.csv"}
    with pytest.raises(
        ConfigError, match=r"\n  - settings\.radius: Input should be greater than or equal to 0 \(got -3\)"
    ):
        rule_arguments("dilate_masks", entries | {"settings": {"radius": -3}}, threads=1, files=set(entries))
