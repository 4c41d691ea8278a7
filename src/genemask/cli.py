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


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line naming the option (exit 2); the usage itself is in --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command_modules() -> list[str]:
    """The subcommands' modules (`_common` and other private modules are helpers, not commands)."""
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with `only`, just that subcommand's module is imported (fast start for one command)."""
    parser = OneLineParser(prog="genemask", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"genemask {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [only] if only else command_modules():
        importlib.import_module(f"{commands.__name__}.{name}").register(subparsers)
    return parser


def subcommand_parsers(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    """The parser of every (sub)subcommand that runs something, by its command line, e.g. 'gue finetune' (the
    option tests and the option sweep derive their options from these, so new ones are covered)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, current: argparse.ArgumentParser) -> None:
        subparsers = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers and name:
            found[name] = current
        for action in subparsers:
            for child, sub in action.choices.items():
                walk(f"{name} {child}".strip(), sub)

    walk("", parser or build_parser())
    return found


def _requested_command(argv: list[str]) -> str | None:
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    name = first.replace("-", "_") if first else None
    return name if name in command_modules() else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(_requested_command(argv)).parse_args(argv)
    except SystemExit as stop:  # --help, --version, or argparse's one-line usage error (exit 2)
        return stop.code if isinstance(stop.code, int) else 2
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
