"""Where a training run runs: its device, its place in a `torchrun` job, its seeds and when it must stop.

Stopping early: SIGTERM or SIGUSR1 (SLURM, before preemption or the time limit), SIGINT (Ctrl-C) or the runtime limit
(`runtime_minutes` minus a margin) end the run at the next step boundary with a checkpoint, so a retry
continues where it stopped. The margin (5% of the runtime, 1-10 minutes) is what a planned stop relies on: after
SIGTERM, torchrun gives its workers 30 s and SLURM its job KillWait (30 s by default) before SIGKILL, enough for
one step and a checkpoint at the study's sizes, but not guaranteed.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as torch_dist

from genemask.training.device import choose_device
from genemask.training.settings import STOP_MARGIN_BOUNDS, STOP_MARGIN_FRACTION


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
    """`--device`: auto (says what it chose), cpu, cuda or cuda:N (fails at once, in one line, if CUDA cannot run)."""
    return choose_device(name)


@contextlib.contextmanager
def torch_settings(device: torch.device, threads: int | None) -> Iterator[None]:
    """Threads, and deterministic kernels on CPU (exact resume; on CUDA speed wins: bf16, TF32, fused kernels);
    the previous determinism and thread count come back afterwards."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def rank_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """torch, numpy's legacy global and Python's `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def stop_deadline(
    started: float, runtime_minutes: float | None, margin_minutes: float | None
) -> float | None:
    """The `time.monotonic()` after which no step starts; None without a runtime limit.
    The margin defaults to STOP_MARGIN_FRACTION of the runtime, within STOP_MARGIN_BOUNDS (genemask.training.settings)."""
    if runtime_minutes is None:
        return None
    if margin_minutes is None:
        low, high = STOP_MARGIN_BOUNDS
        margin_minutes = min(high, max(low, STOP_MARGIN_FRACTION * runtime_minutes))
    return started + 60.0 * (runtime_minutes - margin_minutes)


class StopRequests:
    """SIGTERM, SIGUSR1 and SIGINT (Ctrl-C) set a flag; the loop checkpoints and exits at the next step boundary.
    A second SIGINT interrupts at once (KeyboardInterrupt), for a user who will not wait for the step to end."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and self.received == "SIGINT":
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self) -> StopRequests:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
