"""Fine-tuning settings: one definition for the library and the `genemask finetune` CLI (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from genemask.errors import UserError
from genemask.options import setting


@dataclass(frozen=True)
class FinetuneSettings:
    learning_rate: float = setting(1e-4, "peak learning rate", flag="--lr")
    epochs: int = setting(20, "training epochs")
    batch_size: int = setting(5, "sequences per batch")
    warmup_ratio: float = setting(0.1, "linear warm-up fraction of the steps, then linear decay to 0")
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorm weights)")
    dropout: float = setting(0.1, "hidden and attention dropout")
    seed: int = setting(0, "run seed and recorded seed")
    max_length: int = setting(512, "tokens incl. [CLS]/[SEP]")
    random_init: bool = setting(False, "same architecture, random weights (the floor reference)")

    def check(self) -> None:
        if self.learning_rate <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise UserError("expected a positive learning rate, epochs >= 1 and batch size >= 1")
        if not 0 <= self.warmup_ratio <= 1 or not 0 <= self.dropout < 1 or self.weight_decay < 0:
            raise UserError("expected warm-up ratio in [0, 1], dropout in [0, 1) and weight decay >= 0")
        if self.max_length < 3:
            raise UserError(f"--max-length {self.max_length}: expected at least 3 tokens")
