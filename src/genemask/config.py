"""Config validation against workflow/schemas/config.schema.yaml, with defaults filled in.

Errors are one line naming the config file and the key, e.g.
`config/demo.yaml: genome.sorce: unknown key (allowed: source, fasta, chromosomes, urls, simulate)`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from genemask.errors import UserError

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return {
            **root["$defs"][ref.removeprefix("#/$defs/")],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    return schema


def fill_defaults(config: dict, schema: dict, root: dict | None = None) -> dict:
    """Set every missing key that has a default, recursively; returns a new dict."""
    root = root or schema
    result = copy.deepcopy(config)
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in result and "default" in sub:
            result[key] = copy.deepcopy(sub["default"])
        if isinstance(result.get(key), dict) and "properties" in sub:
            result[key] = fill_defaults(result[key], sub, root)
    return result


def _describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = f"{path}." if error.absolute_path else ""
        return f"{where}{extra[0]}: unknown key (allowed: {allowed})"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{path}: expected {expected}, got {type(error.instance).__name__} {error.instance!r}"
    if error.validator == "enum":
        return f"{path}: {error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return f"{path}: {error.message}"


def validate_config(config: dict[str, Any], source: str, schema: dict | None = None) -> dict[str, Any]:
    """Return `config` with defaults filled in, or raise a one-line UserError naming `source` and the key."""
    schema = schema or load_schema()
    filled = fill_defaults(config or {}, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(filled), key=lambda e: (len(e.absolute_path), list(map(str, e.path)))
    )
    if errors:
        raise UserError(f"{source}: {_describe(errors[0])}")
    _check_consistency(filled, source)
    return filled


def _check_consistency(config: dict[str, Any], source: str) -> None:
    genome = config["genome"]
    if genome["source"] == "fasta" and not genome["fasta"]:
        raise UserError(f"{source}: genome.fasta: required when genome.source is 'fasta'")
    missing = sorted(set(config["pretrain"]["strategies"]) - set(config["masking"]["strategies"]))
    if missing:
        raise UserError(
            f"{source}: pretrain.strategies: {', '.join(missing)} not in masking.strategies (masks are precomputed)"
        )
    if config["masking"]["pmi_vocab"]["max_n"] > config["npmi"]["max_n"]:
        raise UserError(f"{source}: masking.pmi_vocab.max_n: must not exceed npmi.max_n")
    pretrain = config["pretrain"]
    for step in pretrain["export_steps"]:
        if step % pretrain["keep_weights_every"]:
            raise UserError(
                f"{source}: pretrain.export_steps: {step} is not a multiple of pretrain.keep_weights_every"
                f" ({pretrain['keep_weights_every']}), the steps at which a run keeps its weights"
            )
        if step > max(pretrain["steps"]):
            raise UserError(f"{source}: pretrain.export_steps: {step} is beyond every run in pretrain.steps")


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such config file")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise UserError(f"{path}: {where}invalid YAML") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level")
    return validate_config(config, str(path))
