"""`genemask pretrain`: masked-LM pretraining of one (architecture, strategy, steps), resumable."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Kept here so that `genemask --help` need not import torch; tests check them against genemask.training.models/pretrain.
PRESET_NAMES = ("tiny", "logo", "dnabert")
EXIT_RESUMABLE = 75

DESCRIPTION = f"""\
Pretrain a BERT masked LM on a chunk store. Checkpoints go to --checkpoint-dir every --checkpoint-every steps and
when SIGTERM or SIGUSR1 arrives or the --runtime-minutes limit nears; the run then exits with {EXIT_RESUMABLE}, and
the same command continues from the latest checkpoint, with bit-identical results on CPU. Multi-GPU:
`torchrun --standalone --nproc_per_node G -m genemask pretrain ...`; --global-batch stays the same for any G.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain a BERT masked LM (tiny, logo or dnabert) with one masking strategy",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    io = parser.add_argument_group("inputs and outputs")
    io.add_argument("--chunks", type=Path, required=True, help="chunk store directory (`genemask chunk`)")
    io.add_argument("--out", type=Path, required=True, help="final model directory (HF save_pretrained)")
    io.add_argument(
        "--checkpoint-dir",
        type=Path,
        required=True,
        help="checkpoints, kept across failed attempts; the run resumes from the latest one",
    )
    io.add_argument("--metrics", type=Path, help="metrics CSV (default: OUT/metrics.csv)")
    model = parser.add_argument_group("model and masking")
    model.add_argument("--preset", choices=PRESET_NAMES, default="tiny", help="model size")
    model.add_argument("--dropout", type=float, help="hidden and attention dropout (default: the preset's)")
    model.add_argument("--k", type=int, default=6, help="k-mer length of the tokens")
    model.add_argument("--strategy", default="random", help="masking strategy (must match --masks if given)")
    model.add_argument(
        "--masks", type=Path, help="precomputed masks (`genemask masks`); else computed on the fly"
    )
    model.add_argument("--ranks", type=Path, help="kmer_ranks.tsv, for on-the-fly genemask masks")
    model.add_argument("--ngrams", type=Path, help="ngrams.parquet, for on-the-fly pmi-vocab masks")
    model.add_argument("--mask-seed", type=int, help="seed of on-the-fly masks (default: --seed)")
    model.add_argument(
        "--eval-strategy", default="random", help="masks of the validation set (the same for every model)"
    )
    optim = parser.add_argument_group("optimisation (defaults: the published GeneMask run)")
    optim.add_argument("--steps", type=int, default=10_000, help="optimiser steps")
    optim.add_argument("--seed", type=int, default=0, help="seed of initial weights, batch order and dropout")
    optim.add_argument("--lr", type=float, default=8e-4, help="peak learning rate (AdamW)")
    optim.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.98), help="AdamW betas")
    optim.add_argument("--eps", type=float, default=1e-6, help="AdamW epsilon")
    optim.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    optim.add_argument("--warmup", type=int, default=500, help="linear warm-up steps, then linear decay to 0")
    optim.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: off)")
    optim.add_argument("--batch-size", type=int, default=10, help="sequences per device and micro-batch")
    optim.add_argument(
        "--grad-accum",
        type=int,
        default=25,
        help="micro-batches per step on ONE device; global batch = batch size x this, unless --global-batch",
    )
    optim.add_argument(
        "--global-batch",
        type=int,
        help="sequences per optimiser step, whatever the device count (accumulation adapts to it)",
    )
    optim.add_argument("--bucket-batches", type=int, default=64, help="micro-batches per length bucket")
    running = parser.add_argument_group("running")
    running.add_argument(
        "--eval-every", type=int, default=500, help="validate every N steps (and at the end)"
    )
    running.add_argument("--eval-chunks", type=int, default=2000, help="validation chunks (a fixed subset)")
    running.add_argument("--checkpoint-every", type=int, default=500, help="checkpoint every N steps")
    running.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept")
    running.add_argument(
        "--keep-weights-every",
        type=int,
        default=0,
        help="keep the weights every N steps (never pruned), for `genemask pretrain-export`; 0: never",
    )
    running.add_argument("--log-every", type=int, default=10, help="train metrics every N steps")
    running.add_argument(
        "--runtime-minutes",
        type=float,
        help=f"the job's time limit: stop with a checkpoint and exit {EXIT_RESUMABLE} before it",
    )
    running.add_argument(
        "--stop-margin-minutes",
        type=float,
        help="how long before --runtime-minutes to stop (default: 5%% of it, between 1 and 10 minutes)",
    )
    running.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    running.add_argument(
        "--workers",
        type=int,
        default=min(4, max(1, (os.cpu_count() or 2) // 2)),
        help="data loader worker processes",
    )
    running.add_argument("--threads", type=int, help="torch threads per process (default: torch's choice)")
    running.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genemask.training.pretrain import PretrainConfig, pretrain

    config = PretrainConfig(
        chunks=args.chunks,
        out=args.out,
        checkpoint_dir=args.checkpoint_dir,
        metrics=args.metrics,
        preset=args.preset,
        dropout=args.dropout,
        k=args.k,
        strategy=args.strategy,
        masks=args.masks,
        ranks=args.ranks,
        ngrams=args.ngrams,
        mask_seed=args.mask_seed,
        eval_strategy=args.eval_strategy,
        steps=args.steps,
        seed=args.seed,
        learning_rate=args.lr,
        betas=tuple(args.betas),
        eps=args.eps,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup,
        max_grad_norm=args.max_grad_norm,
        batch_size=args.batch_size,
        global_batch=args.global_batch or args.batch_size * args.grad_accum,
        bucket_batches=args.bucket_batches,
        eval_every=args.eval_every,
        eval_chunks=args.eval_chunks,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        keep_weights_every=args.keep_weights_every,
        log_every=args.log_every,
        runtime_minutes=args.runtime_minutes,
        stop_margin_minutes=args.stop_margin_minutes,
        device=args.device,
        workers=args.workers,
        threads=args.threads,
        compile=args.compile,
    )
    return pretrain(config)
