"""What a rule's code version covers: the definitions its stage reaches, in every import form, and no more."""

from __future__ import annotations

import ast
import shutil
import textwrap
from pathlib import Path

import pytest

from cxrmask.codetrace import PACKAGE_DIR, UNTRACED, code_modules, code_version, module_file, parse_module

STAGES = sorted(p.stem for p in (PACKAGE_DIR / "stages").glob("*.py") if p.stem != "__init__")


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of the library to edit."""
    return Path(
        shutil.copytree(PACKAGE_DIR, tmp_path / "cxrmask", ignore=shutil.ignore_patterns("__pycache__"))
    )


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there, once) by ``new`` in ``path``."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new))


def versions(package: Path, rules=STAGES) -> dict[str, str]:
    return {rule: code_version(rule, package) for rule in rules}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {rule for rule in before if before[rule] != after[rule]}


# ---- a small package in every import form the library uses ----------------------------------------------


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "cxrmask"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for folder in [package, *[p for p in package.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    return package


FORMS = {
    "stages/absolute.py": """
        from cxrmask.lib.a import used
        def absolute():
            return used()
    """,
    "stages/relative.py": """
        from ..lib.a import used
        def relative():
            return used()
    """,
    "stages/module_import.py": """
        import cxrmask.lib.a
        def module_import():
            return cxrmask.lib.a.used()
    """,
    "stages/module_alias.py": """
        import cxrmask.lib.a as a
        def module_alias():
            return a.used()
    """,
    "stages/from_package.py": """
        from cxrmask.lib import a
        def from_package():
            return a.used()
    """,
    "stages/lazy.py": """
        def lazy():
            from cxrmask.lib.a import used
            return used()
    """,
    "stages/relative_package.py": """
        from .. import lib
        def relative_package():
            from ..lib import a
            return a.used()
    """,
    "lib/a.py": '''
        """A library module."""
        from cxrmask.lib.b import helper, other
        def used():
            """Docstring."""
            return helper()
        def unused():
            return other()
        if __name__ == "__main__":
            unused()
    ''',
    "lib/b.py": """
        def helper():
            return 1
        def other():
            return 2
    """,
}


@pytest.mark.parametrize("rule", [name.split("/")[1][:-3] for name in FORMS if name.startswith("stages/")])
def test_every_import_form_reaches_the_definitions_it_uses(tmp_path, rule):
    package = write_package(tmp_path, FORMS)
    assert {"cxrmask.lib.a", "cxrmask.lib.b"} <= set(code_modules(rule, package))
    before = code_version(rule, package)
    edit(package / "lib" / "b.py", "return 1", "return 3")
    assert code_version(rule, package) != before, "an edit to a function the stage calls is missed"


@pytest.mark.parametrize("rule", ["absolute", "relative", "lazy"])
def test_definitions_the_stage_cannot_reach_change_nothing(tmp_path, rule):
    package = write_package(tmp_path, FORMS)
    before = code_version(rule, package)
    edit(package / "lib" / "b.py", "return 2", "return 4")  # other(), called only by unused()
    edit(package / "lib" / "a.py", "unused()\n", "used()\n")  # the __main__ block
    (package / "lib" / "b.py").write_text((package / "lib" / "b.py").read_text() + "\ndef new():\n    pass\n")
    edit(package / "lib" / "a.py", '"""Docstring."""', '"""Reworded docstring."""')
    assert code_version(rule, package) == before


def test_a_statement_that_runs_on_import_joins_every_rule_that_imports_its_module(tmp_path):
    package = write_package(tmp_path, FORMS)
    before = code_version("absolute", package)
    path = package / "lib" / "b.py"
    path.write_text(path.read_text() + "\nprint('side effect')\n")
    assert code_version("absolute", package) != before


def test_a_module_alias_reaches_the_attributes_used_and_a_module_passed_as_a_value_all_of_it(tmp_path):
    package = write_package(
        tmp_path,
        {
            **FORMS,
            "stages/module_value.py": """
                import cxrmask.lib.a as a
                def module_value():
                    return getattr(a, "used")()
            """,
        },
    )
    before = {rule: code_version(rule, package) for rule in ("module_alias", "from_package", "module_value")}
    edit(package / "lib" / "b.py", "return 2", "return 4")  # other(), reached only through a.unused
    after = {rule: code_version(rule, package) for rule in before}
    assert after["module_alias"] == before["module_alias"]  # a.used() alone: unused() is not its code
    assert after["from_package"] == before["from_package"]
    assert after["module_value"] != before["module_value"]  # getattr(a, ...) may reach any of it


# ---- the library itself -----------------------------------------------------------------------------------


def _used_imports(rule: str) -> set[str]:
    """The cxrmask modules whose imported names the stage function loads, resolved here independently."""
    tree = ast.parse((PACKAGE_DIR / "stages" / f"{rule}.py").read_text())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == rule)
    loaded = {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    modules = set()
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or node.level:  # stages import absolutely (relative: above)
            continue
        base = node.module or ""
        for alias in node.names:
            if (alias.asname or alias.name) in loaded and base.startswith("cxrmask"):
                whole = f"{base}.{alias.name}"
                modules.add(whole if module_file(whole) is not None else base)
    return modules


@pytest.mark.parametrize("rule", STAGES)
def test_every_module_whose_names_a_stage_function_uses_is_traced_unless_it_only_writes_files(rule):
    """The stage's imports, read independently: a module it calls into is in its code version."""
    used = _used_imports(rule)
    assert used, f"stages.{rule} uses nothing it imports from cxrmask?"
    missing = used - set(code_modules(rule)) - UNTRACED
    assert not missing, f"stages.{rule} uses {sorted(missing)}, which its code version does not cover"


def test_the_untraced_modules_are_those_that_write_and_log(package):
    assert {"cxrmask.atomic", "cxrmask.logs"} == UNTRACED
    before = versions(package)
    edit(package / "atomic.py", "json.dumps(data, indent=2,", "json.dumps(data, indent=1,")
    edit(package / "logs.py", 'mode="w"', 'mode="w", encoding="utf-8"')
    assert changed(before, versions(package)) == set()


def test_a_stage_reaches_the_modules_it_uses_and_no_others():
    masks = set(code_modules("generate_masks"))
    assert {"cxrmask.stages.generate_masks", "cxrmask.segment.postprocess", "cxrmask.config"} <= masks
    assert "cxrmask.classify.train" not in masks
    train = set(code_modules("train_classifier"))
    assert "cxrmask.classify.train" in train and "cxrmask.segment.postprocess" not in train
    # the saliency summary imports one function of cxrmask.saliency, which trains nothing
    assert "cxrmask.classify.train" not in set(code_modules("saliency_table"))


def test_an_edit_to_the_training_loop_changes_the_classifier_rules_only(package):
    before = versions(package)
    edit(package / "classify" / "train.py", "def train_classifier(", "def train_classifier(  # edited\n")
    assert changed(before, versions(package)) == set()  # a comment
    edit(
        package / "classify" / "train.py",
        "torch.Generator().manual_seed(seed)",
        "torch.Generator().manual_seed(seed + 1)",
    )
    assert changed(before, versions(package)) == {"train_classifier"}  # saliency reruns as its downstream


def test_an_edit_to_the_dilation_changes_the_loose_masks_only(package):
    before = versions(package)
    edit(package / "segment" / "postprocess.py", "if radius <= 0 or", "if radius < 0.5 or")
    # NIH's loose masks and every external set's, made by the one dilation
    assert changed(before, versions(package)) == {"dilate_masks", "dilate_test_set_masks"}


def test_an_edit_to_mask_scoring_changes_mask_generation_and_dilation_not_fine_tuning(package):
    before = versions(package)
    postprocess = package / "segment" / "postprocess.py"
    edit(postprocess, "def dice(", "def _dice_unused():\n    return 0\n\n\ndef dice(")
    assert changed(before, versions(package)) == set()  # a new helper nothing calls
    edit(postprocess, "if total == 0:\n        return 1.0", "if not total:\n        return 1.0")
    assert changed(before, versions(package)) == {
        "generate_masks",
        "dilate_masks",
        "generate_test_set_masks",
        "dilate_test_set_masks",
    }


def test_an_edit_to_the_mask_clean_up_reruns_fine_tuning_too(package):
    """Fine-tuning calibrates its QC and scores its epochs on cleaned masks: clean-up is its code too."""
    before = versions(package)
    edit(package / "segment" / "postprocess.py", "keep_components: int = 2", "keep_components: int = 3")
    assert {"finetune_medsam", "generate_masks"} <= changed(before, versions(package))
    assert "train_classifier" not in changed(before, versions(package))


def test_config_help_texts_and_a_new_key_elsewhere_change_no_rule_but_a_section_change_reruns_its_rules(
    package,
):
    config = package / "config.py"
    before = versions(package)
    edit(config, 'description="dots per inch of raster output"', 'description="raster resolution, dpi"')
    edit(config, 'AMP_HELP = "bf16', 'AMP_HELP = "reworded: bf16')
    edit(config, '    """A config section: frozen', '    """Reworded. A config section: frozen')
    assert changed(before, versions(package)) == set()
    edit(
        config,
        "    backoff: float = Field(",
        '    proxy: str | None = Field(None, description="a new key")\n    backoff: float = Field(',
    )
    assert changed(before, versions(package)) == {"download"}
    edit(config, "dpi: int = Field(200, ge=10", "dpi: int = Field(200, ge=20")
    figure_rules = {rule for rule in STAGES if rule.startswith("plot_")}
    assert changed(before, versions(package)) == {"download"} | figure_rules


def test_comments_docstrings_and_formatting_change_no_version(package):
    before = versions(package)
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        edited = text.replace('"""', '"""Reworded. ', 1) + "\n# a closing comment\n"
        path.write_text(edited.replace("\n\n\n", "\n\n\n\n"))
    assert changed(before, versions(package)) == set()


def test_the_shipped_code_version_is_what_the_rules_carry():
    assert code_version("generate_masks") == code_version("generate_masks", PACKAGE_DIR)
    assert len(code_version("generate_masks")) == 16


def test_a_module_is_parsed_into_one_unit_per_imported_name():
    parsed = parse_module("cxrmask.stages.finetune_medsam", PACKAGE_DIR / "stages" / "finetune_medsam.py")
    named = [unit.names for unit in parsed.units]
    assert frozenset({"FinetuneSettings"}) in named and frozenset({"SegmenterSettings"}) in named
    assert all(len(names) <= 1 for names in named)
