"""One source for the pretraining and fine-tuning settings: the CLI's options and defaults are the dataclasses'."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from genemask import cli
from genemask.commands import pretrain as pretrain_command
from genemask.evaluation.settings import FinetuneSettings
from genemask.options import add_options, flag_of, options_from
from genemask.training.settings import PretrainConfig

PATHS = ["--chunks", "c", "--out", "o", "--checkpoint-dir", "d"]


def parse(*argv: str):
    return cli.build_parser(argv[0]).parse_args(list(argv))


def test_pretrain_defaults_are_the_configs():
    config = pretrain_command.config_from(parse("pretrain", *PATHS))
    assert config == PretrainConfig(chunks=Path("c"), out=Path("o"), checkpoint_dir=Path("d"))


def test_every_pretrain_setting_is_an_option_once():
    grouped = [name for names in pretrain_command.OPTION_GROUPS.values() for name in names]
    assert sorted([*grouped, "global_batch"]) == sorted(f.name for f in dataclasses.fields(PretrainConfig))


def test_pretrain_option_names_keep_working():
    argv = ["pretrain", *PATHS, "--lr", "1e-3", "--warmup", "7", "--betas", "0.8", "0.9", "--batch-size", "4"]
    argv += ["--grad-accum", "3", "--preset", "logo", "--mask-seed", "5", "--compile", "--threads", "2"]
    config = pretrain_command.config_from(parse(*argv))
    assert (config.learning_rate, config.warmup_steps, config.betas) == (1e-3, 7, (0.8, 0.9))
    assert (config.global_batch, config.preset, config.mask_seed, config.compile) == (12, "logo", 5, True)
    assert config.threads == 2 and isinstance(config.chunks, Path)
    assert pretrain_command.config_from(parse(*argv, "--global-batch", "8")).global_batch == 8
    with pytest.raises(SystemExit):
        parse("pretrain", *PATHS, "--preset", "huge")


def test_finetune_defaults_and_options_are_the_settings():
    required = [
        "--model",
        "m",
        "--train",
        "a",
        "--test",
        "b",
        "--out",
        "r.json",
        "--task",
        "t",
        "--shots",
        "5",
    ]
    args = parse("finetune", *required)
    assert FinetuneSettings(**options_from(args, FinetuneSettings)) == FinetuneSettings()
    args = parse(
        "finetune", *required, "--lr", "3e-5", "--warmup-ratio", "0", "--random-init", "--max-length", "64"
    )
    assert FinetuneSettings(**options_from(args, FinetuneSettings)) == FinetuneSettings(
        learning_rate=3e-5, warmup_ratio=0.0, random_init=True, max_length=64
    )


def test_options_carry_the_fields_help_and_default():
    import argparse

    parser = argparse.ArgumentParser()
    add_options(parser, FinetuneSettings, ("epochs", "random_init"))
    epochs = next(action for action in parser._actions if action.dest == "epochs")
    field = next(f for f in dataclasses.fields(FinetuneSettings) if f.name == "epochs")
    assert epochs.option_strings == [flag_of(field)] == ["--epochs"]
    assert epochs.default == 20 and epochs.type.kind is int and epochs.help.startswith(field.metadata["help"])


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom genemask import cli\n"
        "for argv in (['--help'], ['pretrain', '--help'], ['finetune', '--help']):\n"
        "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--grad-accum" in result.stdout and "--warmup-ratio" in result.stdout
