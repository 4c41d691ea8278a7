"""Settings that are also command-line options: one definition for the library and the CLI.

A setting is a dataclass field made by `setting()`, whose metadata carries its flag and help; `add_options` turns
such fields into argparse options, and `options_from` reads them back, so a default lives in exactly one place.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

_REQUIRED = dataclasses.MISSING


def setting(
    default: Any = _REQUIRED,
    help: str = "",  # noqa: A002 - argparse's name
    *,
    flag: str | None = None,
    type: Any = None,  # noqa: A002 - argparse's name
    default_factory: Any = _REQUIRED,
    **argparse_options: Any,
) -> Any:
    """A dataclass field that is also a command-line option.

    `flag` defaults to `--field-name`; `type` to the type of the default (give it when the default is None);
    other keyword arguments (choices, nargs, metavar) go to `add_argument` as they are.
    """
    metadata = {"help": help, "flag": flag, "type": type, "argparse": argparse_options}
    if default_factory is not _REQUIRED:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def add_options(parser: argparse._ActionsContainer, settings: type, names: tuple[str, ...]) -> None:
    """One option per named field of the `settings` dataclass, with its flag, default and help."""
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
            options["type"] = meta["type"] or (float if isinstance(default, tuple) else type(default))
            if "choices" not in options:
                options.setdefault("metavar", flag_of(field).lstrip("-").replace("-", "_").upper())
        parser.add_argument(flag_of(field), **options)


def options_from(args: argparse.Namespace, settings: type) -> dict:
    """The values of the `settings` fields that `args` has (as `add_options` named them)."""
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(settings)
        if hasattr(args, field.name)
    }
