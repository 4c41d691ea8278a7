"""`genemask pretrain`: masked-LM pretraining of one (architecture, strategy, steps), resumable."""

from __future__ import annotations

import argparse

from genemask.atomic import add_output_options, check_output_dir, refuse_nested
from genemask.errors import UserError
from genemask.options import add_options, options_from
from genemask.training.settings import EXIT_RESUMABLE, PRESETS, PretrainConfig

DESCRIPTION = f"""\
Pretrain a BERT masked LM on a chunk store. Checkpoints go to --checkpoint-dir every --checkpoint-every steps and
when SIGTERM, SIGUSR1 or SIGINT (Ctrl-C) arrives or the --runtime-minutes limit nears; the run then exits with {EXIT_RESUMABLE}, and
the same command continues from the latest checkpoint, with bit-identical results on CPU. Multi-GPU:
`genemask torchrun --standalone --nproc-per-node G -m genemask pretrain ...` (torchrun that keeps exit
{EXIT_RESUMABLE}); the sequences of each step depend on --global-batch alone, not on G or the micro-batch.
"""

# PretrainConfig's fields by --help section.
OPTION_GROUPS = {
    "inputs and outputs": ("chunks", "out", "checkpoint_dir", "metrics"),
    "model and masking": ("preset", "dropout", "k", "strategy", "masks", "ranks", "ngrams", "mask_seed", "eval_strategy", "tau"),
    "optimisation (defaults: the published GeneMask run)": (
        "steps", "seed", "learning_rate", "betas", "eps", "weight_decay", "warmup_steps", "max_grad_norm",
        "global_batch", "batch_size",
    ),
    "running": (
        "eval_every", "eval_chunks", "checkpoint_every", "keep_checkpoints", "keep_weights_every", "log_every",
        "runtime_minutes", "stop_margin_minutes", "device", "workers", "threads", "compile",
    ),
}  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help=f"pretrain a BERT masked LM ({', '.join(PRESETS)}) with one masking strategy",
        description=DESCRIPTION,
    )
    groups = {title: parser.add_argument_group(title) for title in OPTION_GROUPS}
    for title, names in OPTION_GROUPS.items():
        add_options(groups[title], PretrainConfig, names)
    add_output_options(groups["inputs and outputs"])
    parser.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> PretrainConfig:
    options = options_from(args, PretrainConfig)
    options["betas"] = tuple(options["betas"])
    return PretrainConfig(**options)


def run(args: argparse.Namespace) -> int:
    if args.device != "auto":  # a device that cannot run fails before the training imports (seconds)
        from genemask.training.device import choose_device

        choose_device(args.device)
    from genemask.training.pretrain import pretrain

    config = config_from(args)
    if config.runtime_minutes is not None and not config.runtime_minutes > 0:
        raise UserError(f"--runtime-minutes {config.runtime_minutes}: expected a positive number of minutes")
    # The final model replaces --out whole: a checkpoint directory inside it would be lost.
    refuse_nested(config.out, "--out", config.checkpoint_dir, "--checkpoint-dir")
    check_output_dir(config.out, "--out", whole=True, force=args.force)
    check_output_dir(config.checkpoint_dir, "--checkpoint-dir", lock=True)
    return pretrain(config)
