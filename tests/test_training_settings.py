"""One source for the pretraining and fine-tuning settings: the CLI's options and defaults are the dataclasses'."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genemask import cli
from genemask.commands import pretrain as pretrain_command
from genemask.errors import UserError
from genemask.evaluation.settings import FinetuneSettings
from genemask.options import add_options, flag_of, options_from
from genemask.training.settings import PretrainConfig, batch_geometry, rank_cpus

PATHS = ["--chunks", "c", "--out", "o", "--checkpoint-dir", "d"]


def parse(*argv: str):
    return cli.build_parser(argv[0]).parse_args(list(argv))


def test_pretrain_defaults_are_the_configs():
    config = pretrain_command.config_from(parse("pretrain", *PATHS))
    assert config == PretrainConfig(chunks=Path("c"), out=Path("o"), checkpoint_dir=Path("d"))


def test_every_pretrain_setting_is_an_option_once():
    grouped = [name for names in pretrain_command.OPTION_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(f.name for f in dataclasses.fields(PretrainConfig))


def test_pretrain_option_names_keep_working():
    argv = ["pretrain", *PATHS, "--lr", "1e-3", "--warmup", "7", "--betas", "0.8", "0.9", "--batch-size", "4"]
    argv += ["--global-batch", "12", "--preset", "logo", "--mask-seed", "5", "--compile", "--threads", "2"]
    config = pretrain_command.config_from(parse(*argv))
    assert (config.learning_rate, config.warmup_steps, config.betas) == (1e-3, 7, (0.8, 0.9))
    assert (config.global_batch, config.preset, config.mask_seed, config.compile) == (12, "logo", 5, True)
    assert config.threads == 2 and isinstance(config.chunks, Path) and config.batch_size == 4
    assert pretrain_command.config_from(parse("pretrain", *PATHS)).batch_size == "auto"
    assert (
        pretrain_command.config_from(parse("pretrain", *PATHS, "--batch-size", "auto")).micro_batch_cap == 64
    )
    for bad in (["--preset", "huge"], ["--batch-size", "big"]):
        with pytest.raises(SystemExit):
            parse("pretrain", *PATHS, *bad)
    with pytest.raises(UserError, match="--batch-size 0"):
        pretrain_command.config_from(parse("pretrain", *PATHS, "--batch-size", "0"))


def geometry_oracle(global_batch: int, world: int, micro_batch: int) -> int | None:
    """The fewest micro-batches per process with none over `micro_batch` and none empty, by trying them all."""
    for accum in range(1, global_batch + 1):
        sizes = [len(part) for part in np.array_split(np.arange(global_batch), world * accum)]
        if max(sizes) <= micro_batch and min(sizes) >= 1:
            return accum
    return None


def test_batch_geometry_is_the_fewest_micro_batches_that_fit():
    for global_batch, world, micro_batch in itertools.product(range(1, 41), range(1, 10), range(1, 13)):
        expected = geometry_oracle(global_batch, world, micro_batch)
        if expected is None:
            with pytest.raises(UserError, match=f"global batch {global_batch} cannot be split over {world} "):
                batch_geometry(global_batch, world, micro_batch)
        else:
            geometry = batch_geometry(global_batch, world, micro_batch)
            assert geometry.accum == expected, (global_batch, world, micro_batch)
            assert geometry.largest_micro_batch <= micro_batch


def test_the_study_batch_splits_over_any_gpu_count():
    # 1,000 sequences: 10 x 100 on one GPU as published; 8 GPUs of 125; 16 and 32 GPUs in micro-batches of 62-63
    # and 31-32 (sizes may differ by one: the loss is normalised over the global batch's masked tokens).
    assert batch_geometry(1000, 1, 10).accum == 100
    assert [batch_geometry(1000, world, 128).accum for world in (1, 2, 4, 8, 16, 32)] == [8, 4, 2, 1, 1, 1]
    assert batch_geometry(1000, 16, 128).largest_micro_batch == 63
    assert batch_geometry(1000, 8, 10).accum == 13  # 104 micro-batches of 9 or 10


def test_each_process_gets_its_share_of_the_job_cpus():
    assert rank_cpus(8, 0) == (8, 4)  # CPU training: the main process computes
    assert rank_cpus(8, 1) == (4, 4)
    assert rank_cpus(32, 8) == (2, 2)
    assert rank_cpus(8, 8) == (1, 1)
    assert rank_cpus(4, 8) == (1, 1)  # never zero
    assert rank_cpus(3, 1) == (2, 1)


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
    assert "--global-batch" in result.stdout and "--warmup-ratio" in result.stdout
