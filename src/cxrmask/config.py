"""Config validation with messages that name the key and the fix.

The Snakefile validates the merged config (``config.yaml`` plus any
``--configfile`` overrides) against ``config/schema.yaml`` before building the
DAG, so a typo or an out-of-range value is one clear error before any job
starts, not a crash an hour into a cluster run. Unknown keys are errors: a
misspelt key silently falling back to its default is the worst kind of
wrong result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from cxrmask.errors import ConfigError

T = TypeVar("T")


def load_schema(path: str | os.PathLike[str]) -> dict:
    """Read the YAML schema."""
    return yaml.safe_load(Path(path).read_text())


def _key(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _describe(error: ValidationError) -> str:
    """One line per problem: the key, what is wrong, what is allowed."""
    key = _key(error)
    prefix = "" if key == "(top level)" else f"{key}."
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(str(name) for name in set(error.instance) - set(error.schema.get("properties", {})))
        names = ", ".join(prefix + name for name in extra)
        return f"{names}: unknown key{'s' if len(extra) > 1 else ''}; allowed here: {allowed}"
    if list(error.schema_path)[-2:-1] == ["propertyNames"]:
        # jsonschema reports a bad property name as the name failing the inner check (enum), at the parent.
        return f"{prefix}{error.instance}: unknown key; allowed here: {error.validator_value}"
    if error.validator == "enum":
        return f"{key}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "required":
        return f"{key}: {error.message}"
    return f"{key}: {error.message}"


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Raise ConfigError listing every problem in ``config``, each with its dotted key."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = "\n".join(f"  - {_describe(error)}" for error in errors)
        raise ConfigError(
            f"invalid configuration ({len(errors)} problem{'s' if len(errors) > 1 else ''}):\n{lines}\n"
            "See config/schema.yaml for every key, its meaning and its allowed values."
        )


def settings_from(cls: type[T], section: str, config: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> T:
    """Build a settings dataclass from one config section; an unknown key is a ConfigError naming it.

    The schema already rejects unknown keys in a workflow run; this keeps the
    library's entry points as strict when called directly.
    """
    config = {key: value for key, value in config.items() if key not in ignore}
    allowed = {field.name for field in fields(cls)}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ConfigError(f"{section}: unknown keys {unknown}; allowed: {sorted(allowed)}.")
    return cls(**config)
