"""Settings: one definition of each setting's default, type, range and description, for the library, the command
line and the config.

A setting that is a workflow config key is defined by the schema (schemas/config.schema.yaml: type, default,
description and range keywords); an option names that key (`key="motifs.threshold"`) and takes all of it from
there. A setting of the command line only (threads, paths, a command's own knobs) is defined where its option is,
with its range in Python (`Range`). Either way:

- `setting(...)` makes a dataclass field that is also an option (the library's settings classes), `add_options`
  turns such fields into argparse options and `options_from` reads them back;
- `add_option(parser, flag, ...)` adds one option of a command that has no settings class;
- every numeric option parses with `number_type`, which refuses NaN, inf and values out of range with one
  argparse line naming the option (exit 2), before any work starts.

`tests/test_options.py` checks that every option naming a key has the schema's default, and that the generated
config README shows the same defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "INT64_MAX",
    "Range",
    "add_option",
    "add_options",
    "check_ranges",
    "flag_of",
    "number_type",
    "options_from",
    "schema_setting",
    "setting",
]

_REQUIRED = dataclasses.MISSING
SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
INT64_MAX = 2**63 - 1  # no integer setting means anything beyond what numpy and torch can hold


@dataclasses.dataclass(frozen=True)
class Range:
    """The valid values of a number: finite always, and within these bounds (the JSON-schema keywords)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None

    @classmethod
    def from_schema(cls, node: dict) -> Range:
        return cls(
            node.get("minimum"),
            node.get("maximum"),
            node.get("exclusiveMinimum"),
            node.get("exclusiveMaximum"),
        )

    def schema(self) -> dict:
        keywords = zip(
            ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
            (self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum),
            strict=True,
        )
        return {keyword: value for keyword, value in keywords if value is not None}

    def describe(self, kind: type = float) -> str:
        """'a finite number in (0, 1)', 'an integer >= 1', ..."""
        noun = "an integer" if kind is int else "a finite number"
        low = self.minimum if self.minimum is not None else self.exclusive_minimum
        high = self.maximum if self.maximum is not None else self.exclusive_maximum
        if low is not None and high is not None:
            left = "[" if self.minimum is not None else "("
            right = "]" if self.maximum is not None else ")"
            if kind is int and left == "[" and right == "]":
                return f"{noun} in {_shown(low)}..{_shown(high)}"
            return f"{noun} in {left}{_shown(low)}, {_shown(high)}{right}"
        if low is not None:
            return f"{noun} {'>=' if self.minimum is not None else '>'} {_shown(low)}"
        if high is not None:
            return f"{noun} {'<=' if self.maximum is not None else '<'} {_shown(high)}"
        return noun

    def problem(self, value: float, kind: type = float) -> str | None:
        """Why `value` is not valid (expected ..., got ...), or None."""
        bad = not math.isfinite(value) or (kind is int and abs(value) > INT64_MAX)
        bad = bad or (self.minimum is not None and value < self.minimum)
        bad = bad or (self.maximum is not None and value > self.maximum)
        bad = bad or (self.exclusive_minimum is not None and value <= self.exclusive_minimum)
        bad = bad or (self.exclusive_maximum is not None and value >= self.exclusive_maximum)
        return f"expected {self.describe(kind)}, got {value!r}" if bad else None


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e15 else f"{bound:g}"


def number_type(kind: type, valid: Range | None = None) -> Callable[[str], Any]:
    """An argparse `type` that parses an int or float and refuses NaN, inf and values outside `valid`."""
    valid = valid or Range()

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {valid.describe(kind)}, got {text!r}") from None
        problem = valid.problem(value, kind)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__
    parse.kind = kind  # type: ignore[attr-defined]
    parse.range = valid  # type: ignore[attr-defined]
    return parse


# ----------------------------------------------------------------------------------------------------------
# The schema's definitions


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def schema_setting(key: str) -> dict:
    """The schema node of a dotted config key (e.g. `finetune.weight_decay`); an array's node is its items'
    with the array's default. KeyError when the schema has no such key."""
    root = _schema()
    node = root
    for part in key.split("."):
        node = node["properties"][part]
        if "$ref" in node:
            node = {**root["$defs"][node["$ref"].removeprefix("#/$defs/")], **node}
    if node.get("type") == "array" and "items" in node:
        node = {**node["items"], "default": node.get("default"), "description": node.get("description", "")}
    return node


def _schema_kind(node: dict) -> type | None:
    kinds = node.get("type")
    kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
    if "integer" in kinds:
        return int
    if "number" in kinds:
        return float
    return None


def _described(help: str, node: dict) -> str:  # noqa: A002 - argparse's name
    return help or " ".join(str(node.get("description", "")).split()).replace("%", "%%")


# ----------------------------------------------------------------------------------------------------------
# Options


def setting(
    default: Any = _REQUIRED,
    help: str = "",  # noqa: A002 - argparse's name
    *,
    key: str | None = None,
    flag: str | None = None,
    type: Any = None,  # noqa: A002 - argparse's name
    range: Range | None = None,  # noqa: A002 - the natural name
    default_factory: Any = _REQUIRED,
    **argparse_options: Any,
) -> Any:
    """A dataclass field that is also a command-line option.

    With `key`, the schema defines it: default (unless given, e.g. None for 'derived'), help (unless given), type
    and range. `flag` defaults to `--field-name`; `type` to the type of the default (give it when the default is
    None); other keyword arguments (choices, nargs, metavar) go to `add_argument` as they are.
    """
    if key is not None:
        node = schema_setting(key)
        if default is _REQUIRED and default_factory is _REQUIRED:
            default = node["default"]
        help = _described(help, node)  # noqa: A001
        range = range or Range.from_schema(node)  # noqa: A001
        type = type or _schema_kind(node)  # noqa: A001
    metadata = {
        "help": help,
        "flag": flag,
        "type": type,
        "range": range,
        "key": key,
        "argparse": argparse_options,
    }
    if default_factory is not _REQUIRED:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _argument_type(kind: Any, valid: Range | None) -> Any:
    if kind in (int, float):
        return number_type(kind, valid)
    return kind


def add_option(
    parser: argparse._ActionsContainer,
    *flags: str,
    key: str | None = None,
    default: Any = _REQUIRED,
    help: str = "",  # noqa: A002 - argparse's name
    type: Any = None,  # noqa: A002 - argparse's name
    range: Range | None = None,  # noqa: A002
    **options: Any,
) -> argparse.Action:
    """One option of a command: with `key` its default, help, type and range come from the schema; numbers parse
    with `number_type` (finite, in range). The help gets ' (default: ...)' when there is a default."""
    if key is not None:
        node = schema_setting(key)
        default = node["default"] if default is _REQUIRED else default
        help = _described(help, node)  # noqa: A001
        range = range or Range.from_schema(node)  # noqa: A001
        type = type or _schema_kind(node)  # noqa: A001
    if default is not _REQUIRED:
        options["default"] = default
        if default is not None and default is not False and "%(default)" not in help:
            help += " (default: %(default)s)"  # noqa: A001
    if type is None and default not in (_REQUIRED, None) and not isinstance(default, bool):
        type = default.__class__  # noqa: A001
    if type is not None:
        options["type"] = _argument_type(type, range)
    action = parser.add_argument(*flags, help=help, **options)
    action.config_key = key  # type: ignore[attr-defined] # tests/test_options.py compares it with the schema
    return action


def add_options(parser: argparse._ActionsContainer, settings: type, names: tuple[str, ...]) -> None:
    """One option per named field of the `settings` dataclass, with its flag, default, help and range."""
    fields = {field.name: field for field in dataclasses.fields(settings)}
    for name in names:
        field, meta = fields[name], fields[name].metadata
        options = {"dest": name, "help": meta["help"], **meta["argparse"]}
        if field.default is _REQUIRED and field.default_factory is _REQUIRED:
            options["required"] = True
        else:
            default = field.default if field.default_factory is _REQUIRED else field.default_factory()
            options["default"] = default
            if default is not None and default is not False:
                options["help"] += " (default: %(default)s)"
        default = options.get("default")
        if isinstance(default, bool) and meta["type"] is None:
            options["action"] = "store_false" if default else "store_true"
        else:
            kind = meta["type"] or (float if isinstance(default, tuple) else type(default))
            options["type"] = _argument_type(kind, meta.get("range"))
            if "choices" not in options:
                options.setdefault("metavar", flag_of(field).lstrip("-").replace("-", "_").upper())
        action = parser.add_argument(flag_of(field), **options)
        action.config_key = meta.get("key")  # type: ignore[attr-defined]


def check_ranges(settings: Any) -> None:
    """Refuse (UserError naming the option) a numeric field of a settings dataclass outside its definition's range:
    the library checks what the command line does, for settings given in Python."""
    from genemask.errors import UserError

    for field in dataclasses.fields(settings):
        value, kind = getattr(settings, field.name), field.metadata.get("type")
        if kind is None and isinstance(field.default, int | float) and not isinstance(field.default, bool):
            kind = type(field.default)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if kind in (int, float) and isinstance(item, int | float) and not isinstance(item, bool):
                problem = (field.metadata.get("range") or Range()).problem(item, kind)
                if problem:
                    shown = " ".join(map(str, values))
                    raise UserError(f"{flag_of(field)} {shown}: {problem.split(', got')[0]}")


def options_from(args: argparse.Namespace, settings: type) -> dict:
    """The values of the `settings` fields that `args` has (as `add_options` named them)."""
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(settings)
        if hasattr(args, field.name)
    }
