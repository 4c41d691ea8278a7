"""Pretraining settings and model presets: one definition for the library and the `genemask pretrain` CLI.

Each setting is a dataclass field whose metadata carries its command-line flag and help (genemask.options). Nothing here imports torch, so that
`genemask --help` stays fast; the strategies come from the masking registry.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from genemask.errors import UserError
from genemask.masking import registry
from genemask.options import Range, check_ranges, setting

EXIT_RESUMABLE = 75  # EX_TEMPFAIL: stopped with a checkpoint; running the same command again continues


@dataclasses.dataclass(frozen=True)
class Preset:
    """A model size: everything the package and the workflow know about it. Adding a size is one entry of PRESETS
    (and its name in the schema's pretrain.architectures enum, which tests/test_options.py keeps equal)."""

    name: str
    summary: str
    sizes: dict  # BertConfig fields (genemask.training.models builds the config from them)
    # Pretraining step's model FLOP utilisation `genemask estimate` assumes without a measured rate.
    assumed_mfu: float


# Model sizes (docs/method.md section 5).
PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "dnabert",
            "BERT-base, as DNABERT",
            dict(
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                intermediate_size=3072,
                hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1,
            ),
            assumed_mfu=0.30,  # the goal is 0.40
        ),
        Preset(
            "logo",
            "the LOGO size, as GeneMask ran it",
            dict(
                hidden_size=256,
                num_hidden_layers=2,
                num_attention_heads=8,
                intermediate_size=3072,
                hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0,
            ),
            assumed_mfu=0.15,
        ),
        Preset(
            "tiny",
            "demo and tests: trains in about half a minute on CPU; hidden dropout stays on, so resume tests cover "
            "the RNG state",
            dict(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=128,
                hidden_dropout_prob=0.1,
                # On the CPU, attention with dropout leaves SDPA's fused kernel for its math path: about 7 times
                # slower, half of the tiny model's training time.
                attention_probs_dropout_prob=0.0,
            ),
            assumed_mfu=0.01,
        ),
    )
}


# The micro-batch (most sequences per device and forward pass) of `--batch-size auto` on CPU, and a size that fits
# 80-141 GB GPUs at 512 tokens in bf16 for an explicit choice (BERT-base holds about 0.2 GB of activations per
# 512-token sequence; LOGO's 2 layers about 0.03 GB). On CUDA, auto fits it by trying (training/micro_batch.py).
MICRO_BATCH_DEFAULTS = {"dnabert": 128, "logo": 512, "tiny": 64}


def preset_pattern() -> str:
    """The presets as a regular expression (the workflow's `arch` wildcard)."""
    return "|".join(PRESETS)


PROBABILITY_BELOW_ONE = Range(minimum=0, exclusive_maximum=1)
# A run stops this fraction of --runtime-minutes before its limit, within these bounds (minutes).
STOP_MARGIN_FRACTION, STOP_MARGIN_BOUNDS = 0.05, (1.0, 10.0)


def default_workers() -> int:
    return min(4, max(1, (os.cpu_count() or 2) // 2))


def micro_batch_option(text: str) -> int | str:
    """`--batch-size`: a whole number of sequences, or `auto`."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {text!r}") from None


def rank_cpus(job_cpus: int, gpus: int) -> tuple[int, int]:
    """(torch threads, loader workers) per process of a job (or node) holding `job_cpus` CPUs and `gpus` GPUs, one
    process per GPU: each gets its share, half of it (at least 1) for loader workers. On CPU (no GPU) the one
    process computes with every CPU and its loader workers take turns with it, as they mostly wait."""
    share = max(1, job_cpus // max(1, gpus))
    workers = max(1, share // 2)
    return (share if gpus == 0 else max(1, share - workers)), workers


@dataclasses.dataclass(frozen=True)
class BatchGeometry:
    """How one optimiser step's `global_batch` sequences split over `world` processes: `accum` micro-batches on each,
    `world * accum` in all, as equal as possible (sizes differ by at most one)."""

    global_batch: int
    world: int
    accum: int

    @property
    def micro_batches(self) -> int:
        return self.world * self.accum

    @property
    def largest_micro_batch(self) -> int:
        return -(-self.global_batch // self.micro_batches)


def batch_geometry(global_batch: int, world: int, micro_batch: int) -> BatchGeometry:
    """The fewest micro-batches per process (accumulation) such that none holds more than `micro_batch`
    sequences and every one holds at least one; a UserError naming the numbers when there is no such split."""
    accum = -(-global_batch // (world * micro_batch))
    if world * accum > global_batch:
        raise UserError(
            f"global batch {global_batch} cannot be split over {world} processes in micro-batches of at most "
            f"{micro_batch}: that needs {world * accum} non-empty micro-batches; use a global batch of at least "
            f"{world * accum} or a larger micro-batch"
        )
    return BatchGeometry(global_batch, world, accum)


@dataclasses.dataclass
class PretrainConfig:
    # In their historical order (run summaries list them so); commands/pretrain.py groups them for --help. A setting
    # that is a config key takes its default, description and range from the schema (genemask.options).
    chunks: Path = setting(type=Path, help="chunk store directory (`genemask chunk`)")
    out: Path = setting(type=Path, help="final model directory (HF save_pretrained)")
    checkpoint_dir: Path = setting(
        type=Path, help="checkpoints, kept across failed attempts; the run resumes from the latest one"
    )
    preset: str = setting("tiny", "model size", choices=tuple(PRESETS))
    dropout: float | None = setting(
        None, "hidden and attention dropout (default: the preset's)", type=float, range=PROBABILITY_BELOW_ONE
    )
    steps: int = setting(10_000, "optimiser steps", key="pretrain.steps")
    k: int = setting(key="masking.k", help="k-mer length of the tokens")
    strategy: str = setting(
        "random",
        "masking strategy (must match --masks if given; a time-variant one needs its components' masks)",
        choices=registry.names(),
    )
    masks: tuple[Path, ...] | None = setting(
        None,
        "precomputed masks (`genemask masks`), one store, or one per component of a time-variant strategy; "
        "else computed on the fly",
        type=Path,
        nargs="+",
    )
    ranks: Path | None = setting(
        None,
        "kmer_ranks.tsv, for on-the-fly masks of the strategies that read it (cm-gems validates with them)",
        type=Path,
    )
    ngrams: Path | None = setting(None, "ngrams.parquet, for on-the-fly pmi-vocab masks", type=Path)
    seed: int = setting(key="pretrain.seed")
    mask_seed: int | None = setting(
        None, "seed of on-the-fly masks (default: --seed)", type=int, range=Range(minimum=0)
    )
    learning_rate: float = setting(key="pretrain.learning_rate", flag="--lr")
    betas: tuple[float, float] = setting((0.9, 0.98), key="pretrain.betas", nargs=2)
    eps: float = setting(key="pretrain.eps")
    weight_decay: float = setting(key="pretrain.weight_decay")
    warmup_steps: int = setting(key="pretrain.warmup_steps", flag="--warmup")
    max_grad_norm: float = setting(1.0, "gradient clipping (0: off)", range=Range(minimum=0))
    batch_size: int | str = setting(
        "auto",
        "most sequences per device and forward pass (micro-batch); auto: on CUDA the largest that fits the GPU, "
        "found by trying at start-up, on CPU the preset's default ("
        + ", ".join(f"{preset} {size}" for preset, size in MICRO_BATCH_DEFAULTS.items())
        + "); the accumulation follows from --global-batch and the process count",
        type=micro_batch_option,
    )
    global_batch: int = setting(key="pretrain.global_batch")
    eval_every: int = setting(key="pretrain.eval_every")
    eval_chunks: int = setting(key="pretrain.eval_chunks")
    eval_strategy: str = setting(
        "random",
        "masks of the validation set (the same for every model)",
        choices=registry.names(time_variant=False),
    )
    tau: float = setting(key="masking.cm_gems.tau")
    checkpoint_every: int = setting(key="pretrain.checkpoint_every")
    keep_checkpoints: int = setting(2, "checkpoints kept", range=Range(minimum=1))
    # Not pretrain.keep_weights_every: a run started by hand keeps no weights unless asked (the workflow asks).
    keep_weights_every: int = setting(
        0,
        "keep the weights every N steps (never pruned), for `genemask pretrain-export`; 0: never",
        range=Range(minimum=0),
    )
    log_every: int = setting(10, "train metrics every N steps", range=Range(minimum=1))
    runtime_minutes: float | None = setting(
        None,
        f"the job's time limit: stop with a checkpoint and exit {EXIT_RESUMABLE} before it",
        type=float,
        range=Range(exclusive_minimum=0),
    )
    stop_margin_minutes: float | None = setting(
        None,
        f"how long before --runtime-minutes to stop (default: {STOP_MARGIN_FRACTION * 100:g}%% of it, between "
        f"{STOP_MARGIN_BOUNDS[0]:g} and {STOP_MARGIN_BOUNDS[1]:g} minutes)",
        type=float,
        range=Range(minimum=0),
    )
    compile: bool = setting(key="pretrain.compile")
    workers: int = setting(
        default_factory=default_workers, help="data loader worker processes", range=Range(minimum=0)
    )
    threads: int | None = setting(
        None, "torch threads per process (default: torch's choice)", type=int, range=Range(minimum=1)
    )
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    metrics: Path | None = setting(None, "metrics CSV (default: OUT/metrics.csv)", type=Path)

    @property
    def micro_batch_cap(self) -> int:
        """The micro-batch without a fitting trial: the explicit one, or the preset's default."""
        return MICRO_BATCH_DEFAULTS[self.preset] if self.batch_size == "auto" else int(self.batch_size)

    def __post_init__(self) -> None:
        if self.batch_size != "auto" and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise UserError(f"--batch-size {self.batch_size}: expected a whole number >= 1 or auto")
        check_ranges(self)
        if self.mask_seed is None:
            self.mask_seed = self.seed
        if self.masks is not None:
            self.masks = tuple(
                Path(m) for m in ([self.masks] if isinstance(self.masks, str | Path) else self.masks)
            )
        registry.check_parameters("cm-gems", {"tau": self.tau})
        self.betas = (float(self.betas[0]), float(self.betas[1]))
