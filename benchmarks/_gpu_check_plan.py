"""What the GPU check runs and for how long: `Plan.full()` is the 8-minute GPU check, `Plan.tiny()` the same code
path on the CPU in about a minute. A module of its own, imported by gpu_check.py and its section modules, so that
none of them imports another back (a module, not a benchmark: `make bench` skips files starting with `_`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


PUBLISHED_MICRO_BATCH = 10  # sequences per GPU in the published run (docs/method.md section 5)


def study_batch() -> tuple[int, int]:
    """The published micro-batch, and the study's global batch (config/config.yaml's pretrain.global_batch); the
    study itself fits its micro-batch to the GPU (`batch_size: auto`), timed separately."""
    pretrain = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["pretrain"]
    micro = pretrain["batch_size"]
    return (PUBLISHED_MICRO_BATCH if micro == "auto" else int(micro)), int(pretrain["global_batch"])


@dataclass(frozen=True)
class Plan:
    presets: tuple[str, ...] = ("dnabert", "logo")
    micro_batch: int = PUBLISHED_MICRO_BATCH
    global_batch: int = (
        1000  # the study's; the `auto` runs use it, so that auto's accumulation is the real one
    )
    timing_accumulation: int = 4  # micro-batches per step in the study-micro-batch runs
    timing_steps: int = 12
    timing_log_every: int = 3  # rows after the first are the steady state (the first holds start-up, compile)
    auto_steps: int = 4
    sync_steps: tuple[int, int] = (
        2,
        5,
    )  # syncs per step = difference of two runs / difference of their steps
    eager_cap: float = 40.0  # seconds per `genemask pretrain` run
    compiled_cap: float = 60.0  # torch.compile's warm-up included
    compile_backend: str | None = (
        None  # None: the CLI's own (inductor); tiny: eager (no C++ build on a small CPU)
    )
    pretrain_preset: str = "logo"  # the stop-and-resume section
    pretrain_steps: int = 300
    pretrain_batch: int = 16
    stop_at_step: int = 5
    genome_length: int = 600_000
    chunk_max_length: int = 511  # nt; the published chunk law
    finetune_shots: int = 50  # enough to learn the planted motif, so that both sides converge and compare
    finetune_test: int = 400
    finetune_epochs: int = 10
    finetune_lr: float = 5e-4
    ddp_preset: str = "dnabert"
    ddp_steps: int = 12
    workers: int = 2  # data loader workers of the in-process pretraining runs
    threads: int = 8  # torch CPU threads, here and in the `genemask` subprocesses
    budget_seconds: float = 450.0  # from after the torch import: 8 minutes in all, start-up included
    # One GPU: 30 + 150 + 100 + 90 + 60 = 430 s of caps within the budget (DDP runs only with two or more).
    caps: dict | None = None  # seconds per section (throughput: per preset)

    @classmethod
    def full(cls) -> Plan:
        micro, global_ = study_batch()
        return cls(
            micro_batch=micro,
            global_batch=global_,
            caps={"environment": 30, "dnabert": 150, "logo": 100, "resume": 90, "finetune": 60, "ddp": 60},
        )

    @classmethod
    def tiny(cls) -> Plan:
        return cls(
            presets=("tiny",),
            micro_batch=4,
            global_batch=8,
            timing_accumulation=2,
            timing_steps=2,
            timing_log_every=1,
            auto_steps=2,
            sync_steps=(1, 2),
            eager_cap=40.0,
            compiled_cap=60.0,
            compile_backend="eager",  # inductor's C++ build takes minutes on a small CPU; eager still traces
            pretrain_preset="tiny",
            pretrain_steps=12,
            pretrain_batch=4,
            stop_at_step=3,
            genome_length=20_000,
            chunk_max_length=64,
            finetune_shots=5,
            finetune_test=40,
            finetune_epochs=2,
            ddp_preset="tiny",
            ddp_steps=4,
            workers=0,
            threads=1,  # more than the free cores makes torch's CPU kernels spin and crawl
            budget_seconds=300.0,
            caps={"environment": 30, "tiny": 90, "resume": 120, "finetune": 90, "ddp": 60},
        )
