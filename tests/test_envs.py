"""The conda environments (for --use-conda) stay consistent with requirements.txt and with the code.

Conda cannot be installed where the tests run, so these tests check the environment files statically:
every rule names an existing environment; every pin in an environment is the same pin as in
requirements.txt; and every third-party package a rule's script imports (following the cxrmask modules it
imports, transitively) is in that rule's environment.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
SRC = REPO / "src"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        assert version, f"{line!r} is not pinned with =="
        pins[_normalise(name)] = version
    return pins


REQUIREMENTS = _pins((REPO / "requirements.txt").read_text().splitlines())


def _env(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _env_pins(path: Path) -> dict[str, str]:
    pip = next(d["pip"] for d in _env(path)["dependencies"] if isinstance(d, dict) and "pip" in d)
    return _pins(pip)


def _rule_envs() -> dict[str, tuple[Path, Path]]:
    """Rule name -> (its environment file, its script), from the rule files."""
    found = {}
    for smk in RULES:
        text = smk.read_text()
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, re.S | re.M):
            body = match.group(2)
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', body)
            if script:
                assert conda, f"rule {match.group(1)} runs a script but names no conda environment"
                found[match.group(1)] = (
                    (smk.parent / conda.group(1)).resolve(),
                    (smk.parent / script.group(1)).resolve(),
                )
    return found


def _rule_code(rule: str, script: Path) -> list[Path]:
    """What a rule's job imports: its script and, through the adapter, the rule's stage module."""
    return [script, SRC / "cxrmask" / "stages" / f"{rule}.py"]


@cache
def _imports(path: Path) -> frozenset[str]:
    """Top-level names imported by a Python file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return frozenset(names)


def _module_file(module: str) -> Path:
    base = SRC.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


@cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def third_party(path: Path) -> set[str]:
    """Top-level third-party modules imported by ``path`` and, transitively, by its cxrmask imports."""
    seen, todo, modules = set(), [path], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            top = name.split(".")[0]
            if top == "cxrmask":
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    candidate = _module_file(".".join(parts[:i]))
                    if candidate.is_file():
                        todo.append(candidate)
            elif top not in sys.stdlib_module_names:
                modules.add(top)
    return modules


def missing(modules: set[str], pins: dict[str, str]) -> list[str]:
    """Modules no pinned distribution provides (one module may come from several: mlflow, mlflow-skinny)."""
    return sorted(m for m in modules if not {_normalise(d) for d in _distributions().get(m, [m])} & set(pins))


RULE_ENVS = _rule_envs()


def test_every_rule_with_a_script_has_an_environment():
    assert len(RULE_ENVS) >= 15
    for rule, (env, script) in RULE_ENVS.items():
        assert env.is_file(), f"rule {rule}: {env} missing"
        for path in _rule_code(rule, script):
            assert path.is_file(), f"rule {rule}: {path} missing"


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_environment_pins_equal_requirements(env):
    spec = _env(env)
    assert "python=3.11" in spec["dependencies"]
    pins = _env_pins(env)
    assert pins
    for name, version in pins.items():
        assert REQUIREMENTS.get(name) == version, (
            f"{env.name}: {name}=={version} but requirements.txt has {REQUIREMENTS.get(name)}"
        )


def test_every_environment_is_used():
    used = {env for env, _ in RULE_ENVS.values()}
    assert used == {p.resolve() for p in (REPO / "envs").glob("*.yaml")}


@pytest.mark.parametrize("rule", sorted(RULE_ENVS))
def test_rule_environment_has_what_its_script_imports(rule):
    env, script = RULE_ENVS[rule]
    modules = set().union(*(third_party(path) for path in _rule_code(rule, script)))
    absent = missing(modules, _env_pins(env))
    assert not absent, f"rule {rule} imports {absent}, absent from {env.name}"


def test_requirements_cover_the_library():
    modules = set()
    for path in SRC.rglob("*.py"):
        modules |= third_party(path)
    assert not missing(modules, REQUIREMENTS)
