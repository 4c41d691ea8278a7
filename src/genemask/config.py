"""Config validation against the schema shipped in the package (schemas/config.schema.yaml), with defaults
filled in.

Errors are one line naming the config file and the key, e.g.
`config/demo.yaml: genome.sorce: unknown key (allowed: source, fasta, chromosomes, urls, simulate)`.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from genemask.errors import UserError
from genemask.options import INT64_MAX, SCHEMA


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
        nearest = difflib.get_close_matches(extra[0], list(error.schema.get("properties", {})), n=1)
        hint = f"; did you mean '{nearest[0]}'?" if nearest else ""
        return f"{where}{extra[0]}: unknown key (allowed: {allowed}){hint}"
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
    _check_finite(filled, source)
    _check_consistency(filled, source)
    return filled


def _check_finite(value: Any, source: str, path: str = "") -> None:
    """No NaN, inf or integer beyond int64 anywhere (JSON-schema's range keywords let NaN through: every comparison with it is false)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{source}: {path or '(top level)'}: expected a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        raise UserError(f"{source}: {path}: expected an integer of at most 2^63-1, got {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, source, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, source, f"{path}[{index}]")


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
    if config["masking"]["pmi_vocab"]["min_n"] > config["masking"]["pmi_vocab"]["max_n"]:
        raise UserError(f"{source}: masking.pmi_vocab.min_n: must not exceed masking.pmi_vocab.max_n")
    if config["npmi"]["k"] > config["npmi"]["max_n"]:
        raise UserError(
            f"{source}: npmi.k: {config['npmi']['k']} exceeds npmi.max_n {config['npmi']['max_n']} "
            "(the ranking needs counts of k-mers)"
        )
    ranked = sorted(set(config["masking"]["strategies"]) - {"random", "pmi-vocab"})
    if ranked and config["masking"]["k"] != config["npmi"]["k"]:
        raise UserError(
            f"{source}: masking.k: {config['masking']['k']} differs from npmi.k {config['npmi']['k']}, "
            f"but {', '.join(ranked)} look up each token's k-mer in the NPMI ranking"
        )
    pretrain = config["pretrain"]
    for step in pretrain["export_steps"]:
        if step % pretrain["keep_weights_every"]:
            raise UserError(
                f"{source}: pretrain.export_steps: {step} is not a multiple of pretrain.keep_weights_every"
                f" ({pretrain['keep_weights_every']}), the steps at which a run keeps its weights"
            )
        if step > max(pretrain["steps"]):
            raise UserError(f"{source}: pretrain.export_steps: {step} is beyond every run in pretrain.steps")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: let the base class report it
                break
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {first})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """The YAML document in `path`, or a one-line UserError (unreadable, invalid, or a key given twice)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such config file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a config YAML file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise UserError(f"{path}: cannot read the config ({reason})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(error, "problem", None)
        raise UserError(f"{path}: {where}invalid YAML{f' ({problem})' if problem else ''}") from None


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level")
    return validate_config(config, str(path))


def schema_keys(
    schema: dict, root: dict | None = None, prefix: str = "", inherited: dict | None = None
) -> list[tuple[str, dict]]:
    """Every leaf key of the schema as (dotted name, its schema), in schema order; `$ref`s resolved, and a
    default given by an enclosing object (e.g. `genome.urls.<source>`) passed down to the leaf."""
    root = root or schema
    keys = []
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if "default" not in sub and isinstance(inherited, dict) and key in inherited:
            sub = {**sub, "default": inherited[key]}
        name = f"{prefix}{key}"
        if sub.get("properties"):
            keys.extend(schema_keys(sub, root, f"{name}.", sub.get("default")))
        else:
            keys.append((name, sub))
    return keys


def _markdown_value(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def schema_markdown(schema: dict | None = None) -> str:
    """The key tables of config/README.md, one section per top-level key, from the schema's defaults and
    descriptions (so the documentation cannot drift from what is validated)."""
    schema = schema or load_schema()
    lines = []
    for section, sub in schema["properties"].items():
        sub = _resolve(sub, schema)
        lines += [
            f"## {section}",
            "",
            sub.get("description", "").strip(),
            "",
            "| key | default | meaning |",
            "|---|---|---|",
        ]
        for name, leaf in schema_keys(sub, schema):
            default = _markdown_value(leaf["default"]) if "default" in leaf else "(required)"
            meaning = " ".join(leaf.get("description", "").split()).replace("|", "\\|")
            lines.append(f"| `{name}` | {default} | {meaning} |")
        lines.append("")
    return "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1])).rstrip() + "\n"


KEYS_MARKER = (
    "<!-- Below: generated from the schema by `genemask check-config --write-doc config/README.md`. -->"
)


def documented(readme_text: str, schema: dict | None = None) -> str:
    """`readme_text` with everything after KEYS_MARKER replaced by the schema's key tables."""
    head, marker, _ = readme_text.partition(KEYS_MARKER)
    if not marker:
        raise UserError(f"config README: the marker line {KEYS_MARKER!r} is missing")
    return f"{head}{KEYS_MARKER}\n\n{schema_markdown(schema)}"
