"""`genemask <subcommand>`: one subcommand per pipeline stage.

Each module in `genemask.commands` registers its own subcommand through `register(subparsers)`, so stages
can be added without touching this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from genemask import __version__, commands
from genemask.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genemask", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"genemask {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"genemask {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genemask {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
