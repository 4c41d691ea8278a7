"""`genemask check-config`: validate a config file against the workflow's schema."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from genemask.atomic import atomic_file
from genemask.config import documented, load_config
from genemask.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a config file against the schema and print it with defaults filled in",
        description="Validate a config file against workflow/schemas/config.schema.yaml.",
    )
    parser.add_argument("config", nargs="?", help="config YAML, e.g. config/demo.yaml")
    parser.add_argument(
        "--write-doc",
        metavar="README",
        help="rewrite the key tables of this README (config/README.md) from the schema, then exit",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when the config is valid")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="also check that pretraining's global batch splits over the GPUs and nodes this Snakemake profile "
        "(e.g. slurm) gives pretrain_model",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.write_doc:
        readme = Path(args.write_doc)
        if not readme.is_file():
            raise UserError(
                f"--write-doc {readme}: no such file, expected the README whose key tables to rewrite"
            )
        try:
            text = documented(readme.read_text())
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--write-doc {readme}: unreadable ({error})") from None
        with atomic_file(readme) as tmp:
            tmp.write_text(text)
        return 0
    if not args.config:
        raise UserError("check-config: give a config file (or --write-doc README)")
    config = load_config(args.config)
    if args.profile:
        from genemask.training.launch import pretrain_layout, profile_resources

        pretrain_layout(profile_resources(args.profile), config["pretrain"], f"{args.profile} pretrain_model")
    if not args.quiet:
        print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0
