"""The optimiser and learning-rate schedule of pretraining and fine-tuning."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR


def make_optimizer(
    model: torch.nn.Module,
    learning_rate: float,
    weight_decay: float,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights are not decayed (DNABERT's run_pretrain.py)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, fused=fused)


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, *, warmup_from_zero: bool = True
) -> LambdaLR:
    """Linear warm-up over `warmup_steps`, then linear decay to 0 at `total_steps`.

    `warmup_from_zero`: the first step's rate is 0, as HF's get_linear_schedule_with_warmup (pretraining);
    otherwise it is already 1/warmup_steps of the peak (fine-tuning, whose few steps should all count).
    """
    offset = 0 if warmup_from_zero else 1

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + offset) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return LambdaLR(optimizer, factor)
