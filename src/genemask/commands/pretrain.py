"""`genemask pretrain`: masked-LM pretraining of one (architecture, strategy, steps), resumable."""

from __future__ import annotations

import argparse
import dataclasses

from genemask.options import Range, add_option, add_options, options_from
from genemask.training.settings import EXIT_RESUMABLE, PRESETS, PretrainConfig

DESCRIPTION = f"""\
Pretrain a BERT masked LM on a chunk store. Checkpoints go to --checkpoint-dir every --checkpoint-every steps and
when SIGTERM, SIGUSR1 or SIGINT (Ctrl-C) arrives or the --runtime-minutes limit nears; the run then exits with {EXIT_RESUMABLE}, and
the same command continues from the latest checkpoint, with bit-identical results on CPU. Multi-GPU:
`torchrun --standalone --nproc_per_node G -m genemask pretrain ...`; --global-batch stays the same for any G.
"""

# PretrainConfig's fields by --help section; --global-batch comes with --grad-accum, below.
OPTION_GROUPS = {
    "inputs and outputs": ("chunks", "out", "checkpoint_dir", "metrics"),
    "model and masking": ("preset", "dropout", "k", "strategy", "masks", "ranks", "ngrams", "mask_seed", "eval_strategy", "tau"),
    "optimisation (defaults: the published GeneMask run)": (
        "steps", "seed", "learning_rate", "betas", "eps", "weight_decay", "warmup_steps", "max_grad_norm",
        "batch_size", "bucket_batches",
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
    optimisation = groups["optimisation (defaults: the published GeneMask run)"]
    add_option(
        optimisation,
        "--grad-accum",
        key="pretrain.gradient_accumulation",
        help="micro-batches per step on ONE device; global batch = batch size x this, unless --global-batch",
    )
    global_batch = next(f for f in dataclasses.fields(PretrainConfig) if f.name == "global_batch")
    add_option(
        optimisation, "--global-batch", type=int, range=Range(minimum=1), help=global_batch.metadata["help"]
    )
    parser.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> PretrainConfig:
    options = options_from(args, PretrainConfig)
    options["global_batch"] = args.global_batch or args.batch_size * args.grad_accum
    options["betas"] = tuple(options["betas"])
    return PretrainConfig(**options)


def run(args: argparse.Namespace) -> int:
    from genemask.training.pretrain import pretrain

    return pretrain(config_from(args))
