"""`genemask <subcommand>`: one subcommand per pipeline stage.

Each module in `genemask.commands` registers its own subcommand through `register(subparsers)`, so stages
can be added without touching this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from genemask import __version__, atomic, commands
from genemask.errors import UserError


def command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with `only`, just that subcommand's module is imported (fast start for one command)."""
    parser = argparse.ArgumentParser(prog="genemask", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"genemask {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [only] if only else command_modules():
        importlib.import_module(f"{commands.__name__}.{name}").register(subparsers)
    return parser


def _requested_command(argv: list[str]) -> str | None:
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    name = first.replace("-", "_") if first else None
    return name if name in command_modules() else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_requested_command(argv)).parse_args(argv)
    atomic.set_command(args.command)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        message = " ".join(line.strip() for line in str(error).splitlines())  # one line, always
        print(f"genemask {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genemask {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        atomic.release_locks()


if __name__ == "__main__":
    sys.exit(main())
