"""Masked-LM pretraining: a plain loop (nanoGPT style) that resumes exactly from its checkpoints.

One optimiser step = `accum` micro-batches on each of `world` processes; the loss is the mean cross-entropy
over every masked token of the global batch, however it is split, and which sequences make a step depends on
`global_batch` alone (training/data.py), so the GPU count and the micro-batch (`--batch-size auto`: fitted to the
GPU, training/micro_batch.py) change the arithmetic's rounding, not the run.
Optimiser, schedule and batch follow the published run (docs/method.md section 5) unless overridden.

The run continues from the latest checkpoint in `checkpoint_dir` (training/checkpoints.py). On CPU a resumed run
is bit-identical to an uninterrupted one; on CUDA (bf16, non-deterministic kernels) it continues the same data
order and RNG streams. SIGTERM, SIGUSR1, SIGINT or the runtime limit (training/runtime.py) end the run at the next step
boundary with a checkpoint and EXIT_RESUMABLE, so a retry continues where it stopped.

Multi-GPU: `genemask torchrun --standalone --nproc-per-node G -m genemask pretrain ...` (DDP, one process per
GPU; several nodes: one launch per node with a c10d rendezvous, README "Several nodes").
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from genemask.atomic import atomic_dir, atomic_file, check_output_dir, check_output_file
from genemask.errors import UserError
from genemask.genome.chunkstore import ChunkStore
from genemask.masking import registry
from genemask.masking.collator import MLMCollator
from genemask.training.checkpoints import (
    METRIC_COLUMNS,
    Checkpoint,
    Progress,
    capture_rng,
    checkpoint_path,
    fingerprint,
    metrics_csv,
    read_latest_checkpoint,
    remove_partial_checkpoints,
    restore_rng,
    write_checkpoint,
)
from genemask.training.collators import make_collator, train_collate
from genemask.training.curriculum import (
    Curriculum,
    component_eval_maskers,
    curriculum_columns,
    curriculum_for,
)
from genemask.training.data import (
    ChunkTokens,
    GlobalBatches,
    StepLayout,
    WithMaskedPositions,
    batch_to_device,
    check_fits,
    eval_batches,
    iterate,
    make_loader,
    token_lengths,
)
from genemask.training.device import print_environment_header
from genemask.training.export import save_weights
from genemask.training.micro_batch import choose_geometry
from genemask.training.models import SparseMLMLoss, build_model, sparse_mlm_loss
from genemask.training.models import save_model as save_pretrained_model
from genemask.training.optim import linear_schedule, make_optimizer
from genemask.training.runtime import (
    Distributed,
    StopRequests,
    rank_seed,
    resolve_device,
    seed_everything,
    stop_deadline,
    torch_settings,
)
from genemask.training.settings import EXIT_RESUMABLE, PretrainConfig

__all__ = ["EXIT_RESUMABLE", "PretrainConfig", "pretrain", "train"]
MLM_INPUTS = ("input_ids", "attention_mask", "masked_index", "masked_labels")  # a batch, as the loss takes it


def pretrain(config: PretrainConfig) -> int:
    """Run (or continue) one pretraining run: 0 when done, EXIT_RESUMABLE when stopped with a checkpoint."""
    check_output_dir(config.out, "--out")
    check_output_dir(config.checkpoint_dir, "--checkpoint-dir")
    if config.metrics is not None:
        check_output_file(config.metrics, "--metrics")
    device = resolve_device(config.device)
    print_environment_header(device)
    with torch_settings(device, config.threads):
        dist = Distributed.from_env(device.type)
        if device.type == "cuda" and dist.world > 1:
            device = torch.device("cuda", dist.local_rank)
        try:
            with StopRequests() as stop:  # from the start: a signal during set-up stops before the first step
                return train(config, device, dist, stop)
        finally:
            sys.stdout.flush()
            dist.close()


def train(config: PretrainConfig, device: torch.device, dist: Distributed, stop: StopRequests) -> int:
    """The loop: set up, resume, train step by step (checkpointing, stopping early if asked), save the model."""
    c, started = config, time.monotonic()
    log = print if dist.main else _silent

    # --- set-up: the model, the batch layout (micro-batches fitted to the GPU), optimiser and schedule, the masks
    batches, train_lengths, valid_lengths, run_fingerprint = _plan(c)
    model = build_model(c.preset, c.k, c.seed, c.dropout).to(device)
    module: torch.nn.Module = SparseMLMLoss(model)  # the forward pass: masked-LM loss sum and correct count
    geometry = choose_geometry(
        c, module, model.config.vocab_size, device, dist, int(train_lengths.max()), log
    )
    layout = StepLayout(batches, geometry.accum, dist.world)
    if dist.world > 1:
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    if c.compile:
        module.compile(dynamic=True)
    optimizer = make_optimizer(
        model, c.learning_rate, c.weight_decay, betas=c.betas, eps=c.eps, fused=device.type == "cuda"
    )
    scheduler = linear_schedule(optimizer, c.warmup_steps, c.steps)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    train_collator = train_collate(c, len(train_lengths))
    eval_keys = eval_batches(valid_lengths, c.eval_chunks, geometry.largest_micro_batch, c.seed)
    eval_keys = eval_keys[dist.rank :: dist.world]  # this process's share
    eval_set = _eval_set(c, eval_keys)
    curriculum = curriculum_for(c)  # time-variant strategies: which component each step uses
    curriculum_eval_sets = _component_eval_sets(c, eval_keys, curriculum)

    # --- resume from the newest intact checkpoint, or seed a new run
    resumed, progress = _resume(
        c, dist, device, run_fingerprint, model, optimizer, scheduler, curriculum, log
    )
    tensorboard = _open_tensorboard(c, dist, progress.step)
    epoch, within = layout.position(progress.step)
    log(
        f"pretrain {c.preset} / {c.strategy}: {c.steps} steps of {c.global_batch} sequences "
        f"(micro-batches of up to {geometry.largest_micro_batch} x {layout.accum} accumulation x {dist.world} processes) on {device}; "
        + (f"resumed from {resumed.path} at epoch {epoch}, step {within} of {layout.steps_per_epoch}"
           if resumed else "new run"),
        flush=True,
    )  # fmt: skip

    def save_checkpoint() -> Path:
        rng_states = dist.gather(capture_rng(device))
        if dist.main:
            epoch, within = layout.position(progress.step)
            position = dict(epoch=epoch, step_in_epoch=within, world_size=dist.world, accum=layout.accum)
            write_checkpoint(
                c.checkpoint_dir, model=model, optimizer=optimizer, scheduler=scheduler, progress=progress,
                fingerprint=run_fingerprint, position=position, rng_states=rng_states, keep=c.keep_checkpoints,
            )  # fmt: skip
        dist.barrier()
        return checkpoint_path(c.checkpoint_dir, progress.step)

    # --- the loop: one iteration per optimiser step
    if progress.step < c.steps:
        batches = layout.rank_batches(progress.step, dist.rank)
        dataset = ChunkTokens(c.chunks, "train", c.k)
        loader = make_loader(
            dataset, batches, train_collator, workers=c.workers, pin_memory=device.type == "cuda"
        )
        deadline, slowest = stop_deadline(started, c.runtime_minutes, c.stop_margin_minutes), 0.0
        window = Window(device)
        with iterate(loader) as micro_batches:
            while progress.step < c.steps:
                began = time.monotonic()
                # batch: this process's micro-batches of the step; stop here if any process must stop
                micro = [next(micro_batches) for _ in range(layout.accum)]
                if curriculum is not None:  # every component was collated; the curriculum picks one
                    masking = curriculum.choose(progress.step)
                    micro = [batch[masking] for batch in micro]
                local_masked = sum(int(b["masked_labels"].numel()) for b in micro)
                late = deadline is not None and began + slowest > deadline
                global_masked, global_stop = dist.sum(
                    [float(local_masked), float(stop.received is not None or late)], device
                )
                if global_stop:
                    reason = stop.received or (
                        "the runtime limit" if late else "a stop request on another process"
                    )
                    path = save_checkpoint()
                    log(f"stopping before step {progress.step + 1} ({reason}): checkpoint {path}", flush=True)
                    return EXIT_RESUMABLE
                # forward and backward: gradients of the global mean loss over masked tokens (DDP averages them)
                scale = dist.world / max(global_masked, 1.0)
                for i, batch in enumerate(micro):
                    window.count(batch["attention_mask"])  # on the CPU, before the transfer: no GPU sync
                    batch = _to_device(batch, device)
                    defer_sync = dist.world > 1 and i < len(micro) - 1
                    with module.no_sync() if defer_sync else contextlib.nullcontext(), autocast:
                        loss_sum, correct = module(*(batch[key] for key in MLM_INPUTS))
                    (loss_sum * scale).backward()
                    window.add(loss_sum.detach(), correct)
                window.masked += local_masked
                # step: clip, update, schedule
                if c.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), c.max_grad_norm)
                learning_rate = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                progress.step += 1
                step_seconds = time.monotonic() - began
                window.seconds += step_seconds
                progress.train_seconds += step_seconds
                # log, evaluate, checkpoint
                step, row = progress.step, {}
                if step % c.log_every == 0 or step == c.steps:
                    row = _train_row(window, progress, learning_rate, c.steps, layout, dist, device, log)
                if step % c.eval_every == 0 or step == c.steps:
                    valid_loss, valid_accuracy = evaluate(model, eval_set, autocast, dist, device)
                    row |= {"step": step, "valid_loss": valid_loss, "valid_accuracy": valid_accuracy}
                    log(
                        f"step {step}/{c.steps} valid loss {valid_loss:.4f} accuracy {valid_accuracy:.4f}",
                        flush=True,
                    )
                if curriculum is not None and row:
                    row |= curriculum_columns(curriculum, masking, curriculum_eval_sets, row, progress, log,
                                               lambda s: evaluate(model, s, autocast, dist, device)[0])  # fmt: skip
                if row:
                    _record(progress, row, tensorboard)
                if c.keep_weights_every and step % c.keep_weights_every == 0 and step < c.steps and dist.main:
                    save_weights(model, c.checkpoint_dir, step)
                if step % c.checkpoint_every == 0 or step == c.steps:
                    save_checkpoint()
                slowest = max(slowest, time.monotonic() - began)

    # --- save the model
    if dist.main:
        _save_model(c, model, progress, run_fingerprint, log)
        if tensorboard is not None:
            tensorboard.close()
    dist.barrier()
    return 0


# ----------------------------------------------------------------------------------------------------------
# Set-up


def _silent(*_args: object, **_kwargs: object) -> None:
    """The log of processes other than rank 0."""


def _resume(
    c: PretrainConfig,
    dist: Distributed,
    device: torch.device,
    run_fingerprint: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    curriculum: Curriculum | None,
    log: Callable[..., None],
) -> tuple[Checkpoint | None, Progress]:
    """Load the newest intact checkpoint of this run into model, optimiser, scheduler and curriculum (damaged
    ones are skipped with a warning, then removed), restore its RNG states; or seed a new run."""
    if dist.main:
        remove_partial_checkpoints(c.checkpoint_dir)
    damaged: list[Path] = []

    def skip_damaged(path: Path, reason: str) -> None:
        damaged.append(path)
        if dist.main:
            print(f"warning: skipping the damaged checkpoint {path} ({reason}); removing it", file=sys.stderr)

    resumed = read_latest_checkpoint(
        c.checkpoint_dir,
        run_fingerprint,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        device=device,
        on_skip=skip_damaged,
    )
    dist.barrier()  # every process has chosen its checkpoint: the damaged ones can go (pruning must not keep them)
    if dist.main:
        for path in damaged:
            shutil.rmtree(path, ignore_errors=True)
    progress = resumed.progress if resumed else Progress()
    if curriculum is not None:
        curriculum.load_state_dict(progress.curriculum)
    if resumed is None:
        seed_everything(rank_seed(c.seed, dist.rank))
    elif resumed.world_size == dist.world:
        restore_rng(resumed.rng_states[dist.rank], device)
    else:
        log(
            f"note: {resumed.path} was written by {resumed.world_size} processes, this run has {dist.world}; "
            "the data order is unchanged, the dropout RNG is re-seeded"
        )
        torch.manual_seed(rank_seed(c.seed + progress.step, dist.rank))
    return resumed, progress


def _plan(config: PretrainConfig) -> tuple[GlobalBatches, np.ndarray, np.ndarray, dict]:
    """The global batches, the train and valid token lengths, and the run's fingerprint."""
    c = config
    train = ChunkStore.open(c.chunks, "train")
    valid = ChunkStore.open(c.chunks, "valid")
    train.require_tokens(c.k)
    if len(valid):
        valid.require_tokens(c.k)
    train_lengths, valid_lengths = token_lengths(train.lengths, c.k), token_lengths(valid.lengths, c.k)
    check_fits(train_lengths, f"{c.chunks}/train")
    check_fits(valid_lengths, f"{c.chunks}/valid")
    batches = GlobalBatches(train_lengths, c.global_batch, c.seed)
    if batches.steps_per_epoch == 0:
        raise UserError(
            f"{c.chunks}: the train split has {len(train)} chunks, fewer than one global batch "
            f"({c.global_batch}); lower --global-batch or chunk more sequence"
        )
    run_fingerprint = fingerprint(c, len(train), int(train.offsets[-1] - train.offsets[0]))
    return batches, train_lengths, valid_lengths, run_fingerprint


def _eval_set(config: PretrainConfig, keys: list, collator: MLMCollator | None = None) -> list[dict]:
    """This process's validation batches (`keys`), collated once: fixed chunks, fixed masks (epoch 0,
    `eval_strategy` unless a collator is given)."""
    c = config
    dataset = ChunkTokens(c.chunks, "valid", c.k)
    if collator is None:
        reads = registry.get(c.eval_strategy).reads
        ranks = c.ranks if "ranks" in reads else None
        ngrams = c.ngrams if "ngrams" in reads else None
        collator = make_collator(c.k, c.eval_strategy, c.seed, ranks=ranks, ngrams=ngrams)
    collate = WithMaskedPositions(collator)
    return [collate([dataset[key] for key in batch]) for batch in keys]


def _component_eval_sets(
    config: PretrainConfig, keys: list, curriculum: Curriculum | None
) -> dict[str, list[dict]]:
    """The validation batches under each component's masks, for a curriculum that validates under the active
    masking (cm-gems); none otherwise."""
    maskers = component_eval_maskers(config, curriculum)
    return {name: _eval_set(config, keys, MLMCollator(m)) for name, m in maskers.items()}


def _open_tensorboard(config: PretrainConfig, dist: Distributed, step: int):
    """TensorBoard logs beside the checkpoints, when tensorboard is installed; a resumed run drops the
    events logged after its checkpoint."""
    if not dist.main or importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(config.checkpoint_dir / "tensorboard", purge_step=step + 1)


# ----------------------------------------------------------------------------------------------------------
# Measuring


def _to_device(batch: dict, device: torch.device) -> dict:
    return batch_to_device(batch, device)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, eval_set: list[dict], autocast, dist: Distributed, device: torch.device
) -> tuple[float, float]:
    """Masked-LM loss and accuracy over the validation batches of every process."""
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    count = 0
    for batch in eval_set:
        batch = _to_device(batch, device)
        with autocast:
            stats = sparse_mlm_loss(model, *(batch[key] for key in MLM_INPUTS))
        loss_sum += stats.loss_sum
        correct += stats.correct
        count += stats.count
    model.train()
    total_loss, total_correct, total_count = dist.sum([loss_sum.item(), correct.item(), float(count)], device)
    if total_count == 0:
        return math.nan, math.nan
    return total_loss / total_count, total_correct / total_count


class Window:
    """Sums over the steps since the last metrics row; loss and accuracy stay on the device until logged."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device)
        self.reset()

    def add(self, loss_sum: torch.Tensor, correct: torch.Tensor) -> None:
        self.loss += loss_sum
        self.correct += correct

    def count(self, attention_mask: torch.Tensor) -> None:
        self.tokens += int(attention_mask.sum())
        self.positions += attention_mask.numel()
        self.sequences += attention_mask.shape[0]  # each has [CLS] and [SEP], never masked

    def reset(self) -> None:
        self.loss.zero_()
        self.correct.zero_()
        self.masked, self.tokens, self.positions, self.sequences, self.seconds = 0, 0, 0, 0, 0.0


def _train_row(
    window: Window,
    progress: Progress,
    learning_rate: float,
    steps: int,
    layout: StepLayout,
    dist: Distributed,
    device: torch.device,
    log,
) -> dict:
    """Train metrics over the steps since the last row (summed over processes); resets the window."""
    loss, correct, masked, tokens, positions, sequences = dist.sum(
        [window.loss.item(), window.correct.item(), window.masked, window.tokens, window.positions,
         window.sequences], device,
    )  # fmt: skip
    progress.tokens += int(tokens)
    step = progress.step
    row = {
        "step": step,
        "epoch": round(step / layout.steps_per_epoch, 4),
        "learning_rate": learning_rate,
        "train_loss": loss / max(masked, 1.0),
        "train_accuracy": correct / max(masked, 1.0),
        "masked_fraction": masked / max(tokens - 2 * sequences, 1.0),  # of the k-mer tokens, as realised
        "tokens": progress.tokens,
        "padding_waste": 1.0 - tokens / max(positions, 1.0),
        "tokens_per_second": tokens / max(window.seconds, 1e-9),
        "train_seconds": round(progress.train_seconds, 3),
    }
    log(
        f"step {step}/{steps} loss {row['train_loss']:.4f} accuracy {row['train_accuracy']:.4f} "
        f"lr {learning_rate:.3g} {row['tokens_per_second']:.0f} tokens/s padding {row['padding_waste']:.1%}",
        flush=True,
    )
    window.reset()
    return row


def _record(progress: Progress, row: dict, tensorboard) -> None:
    progress.metrics.append({column: row.get(column, "") for column in METRIC_COLUMNS})
    if tensorboard is not None:
        for key, value in row.items():
            if key != "step" and isinstance(value, int | float):
                tensorboard.add_scalar(key, value, row["step"])


# ----------------------------------------------------------------------------------------------------------
# The end


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _save_model(
    config: PretrainConfig, model: torch.nn.Module, progress: Progress, run_fingerprint: dict, log
) -> None:
    """The final model (HF save_pretrained), its run summary `pretrain.json` and the metrics CSV."""
    c = config
    metrics = c.metrics or c.out / "metrics.csv"
    with atomic_dir(c.out) as tmp:
        tokenizer = save_pretrained_model(model, tmp, c.k)
        summary = {
            "settings": {key: _jsonable(value) for key, value in vars(c).items()},
            "fingerprint": run_fingerprint,
            "steps": progress.step,
            "train_tokens": progress.tokens,
            "train_seconds": progress.train_seconds,
            "final": progress.metrics[-1] if progress.metrics else {},
            # cm-gems: the step after which global masking took over (None: no switch, or no curriculum)
            "switch_step": progress.curriculum.get("switch_step"),
            "curriculum": progress.curriculum,
            "tokenizer_saved": tokenizer,
        }
        (tmp / "pretrain.json").write_text(json.dumps(summary, indent=2) + "\n")
        if c.metrics is None:
            (tmp / "metrics.csv").write_text(metrics_csv(progress.metrics))
    if c.metrics is not None:
        with atomic_file(metrics) as tmp_file:
            tmp_file.write_text(metrics_csv(progress.metrics))
    log(f"saved {c.out} (metrics: {metrics})")
