"""Masked-LM pretraining: a plain loop (nanoGPT style) that resumes exactly from its checkpoints.

One optimiser step = `accum` micro-batches on each of `world` processes; the loss is the mean cross-entropy
over every masked token of the global batch, however it is split, so `global_batch` alone fixes the run.
Optimiser, schedule and batch follow the published run (method.md section 5) unless overridden.

Checkpoints (`checkpoint_dir/step-00000040/`, the last `keep_checkpoints` kept, each written atomically):
`model.safetensors`, `optimizer.safetensors` (AdamW moments), `trainer.json` (step, data position, scheduler,
optimiser hyper-parameters, python/numpy RNG states, a fingerprint of the settings), `rng.safetensors` (torch
and CUDA RNG states per process) and `metrics.csv` (the metrics so far). A run continues from the latest one;
one written under other settings is refused. On CPU a resumed run is bit-identical to an uninterrupted one; on
CUDA (bf16, non-deterministic kernels) it continues the same data order and RNG streams.

Stopping early: SIGTERM or SIGUSR1 (SLURM, before preemption or the time limit) or the runtime limit
(`runtime_minutes` minus a margin) end the run at the next step boundary with a checkpoint and EXIT_RESUMABLE,
so a retry continues where it stopped.

Multi-GPU: `torchrun --standalone --nproc_per_node G -m genemask pretrain ...` (DDP, one process per GPU).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import importlib.util
import io
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as torch_dist
from safetensors.torch import load_file, load_model, save_file, save_model
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from transformers import BertForMaskedLM

from genemask.atomic import atomic_dir, atomic_file
from genemask.errors import UserError
from genemask.genome.chunkstore import ChunkStore
from genemask.masking.collator import MLMCollator
from genemask.masking.store import MaskStore
from genemask.training.data import (
    ChunkTokens,
    LengthBuckets,
    StepLayout,
    WithMaskedPositions,
    check_fits,
    eval_batches,
    iterate,
    make_loader,
    token_lengths,
)
from genemask.training.export import save_weights
from genemask.training.models import SparseMLMLoss, build_model, sparse_mlm_loss
from genemask.training.models import save_model as save_pretrained_model

EXIT_RESUMABLE = 75  # EX_TEMPFAIL: stopped with a checkpoint; running the same command again continues
CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = re.compile(r"step-(\d{8})")
METRIC_COLUMNS = (
    "step",
    "epoch",
    "learning_rate",
    "train_loss",
    "train_accuracy",
    "valid_loss",
    "valid_accuracy",
    "tokens",
    "padding_waste",
    "tokens_per_second",
    "train_seconds",
)
# Settings that change the training trajectory: a checkpoint written under other values is not resumed.
FINGERPRINT_FIELDS = (
    "preset",
    "dropout",
    "steps",
    "k",
    "strategy",
    "seed",
    "mask_seed",
    "learning_rate",
    "betas",
    "eps",
    "weight_decay",
    "warmup_steps",
    "max_grad_norm",
    "batch_size",
    "global_batch",
    "bucket_batches",
)


@dataclass
class PretrainConfig:
    chunks: Path
    out: Path
    checkpoint_dir: Path
    preset: str = "tiny"
    dropout: float | None = None  # None: the preset's
    steps: int = 10_000
    k: int = 6
    strategy: str = "random"
    masks: Path | None = None  # precomputed masks (`genemask masks`); otherwise computed on the fly
    ranks: Path | None = None  # kmer_ranks.tsv, for on-the-fly genemask masks
    ngrams: Path | None = None  # ngrams.parquet, for on-the-fly pmi-vocab masks
    seed: int = 0
    mask_seed: int | None = None  # on-the-fly masks; None = seed. Precomputed masks carry their own.
    learning_rate: float = 8e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_steps: int = 500
    max_grad_norm: float = 1.0
    batch_size: int = 10  # per device and micro-batch
    global_batch: int = 250  # sequences per optimiser step, whatever the number of devices
    bucket_batches: int = 64
    eval_every: int = 500
    eval_chunks: int = 2000
    eval_strategy: str = "random"  # the same masks for every model, so validation losses compare
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    keep_weights_every: int = 0  # keep the weights every N steps, for export_model; 0: never
    log_every: int = 10
    runtime_minutes: float | None = None
    stop_margin_minutes: float | None = None  # None: 5% of the runtime, between 1 and 10 minutes
    compile: bool = False
    workers: int = 1
    threads: int | None = None  # torch intra-op threads; None: torch's default
    device: str = "auto"
    metrics: Path | None = None  # None: out/metrics.csv

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "global_batch", "bucket_batches", "eval_every", "checkpoint_every")
        for name in (*positive, "keep_checkpoints", "log_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.workers < 0 or self.eval_chunks < 0 or self.keep_weights_every < 0:
            raise UserError(
                "--warmup, --workers, --eval-chunks and --keep-weights-every must not be negative"
            )
        if self.global_batch % self.batch_size:
            raise UserError(
                f"--global-batch {self.global_batch} is not a multiple of --batch-size {self.batch_size}"
            )
        if self.mask_seed is None:
            self.mask_seed = self.seed
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    def fingerprint(self, n_train_chunks: int, n_train_nucleotides: int) -> dict:
        values = {name: getattr(self, name) for name in FINGERPRINT_FIELDS}
        values["betas"] = list(self.betas)
        values["masks"] = None if self.masks is None else _mask_store_identity(self.masks)
        values["ranks"] = None if self.ranks is None else _file_digest(self.ranks)
        values["ngrams"] = None if self.ngrams is None else _file_identity(self.ngrams)
        values["train_chunks"], values["train_nucleotides"] = n_train_chunks, n_train_nucleotides
        return values


def _file_digest(path: Path) -> str:
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _file_identity(path: Path) -> list:
    """Name and size: cheap, for inputs too large to hash at every start."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    return [Path(path).name, Path(path).stat().st_size]


def _mask_store_identity(directory: Path) -> dict:
    meta = MaskStore.open(directory).meta
    return {key: value for key, value in meta.items() if key != "chunks"}


# ----------------------------------------------------------------------------------------------------------
# Devices and processes


@dataclass(frozen=True)
class Distributed:
    """This process's place in a `torchrun` job (rank 0 of 1 when run directly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, device_kind: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device_kind == "cuda":
            torch.cuda.set_device(local_rank)
        torch_dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
        return cls(rank, world, local_rank)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        torch_dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: object) -> list:
        if self.world == 1:
            return [value]
        gathered: list = [None] * self.world
        torch_dist.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()

    def close(self) -> None:
        if self.world > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"--device {name}: expected auto, cpu or cuda")
    return torch.device(name)


def rank_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------------------
# Optimiser and schedule


def make_optimizer(model: BertForMaskedLM, config: PretrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights are not decayed (DNABERT's run_pretrain.py)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=config.learning_rate, betas=config.betas, eps=config.eps, fused=device.type == "cuda"
    )


def linear_schedule(warmup_steps: int, total_steps: int):
    """HF's get_linear_schedule_with_warmup: linear warm-up from 0, then linear decay to 0 at total_steps."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


# ----------------------------------------------------------------------------------------------------------
# Checkpoints


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_NAME.fullmatch(p.name))]
    return sorted(found)


def _capture_rng(device: torch.device) -> dict:
    tensors = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"] = {
        "key": numpy_state["state"]["key"].tolist(),
        "pos": int(numpy_state["state"]["pos"]),
    }
    version, internal, gauss = random.getstate()
    return {"tensors": tensors, "python": [version, list(internal), gauss], "numpy": numpy_state}


def _restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["tensors"]["torch"])
    if device.type == "cuda" and "cuda" in state["tensors"]:
        torch.cuda.set_rng_state(state["tensors"]["cuda"], device)
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {
        "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
        "pos": numpy_state["state"]["pos"],
    }
    np.random.set_state(numpy_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, entries in state["state"].items()
        for name, value in entries.items()
    }
    return tensors, state["param_groups"]


def _load_optimizer(optimizer: torch.optim.Optimizer, path: Path, groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(path).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _metrics_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _number(text: str) -> int | float | str:
    if text == "":
        return text
    try:
        return int(text)
    except ValueError:
        return float(text)


def _read_metrics(text: str) -> list[dict]:
    return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(io.StringIO(text))]


# ----------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Progress:
    """What a checkpoint must carry besides model and optimiser (JSON-able)."""

    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    metrics: list[dict] = dataclasses.field(default_factory=list)


class StopRequests:
    """SIGTERM/SIGUSR1 set a flag; the loop checkpoints and exits at the next step boundary."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signal.Signals(signum).name

    def __enter__(self) -> StopRequests:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


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

    def reset(self) -> None:
        self.loss.zero_()
        self.correct.zero_()
        self.masked, self.tokens, self.positions, self.seconds = 0, 0, 0, 0.0


class Trainer:
    def __init__(
        self, config: PretrainConfig, device: torch.device, dist: Distributed, stop: StopRequests
    ) -> None:
        self.config, self.device, self.dist, self.stop = config, device, dist, stop
        self.started = time.monotonic()
        self.log = print if dist.main else (lambda *a, **k: None)
        train = ChunkStore.open(config.chunks, "train")
        valid = ChunkStore.open(config.chunks, "valid")
        self.train_lengths = token_lengths(train.lengths, config.k)
        self.valid_lengths = token_lengths(valid.lengths, config.k)
        check_fits(self.train_lengths, f"{config.chunks}/train")
        check_fits(self.valid_lengths, f"{config.chunks}/valid")
        micro_per_step = config.global_batch // config.batch_size
        if micro_per_step % dist.world:
            raise UserError(
                f"--global-batch {config.global_batch} = {micro_per_step} micro-batches of {config.batch_size}, "
                f"not divisible among {dist.world} processes"
            )
        buckets = LengthBuckets(self.train_lengths, config.batch_size, config.seed, config.bucket_batches)
        self.layout = StepLayout(buckets, micro_per_step // dist.world, dist.world)
        if self.layout.steps_per_epoch == 0:
            raise UserError(
                f"{config.chunks}: the train split has {len(train)} chunks, fewer than one global batch "
                f"({config.global_batch}); lower --global-batch or chunk more sequence"
            )
        self.fingerprint = config.fingerprint(len(train), int(train.offsets[-1] - train.offsets[0]))

        self.model = build_model(config.preset, config.k, config.seed, config.dropout).to(device)
        self.module: torch.nn.Module = SparseMLMLoss(self.model)
        if dist.world > 1:
            device_ids = [device.index] if device.type == "cuda" else None
            self.module = DistributedDataParallel(self.module, device_ids=device_ids)
        if config.compile:
            self.module.compile(dynamic=True)
        self.optimizer = make_optimizer(self.model, config, device)
        self.scheduler = LambdaLR(self.optimizer, linear_schedule(config.warmup_steps, config.steps))
        self.progress = Progress()
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
        self.train_collator = self._collator()
        self.eval_set = self._eval_set()
        self.tensorboard = None  # opened once the run knows where it starts

    # --- set-up ---

    def _collator(self) -> MLMCollator:
        c = self.config
        if c.masks is not None:
            store = MaskStore.open(c.masks)
            if store.strategy != c.strategy:
                raise UserError(
                    f"{c.masks}: masks of strategy '{store.strategy}', but --strategy is '{c.strategy}'"
                )
            if store.meta.get("split", "train") != "train" or len(store) != len(self.train_lengths):
                raise UserError(
                    f"{c.masks}: masks for {len(store)} chunks, the train split of {c.chunks} has "
                    f"{len(self.train_lengths)}; were they made from this chunk store's train split?"
                )
            return MLMCollator(k=c.k, seed=store.seed, mask_store=store)
        return MLMCollator(k=c.k, strategy=c.strategy, ranks=c.ranks, seed=c.mask_seed, ngrams=c.ngrams)

    def _eval_set(self) -> list[dict]:
        """Validation batches, collated once: fixed chunks, fixed masks (epoch 0, `eval_strategy`)."""
        c = self.config
        keys = eval_batches(self.valid_lengths, c.eval_chunks, c.batch_size, c.seed)[
            self.dist.rank :: self.dist.world
        ]
        dataset = ChunkTokens(c.chunks, "valid", c.k)
        ranks = c.ranks if c.eval_strategy.startswith("genemask") else None
        ngrams = c.ngrams if c.eval_strategy == "pmi-vocab" else None
        collate = WithMaskedPositions(
            MLMCollator(k=c.k, strategy=c.eval_strategy, ranks=ranks, seed=c.seed, ngrams=ngrams)
        )
        return [collate([dataset[key] for key in batch]) for batch in keys]

    def _open_tensorboard(self) -> None:
        """TensorBoard logs beside the checkpoints, when tensorboard is installed; a resumed run drops the
        events logged after its checkpoint."""
        if self.dist.main and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            log_dir = self.config.checkpoint_dir / "tensorboard"
            self.tensorboard = SummaryWriter(log_dir, purge_step=self.progress.step + 1)

    # --- checkpoints ---

    def save_checkpoint(self) -> Path:
        c, step = self.config, self.progress.step
        target = c.checkpoint_dir / f"step-{step:08d}"
        rng_states = self.dist.gather(_capture_rng(self.device))
        if self.dist.main and not target.exists():
            optimizer_tensors, groups = _optimizer_tensors(self.optimizer)
            epoch, within = self.layout.position(step)
            trainer = {
                "format_version": CHECKPOINT_FORMAT,
                "fingerprint": self.fingerprint,
                "step": step,
                "epoch": epoch,
                "step_in_epoch": within,
                "world_size": self.dist.world,
                "accum": self.layout.accum,
                "tokens": self.progress.tokens,
                "train_seconds": self.progress.train_seconds,
                "scheduler": self.scheduler.state_dict(),
                "optimizer_param_groups": groups,
                "rng": [{key: value for key, value in s.items() if key != "tensors"} for s in rng_states],
            }
            rng_tensors = {
                f"rank{rank}.{name}": tensor
                for rank, s in enumerate(rng_states)
                for name, tensor in s["tensors"].items()
            }
            with atomic_dir(target) as tmp:
                save_model(self.model, str(tmp / "model.safetensors"))
                save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"))
                save_file(rng_tensors, str(tmp / "rng.safetensors"))
                (tmp / "metrics.csv").write_text(_metrics_csv(self.progress.metrics))
                (tmp / "trainer.json").write_text(json.dumps(trainer, indent=1) + "\n")
            for _, old in list_checkpoints(c.checkpoint_dir)[: -c.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.dist.barrier()
        return target

    def resume(self) -> Path | None:
        if self.dist.main and self.config.checkpoint_dir.is_dir():
            for partial in self.config.checkpoint_dir.glob(".step-*.tmp"):  # a save cut short by SIGKILL
                shutil.rmtree(partial, ignore_errors=True)
        checkpoints = list_checkpoints(self.config.checkpoint_dir)
        if not checkpoints:
            torch.manual_seed(rank_seed(self.config.seed, self.dist.rank))
            np.random.seed(rank_seed(self.config.seed, self.dist.rank))
            random.seed(rank_seed(self.config.seed, self.dist.rank))
            return None
        _, path = checkpoints[-1]
        trainer = json.loads((path / "trainer.json").read_text())
        if trainer.get("format_version") != CHECKPOINT_FORMAT:
            raise UserError(
                f"{path}/trainer.json: format_version {trainer.get('format_version')}, expected 1"
            )
        differences = [
            f"{key}: {trainer['fingerprint'].get(key)!r} there, {value!r} now"
            for key, value in self.fingerprint.items()
            if trainer["fingerprint"].get(key) != value
        ]
        if differences:
            raise UserError(
                f"{path}: checkpoint of a run with other settings ({'; '.join(differences)}); "
                f"delete {self.config.checkpoint_dir} or pass another --checkpoint-dir"
            )
        load_model(self.model, str(path / "model.safetensors"), device=str(self.device))
        _load_optimizer(self.optimizer, path / "optimizer.safetensors", trainer["optimizer_param_groups"])
        self.scheduler.load_state_dict(trainer["scheduler"])
        rng_tensors = load_file(path / "rng.safetensors")
        rank = self.dist.rank
        if trainer["world_size"] == self.dist.world:
            state = dict(trainer["rng"][rank])
            prefix = f"rank{rank}."
            state["tensors"] = {k[len(prefix) :]: v for k, v in rng_tensors.items() if k.startswith(prefix)}
            _restore_rng(state, self.device)
        else:
            self.log(
                f"note: {path} was written by {trainer['world_size']} processes, this run has {self.dist.world}; "
                "the data order is unchanged, the dropout RNG is re-seeded"
            )
            torch.manual_seed(rank_seed(self.config.seed + trainer["step"], rank))
        self.progress = Progress(
            trainer["step"],
            trainer["tokens"],
            trainer["train_seconds"],
            _read_metrics((path / "metrics.csv").read_text()),
        )
        return path

    # --- measuring ---

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        count = 0
        for batch in self.eval_set:
            batch = self._to_device(batch)
            with self.autocast:
                stats = sparse_mlm_loss(
                    self.model,
                    batch["input_ids"],
                    batch["attention_mask"],
                    batch["masked_index"],
                    batch["masked_labels"],
                )
            loss_sum += stats.loss_sum
            correct += stats.correct
            count += stats.count
        self.model.train()
        total_loss, total_correct, total_count = self.dist.sum(
            [loss_sum.item(), correct.item(), float(count)], self.device
        )
        if total_count == 0:
            return math.nan, math.nan
        return total_loss / total_count, total_correct / total_count

    def _to_device(self, batch: dict) -> dict:
        return {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}

    def _record(self, row: dict) -> None:
        self.progress.metrics.append({column: row.get(column, "") for column in METRIC_COLUMNS})
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step":
                    self.tensorboard.add_scalar(key, value, row["step"])

    # --- stopping ---

    def _deadline(self) -> float | None:
        minutes = self.config.runtime_minutes
        if minutes is None:
            return None
        margin = self.config.stop_margin_minutes
        if margin is None:
            margin = min(10.0, max(1.0, 0.05 * minutes))
        return self.started + 60.0 * (minutes - margin)

    # --- the loop ---

    def run(self) -> int:
        c, layout = self.config, self.layout
        resumed = self.resume()
        progress = self.progress
        self._open_tensorboard()
        epoch, within = layout.position(progress.step)
        where = f"resumed from {resumed} at epoch {epoch}, step {within} of {layout.steps_per_epoch}"
        self.log(
            f"pretrain {c.preset} / {c.strategy}: {c.steps} steps of {c.global_batch} sequences "
            f"({c.batch_size} x {layout.accum} accumulation x {self.dist.world} processes) on {self.device}; "
            + (where if resumed else "new run"),
            flush=True,
        )
        if progress.step < c.steps and self._train():
            return EXIT_RESUMABLE
        if self.dist.main:
            self._finish()
        self.dist.barrier()
        return 0

    def _train(self) -> bool:
        """Train until the last step; True when stopped early (with a checkpoint)."""
        c, dist = self.config, self.dist
        batches = self.layout.rank_batches(self.progress.step, dist.rank)
        dataset = ChunkTokens(c.chunks, "train", c.k)
        pin = self.device.type == "cuda"
        loader = make_loader(dataset, batches, self.train_collator, workers=c.workers, pin_memory=pin)
        with iterate(loader) as micro_batches:
            return self._train_steps(micro_batches)

    def _train_steps(self, micro_batches: Iterator[dict]) -> bool:
        c, progress, dist, stop = self.config, self.progress, self.dist, self.stop
        deadline, slowest = self._deadline(), 0.0
        window = Window(self.device)
        while progress.step < c.steps:
            began = time.monotonic()
            micro = [next(micro_batches) for _ in range(self.layout.accum)]
            local_masked = sum(int(b["masked_labels"].numel()) for b in micro)
            late = deadline is not None and began + slowest > deadline
            global_masked, global_stop = dist.sum(
                [float(local_masked), float(stop.received is not None or late)], self.device
            )
            if global_stop:
                reason = stop.received or (
                    "the runtime limit" if late else "a stop request on another process"
                )
                path = self.save_checkpoint()
                self.log(
                    f"stopping before step {progress.step + 1} ({reason}): checkpoint {path}", flush=True
                )
                return True
            scale = dist.world / max(global_masked, 1.0)  # DDP averages over ranks; we want the global mean
            for i, batch in enumerate(micro):
                window.count(batch["attention_mask"])  # on the CPU, before the transfer: no GPU sync
                batch = self._to_device(batch)
                defer_sync = dist.world > 1 and i < len(micro) - 1
                with self.module.no_sync() if defer_sync else contextlib.nullcontext(), self.autocast:
                    loss_sum, correct = self.module(
                        batch["input_ids"],
                        batch["attention_mask"],
                        batch["masked_index"],
                        batch["masked_labels"],
                    )
                (loss_sum * scale).backward()
                window.add(loss_sum.detach(), correct)
            window.masked += local_masked
            if c.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.max_grad_norm)
            learning_rate = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            step_seconds = time.monotonic() - began
            window.seconds += step_seconds
            progress.train_seconds += step_seconds
            step, row = progress.step, {}
            if step % c.log_every == 0 or step == c.steps:
                row = self._train_row(window, learning_rate)
            if step % c.eval_every == 0 or step == c.steps:
                valid_loss, valid_accuracy = self.evaluate()
                row |= {"step": step, "valid_loss": valid_loss, "valid_accuracy": valid_accuracy}
                self.log(
                    f"step {step}/{c.steps} valid loss {valid_loss:.4f} accuracy {valid_accuracy:.4f}",
                    flush=True,
                )
            if row:
                self._record(row)
            if c.keep_weights_every and step % c.keep_weights_every == 0 and step < c.steps and dist.main:
                save_weights(self.model, c.checkpoint_dir, step)
            if step % c.checkpoint_every == 0 or step == c.steps:
                self.save_checkpoint()
            slowest = max(slowest, time.monotonic() - began)
        return False

    def _train_row(self, window: Window, learning_rate: float) -> dict:
        """Train metrics over the steps since the last row (summed over processes); resets the window."""
        loss, correct, masked, tokens, positions = self.dist.sum(
            [window.loss.item(), window.correct.item(), window.masked, window.tokens, window.positions],
            self.device,
        )
        self.progress.tokens += int(tokens)
        step = self.progress.step
        row = {
            "step": step,
            "epoch": round(step / self.layout.steps_per_epoch, 4),
            "learning_rate": learning_rate,
            "train_loss": loss / max(masked, 1.0),
            "train_accuracy": correct / max(masked, 1.0),
            "tokens": self.progress.tokens,
            "padding_waste": 1.0 - tokens / max(positions, 1.0),
            "tokens_per_second": tokens / max(window.seconds, 1e-9),
            "train_seconds": round(self.progress.train_seconds, 3),
        }
        self.log(
            f"step {step}/{self.config.steps} loss {row['train_loss']:.4f} accuracy {row['train_accuracy']:.4f} "
            f"lr {learning_rate:.3g} {row['tokens_per_second']:.0f} tokens/s padding {row['padding_waste']:.1%}",
            flush=True,
        )
        window.reset()
        return row

    def _finish(self) -> None:
        c = self.config
        metrics = c.metrics or c.out / "metrics.csv"
        with atomic_dir(c.out) as tmp:
            tokenizer = save_pretrained_model(self.model, tmp, c.k)
            summary = {
                "settings": {
                    key: str(value) if isinstance(value, Path) else value for key, value in vars(c).items()
                },
                "fingerprint": self.fingerprint,
                "steps": self.progress.step,
                "train_tokens": self.progress.tokens,
                "train_seconds": self.progress.train_seconds,
                "final": self.progress.metrics[-1] if self.progress.metrics else {},
                "tokenizer_saved": tokenizer,
            }
            (tmp / "pretrain.json").write_text(json.dumps(summary, indent=2) + "\n")
            if c.metrics is None:
                (tmp / "metrics.csv").write_text(_metrics_csv(self.progress.metrics))
        if c.metrics is not None:
            with atomic_file(metrics) as tmp_file:
                tmp_file.write_text(_metrics_csv(self.progress.metrics))
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.log(f"saved {c.out} (metrics: {metrics})")


def pretrain(config: PretrainConfig) -> int:
    """Run (or continue) one pretraining run: 0 when done, EXIT_RESUMABLE when stopped with a checkpoint."""
    device = resolve_device(config.device)
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)  # exact resume; on CUDA speed wins (bf16, fused kernels)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dist = Distributed.from_env(device.type)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
    try:
        with StopRequests() as stop:  # from the start: a signal during set-up stops before the first step
            return Trainer(config, device, dist, stop).run()
    finally:
        sys.stdout.flush()
        dist.close()
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])
