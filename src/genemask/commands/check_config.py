"""`genemask check-config`: validate a config file against the workflow's schema."""

from __future__ import annotations

import argparse

import yaml

from genemask.config import load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a config file against the schema and print it with defaults filled in",
        description="Validate a config file against workflow/schemas/config.schema.yaml.",
    )
    parser.add_argument("config", help="config YAML, e.g. config/demo.yaml")
    parser.add_argument("--quiet", action="store_true", help="print nothing when the config is valid")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not args.quiet:
        print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0
