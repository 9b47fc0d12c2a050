"""What code a rule runs, to the top-level definition: the digest that reruns a rule when its code changes.

Snakemake's own code trigger sees a rule's script, and every rule runs the
same adapter, so each rule carries a ``code`` param: :func:`code_version`.
It is a digest of the *definitions* the rule's stage function can reach,
not of whole modules:

- a top-level statement (a function, a class, an assignment, one imported
  name) is a unit; the stage function's unit is the start, and a unit
  reaches the units of its module whose names it loads and, through
  ``import`` in any of its forms (absolute, relative, inside a function,
  a whole module or one name from it), the units of other ``cxrmask``
  modules;
- a statement that binds no name runs whenever its module is imported, so
  it joins every rule that reaches its module; ``if __name__ ==
  "__main__":`` blocks never run on import and join none;
- each unit is digested from its syntax tree without docstrings and without
  the ``description=`` of pydantic ``Field``\\ s (documentation of the
  config model, which reaches users through ``config/schema.yaml``, never a
  stage), so comments, docstrings, help texts and formatting change nothing.

So adding a config key to one section changes the code of the rules that
take that section (and Snakemake's params trigger sees its default), while a
new helper or an edited one reruns only the rules that call it.

:data:`UNTRACED` modules decide *how* a file reaches disk or where a message
goes (temporary names and renames, umask, SIGTERM, log formatting), never
what a result is: an edit there reruns nothing. A change to them that does
change output bytes is a case for ``--forcerun`` (README, *What reruns*).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = "cxrmask"
UNTRACED = frozenset({"cxrmask.atomic", "cxrmask.logs"})
"""Modules whose edits rerun nothing: how outputs are written and logged, not what they hold."""
DOCUMENTATION_KEYWORDS = frozenset({"description"})
"""Keyword arguments of ``Field(...)`` that document a key and change no value."""

Target = tuple[str, str | None]
"""(module, top-level name), or (module, None) for the whole module."""
IMPORTED = ""
"""The name of a target that asks only for what a module runs on import (a package above a module)."""


@dataclass(frozen=True)
class Unit:
    """One top-level statement of a module, as far as rerunning is concerned."""

    names: frozenset[str]
    """Top-level names it binds (empty: it runs on import and binds nothing)."""
    digest: str
    uses: frozenset[str]
    """Names it loads (those bound at the module's top level are its local dependencies)."""
    imports: frozenset[Target]
    """The ``cxrmask`` definitions its import statements reach."""
    attributes: dict[str, frozenset[str]]
    """Names it uses only as ``name.attribute``, and those attributes (a module alias's precise uses)."""


@dataclass(frozen=True)
class ParsedModule:
    name: str
    units: tuple[Unit, ...]

    @functools.cached_property
    def binders(self) -> dict[str, list[int]]:
        """Top-level name -> the units that bind it."""
        table: dict[str, list[int]] = {}
        for index, unit in enumerate(self.units):
            for name in unit.names:
                table.setdefault(name, []).append(index)
        return table

    @functools.cached_property
    def module_aliases(self) -> dict[str, str]:
        """Top-level names bound to a whole ``cxrmask`` module (``from cxrmask import figures``)."""
        aliases = {}
        for unit in self.units:
            targets = list(unit.imports)
            if len(unit.names) == 1 and len(targets) == 1 and targets[0][1] is None:
                (name,) = unit.names
                if "." not in targets[0][0] or name != targets[0][0].split(".")[0]:
                    aliases[name] = targets[0][0]
        return aliases

    @property
    def on_import(self) -> list[int]:
        """The units that run on import and bind nothing."""
        return [index for index, unit in enumerate(self.units) if not unit.names]


def module_file(name: str, package: Path = PACKAGE_DIR) -> Path | None:
    """The source file of ``cxrmask`` module ``name`` (None outside the package or where none exists)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str | None:
    """The absolute module an ``ImportFrom`` names, relative levels resolved against ``module``."""
    if node.level == 0:
        return node.module
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    if node.level - 1 > len(base) - 1:
        return None
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _import_targets(module: str, node: ast.AST, is_package: bool, package: Path) -> Iterator[Target]:
    """The ``cxrmask`` targets of one import statement."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
    elif isinstance(node, ast.ImportFrom):
        source = _absolute(module, node, is_package)
        if source is None:
            return
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if module_file(submodule, package) is not None:
                yield submodule, None
            elif alias.name == "*":
                yield source, None
            else:
                yield source, alias.name


def _is_main_block(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":``, which never runs when the module is imported."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _bound_names(node: ast.stmt) -> set[str]:
    """Top-level names a statement binds (into compound statements, not into functions or classes)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"}
    names: set[str] = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            names |= _bound_names(child)
        else:
            names |= {
                n.id for n in ast.walk(child) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
    return names


def _undocumented(node: ast.stmt) -> ast.stmt:
    """The statement without docstrings and without ``Field(description=...)``: what runs."""
    for item in ast.walk(node):
        body = getattr(item, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            item.body = body[1:] or [ast.Pass()]
        if isinstance(item, ast.Call) and _called_name(item) == "Field":
            item.keywords = [k for k in item.keywords if k.arg not in DOCUMENTATION_KEYWORDS]
    # an attribute docstring (a string right after an assignment) documents, like any other
    if isinstance(node, ast.ClassDef):
        node.body = [s for s in node.body if not _is_string_statement(s)] or [ast.Pass()]
    return node


def _is_string_statement(node: ast.stmt) -> bool:
    value = getattr(node, "value", None)
    return isinstance(node, ast.Expr) and isinstance(value, ast.Constant) and isinstance(value.value, str)


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _statements(tree: ast.Module) -> Iterator[ast.stmt]:
    """Top-level statements that matter: no docstrings, no ``__future__``, no ``__main__`` block;
    an import of several names split into one statement per name, so each name is a unit of its own."""
    for node in tree.body:
        if _is_string_statement(node) or _is_main_block(node):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.Import | ast.ImportFrom) and len(node.names) > 1:
            for alias in node.names:
                if isinstance(node, ast.ImportFrom):
                    single: ast.stmt = ast.ImportFrom(node.module, [alias], node.level)
                else:
                    single = ast.Import([alias])
                yield ast.copy_location(single, node)
        else:
            yield node


def parse_module(name: str, path: Path, package: Path = PACKAGE_DIR) -> ParsedModule:
    """Module ``name`` (source ``path``) as units; parsed once per version of the file."""
    stat = path.stat()
    return _parse(name, path, package, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _parse(name: str, path: Path, package: Path, mtime_ns: int, size: int) -> ParsedModule:
    is_package = path.name == "__init__.py"
    units = []
    for node in _statements(ast.parse(path.read_text())):
        imports = {
            target
            for item in ast.walk(node)
            for target in _import_targets(name, item, is_package, package)
            if target[0].split(".")[0] == PACKAGE
        }
        node = _undocumented(node)
        loads = [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
        uses = set(loads)
        text = ast.dump(node, annotate_fields=False)
        units.append(
            Unit(
                names=frozenset(_bound_names(node)),
                digest=hashlib.sha256(text.encode()).hexdigest(),
                uses=frozenset(uses),
                imports=frozenset(imports),
                attributes=_attribute_uses(node, loads),
            )
        )
    return ParsedModule(name, tuple(units))


def _attribute_uses(node: ast.stmt, loads: list[str]) -> dict[str, frozenset[str]]:
    """Names every load of which is ``name.attribute``, with those attributes."""
    pairs: dict[str, list[str]] = {}
    for item in ast.walk(node):
        if isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name):
            pairs.setdefault(item.value.id, []).append(item.attr)
    return {
        name: frozenset(attributes)
        for name, attributes in pairs.items()
        if len(attributes) == loads.count(name)
    }


def _packages_of(module: str) -> Iterable[str]:
    """The packages Python imports before ``module`` (``cxrmask.a.b``: ``cxrmask``, ``cxrmask.a``)."""
    parts = module.split(".")
    return (".".join(parts[:i]) for i in range(1, len(parts)))


def reached_units(rule: str, package: Path = PACKAGE_DIR) -> dict[str, set[int]]:
    """Module -> indices of its units that rule ``rule``'s stage function can reach."""
    reached: dict[str, set[int]] = {}
    todo: list[Target] = [(f"{PACKAGE}.stages.{rule}", rule)]
    while todo:
        module, name = todo.pop()
        if module in UNTRACED:
            continue
        path = module_file(module, package)
        if path is None:
            continue
        parsed = parse_module(module, path, package)
        if module not in reached:
            reached[module] = set()
            todo.extend((parent, IMPORTED) for parent in _packages_of(module))
            wanted = set(parsed.on_import)
        else:
            wanted = set()
        if name == IMPORTED:
            pass
        elif name is None:
            wanted |= set(range(len(parsed.units)))
        elif name in parsed.binders:
            wanted |= set(parsed.binders[name])
        elif module_file(f"{module}.{name}", package) is not None:  # a submodule, through its package
            todo.append((f"{module}.{name}", None))
        else:  # a name the module does not bind at its top level: trace all of it rather than miss it
            wanted |= set(range(len(parsed.units)))
        for index in sorted(wanted - reached[module]):
            reached[module].add(index)
            unit = parsed.units[index]
            for used in unit.uses & parsed.binders.keys():
                alias = parsed.module_aliases.get(used)
                if alias is not None and used in unit.attributes:  # figures.roc_curves: that one definition
                    todo.extend((alias, attribute) for attribute in unit.attributes[used])
                else:
                    todo.append((module, used))
            todo.extend(unit.imports)
    return reached


def code_modules(rule: str, package: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every ``cxrmask`` module some of whose code rule ``rule``'s stage can reach, by name."""
    return {
        module: path
        for module, indices in sorted(reached_units(rule, package).items())
        if indices and (path := module_file(module, package)) is not None
    }


def code_version(rule: str, package: Path = PACKAGE_DIR) -> str:
    """Digest of the code rule ``rule`` runs: every definition its stage function can reach."""
    digest = hashlib.sha256()
    for module, indices in sorted(reached_units(rule, package).items()):
        parsed = parse_module(module, module_file(module, package), package)
        for unit in sorted((parsed.units[i] for i in indices), key=lambda u: (sorted(u.names), u.digest)):
            digest.update(f"{module}:{','.join(sorted(unit.names))}:{unit.digest}\n".encode())
    return digest.hexdigest()[:16]
