"""`--batch-size auto`: the micro-batch of a run, fitted to its GPU by trying at start-up.

The global batch is fixed by the config; what the GPU decides is only how many micro-batches (accumulation) a
process splits its share into (settings.batch_geometry). So the search runs over the accumulation: the fewest
micro-batches per process whose largest one passes a real forward and backward pass at the longest sequence of
the run, with 10% of the GPU's memory to spare. A binary search takes about log2(global batch / processes)
trials of a second or so each. Every process searches on its own GPU; the job uses the most careful answer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genemask.training.runtime import Distributed
from genemask.training.settings import BatchGeometry, PretrainConfig, batch_geometry

MEMORY_HEADROOM = 0.10  # of the GPU's memory, left for fragmentation and the optimiser's step


def fits(module: torch.nn.Module, vocab_size: int, device: torch.device, size: int, length: int) -> bool:
    """Whether a forward and backward pass of `size` sequences of `length` tokens fits the GPU (bf16 autocast,
    15% of the positions masked), with MEMORY_HEADROOM to spare. The gradients are dropped afterwards."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    try:
        input_ids = torch.randint(5, vocab_size, (size, length), device=device)
        attention_mask = torch.ones_like(input_ids)
        masked_index = torch.arange(0, size * length, 7, device=device)
        masked_labels = torch.randint(5, vocab_size, masked_index.shape, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss_sum, _correct = module(input_ids, attention_mask, masked_index, masked_labels)
        loss_sum.backward()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        ok = peak <= (1.0 - MEMORY_HEADROOM) * torch.cuda.get_device_properties(device).total_memory
    except torch.cuda.OutOfMemoryError:
        ok = False
    module.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
    return ok


def fewest_micro_batches(global_batch: int, world: int, fits_size: Callable[[int], bool]) -> int:
    """The smallest accumulation whose largest micro-batch fits (binary search; fitting is monotone in size);
    a single sequence per micro-batch when none fits (the first step then fails with CUDA's own message)."""
    low, high = 1, max(1, global_batch // world)  # more micro-batches than that would leave some empty
    while low < high:
        middle = (low + high) // 2
        if fits_size(BatchGeometry(global_batch, world, middle).largest_micro_batch):
            high = middle
        else:
            low = middle + 1
    return low


def choose_geometry(
    config: PretrainConfig,
    module: torch.nn.Module,
    vocab_size: int,
    device: torch.device,
    dist: Distributed,
    longest: int,
    log: Callable[..., None],
) -> BatchGeometry:
    """The run's batch geometry: from the explicit --batch-size, or with auto the preset's default on CPU and
    the fitted micro-batch on CUDA (the same on every process: the most micro-batches any process needs)."""
    if config.batch_size != "auto" or device.type != "cuda":
        return batch_geometry(config.global_batch, dist.world, config.micro_batch_cap)
    batch_geometry(config.global_batch, dist.world, config.global_batch)  # at least one sequence per process
    accum = fewest_micro_batches(
        config.global_batch, dist.world, lambda size: fits(module, vocab_size, device, size, longest)
    )
    geometry = BatchGeometry(config.global_batch, dist.world, max(dist.gather(accum)))
    log(
        f"--batch-size auto: micro-batches of up to {geometry.largest_micro_batch} sequences of {longest} tokens "
        f"fit {torch.cuda.get_device_name(device)} with {MEMORY_HEADROOM:.0%} to spare",
        flush=True,
    )
    return geometry
