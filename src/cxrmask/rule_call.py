"""Rule ``X`` runs ``cxrmask.stages.X``: one adapter between Snakemake and the stages, and its checks.

Every rule's ``script:`` is ``workflow/scripts/stage.py``, which calls
:func:`run_rule`. The stage function's parameters are named after the rule's
named ``input``, ``output`` and ``params`` entries and its wildcards (plus
``threads`` when it wants it), so one name is greppable from rule to code.
:func:`check_rules` compares every rule with its stage's signature while
Snakemake parses the workflow, reading the stage's source rather than
importing it (no torch at DAG time), so a rename fails in the first second
of ``snakemake -n``, not hours into a GPU job.

:func:`cxrmask.codetrace.code_version`, which each rule passes as its
``code`` param, is what makes library edits rerun what they affect; the
check here makes sure every rule carries its own.
"""

from __future__ import annotations

import ast
import collections.abc
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cxrmask.codetrace import PACKAGE_DIR, code_version
from cxrmask.config import parse
from cxrmask.errors import InputError
from cxrmask.logs import run_step

CODE_PARAM = "code"
"""The param each rule carries for its code version; Snakemake reads it, the stage does not."""
THREADS = "threads"


def stage_path(rule: str, package: Path = PACKAGE_DIR) -> Path:
    """Source file of rule ``rule``'s stage."""
    return package / "stages" / f"{rule}.py"


def stage_parameters(rule: str) -> dict[str, bool] | None:
    """The stage function's parameter names -> required?, read from source (None: no such function)."""
    path = stage_path(rule)
    if not path.is_file():
        return None
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == rule:
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            first_default = len(positional) - len(args.defaults)
            params = {arg.arg: i < first_default for i, arg in enumerate(positional)}
            params.update(
                {
                    arg.arg: default is None
                    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                }
            )
            return params
    return None


def check_rule(rule: str, groups: Mapping[str, Iterable[str]], code: str | None = None) -> list[str]:
    """Problems between a rule and its stage (empty when they agree).

    ``groups`` maps ``input``, ``output``, ``params`` and ``wildcards`` to
    their entry names. Every input, output and param must be a parameter of
    the stage; every required parameter must be one of them, a wildcard or
    ``threads``; no name may appear in two groups; and the ``code`` param,
    when given, must be this rule's own code version.
    """
    params = stage_parameters(rule)
    if params is None:
        return [
            f"rule {rule}: no function `def {rule}` in {stage_path(rule).relative_to(PACKAGE_DIR.parent)}"
        ]
    names = {group: set(entries) - {CODE_PARAM} for group, entries in groups.items()}
    problems = []
    seen: dict[str, str] = {}
    for group, entries in names.items():
        for name in sorted(entries):
            if name in seen:
                problems.append(f"rule {rule}: {name!r} names both a {seen[name]} and a {group} entry")
            seen[name] = group
    given = set().union(*(entries for group, entries in names.items() if group != "wildcards"))
    unknown = sorted(given - set(params))
    if unknown:
        problems.append(f"rule {rule}: gives {unknown}, which stages.{rule}.{rule}() does not take")
    available = set(seen) | {THREADS}
    missing = sorted(name for name, required in params.items() if required and name not in available)
    if missing:
        problems.append(f"rule {rule}: stages.{rule}.{rule}() needs {missing}, which the rule does not name")
    if code is not None and code != code_version(rule):
        problems.append(f"rule {rule}: its `{CODE_PARAM}` param is not code_version({rule!r})")
    return problems


def stage_function(rule: str) -> Callable[..., Any]:
    """``cxrmask.stages.<rule>.<rule>``."""
    return getattr(importlib.import_module(f"cxrmask.stages.{rule}"), rule)


def _accepts_sequence(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_sequence(arg) for arg in typing.get_args(hint))
    return origin in (list, tuple, collections.abc.Sequence)


def _is_model(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)


def coerce(name: str, value: Any, hint: Any, files: bool = False) -> Any:
    """A Snakemake value as the stage's annotation wants it.

    Settings sections become their typed model; file entries (``files``) stay
    lists of paths where a sequence is wanted and collapse to one path (or
    None when empty) where one optional path is; wildcards (strings) become
    ints where ints are wanted. Other params pass as they are.
    """
    if _is_model(hint):
        return parse(hint, value, where=name)
    if files and isinstance(value, list):
        paths = [str(v) for v in value]
        if hint is inspect.Parameter.empty or _accepts_sequence(hint):
            return paths
        if len(paths) > 1:
            raise InputError(f"{name}: one file expected, the rule gives {len(paths)}")
        return paths[0] if paths else None
    if files:
        return str(value)
    if hint is int and isinstance(value, str):
        return int(value)
    return value


def rule_arguments(
    rule: str, entries: Mapping[str, Any], threads: int, files: Iterable[str] = ()
) -> dict[str, Any]:
    """Keyword arguments of ``stages.<rule>.<rule>`` from the rule's named entries (``files``: file ones)."""
    function = stage_function(rule)
    hints = typing.get_type_hints(function)
    parameters = inspect.signature(function).parameters
    files = set(files)
    kwargs = {
        name: coerce(name, value, hints.get(name, inspect.Parameter.empty), name in files)
        for name, value in entries.items()
        if name != CODE_PARAM and name in parameters
    }
    if THREADS in parameters:
        kwargs[THREADS] = threads
    return kwargs


def snakemake_entries(job: Any) -> tuple[dict[str, Any], set[str]]:
    """The named input, output, params and wildcards of a running job, and which of them are files.

    Wildcards the stage does not declare are left out (:func:`rule_arguments`); every other entry is
    a parameter, as :func:`check_rule` ensures when the workflow is parsed.
    """
    entries: dict[str, Any] = {}
    files: set[str] = set()
    for group, are_files in (
        (job.input, True),
        (job.output, True),
        (job.params, False),
        (job.wildcards, False),
    ):
        for name, value in group.items():
            entries[name] = list(value) if are_files and isinstance(value, list) else value
            if are_files:
                files.add(name)
    return entries, files


def run_rule(job: Any) -> Any:
    """Run the stage of the rule Snakemake is executing, logging to the rule's log."""
    rule = job.rule
    log_file = job.log[0] if job.log else None

    def call() -> Any:
        entries, files = snakemake_entries(job)
        return stage_function(rule)(**rule_arguments(rule, entries, job.threads, files))

    return run_step(log_file, call)
