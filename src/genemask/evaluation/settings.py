"""Fine-tuning settings: one definition for the library and the `genemask finetune` CLI (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from genemask.errors import UserError
from genemask.options import setting

# Equivalence margin of vs_paper (metric units), the default of `results.equivalence_margin`: the median published
# difference between GeneMask and random masking (0.0195 over the 50 cells with both) and the median published std
# (0.020); a reproduction off by more than this could neither confirm nor refute the papers' claims (docs/method.md).
EQUIVALENCE_MARGIN = 0.02


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
    warmup_steps: int | None = setting(
        None, "a fixed number of warm-up steps instead of --warmup-ratio", type=int
    )

    def check(self) -> None:
        if self.learning_rate <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise UserError("expected a positive learning rate, epochs >= 1 and batch size >= 1")
        if not 0 <= self.warmup_ratio <= 1 or not 0 <= self.dropout < 1 or self.weight_decay < 0:
            raise UserError("expected warm-up ratio in [0, 1], dropout in [0, 1) and weight decay >= 0")
        if self.max_length < 3:
            raise UserError(f"--max-length {self.max_length}: expected at least 3 tokens")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise UserError(f"--warmup-steps {self.warmup_steps}: expected >= 0")


def finetune_regime(regimes: dict[str, dict], shots: int | str) -> dict:
    """The hyper-parameter regime of a few-shot run: the one with the smallest max_shots >= its shots; the
    whole training set (`full`) takes the regime with the largest max_shots."""
    if str(shots) == "full":
        return max(regimes.values(), key=lambda regime: regime["max_shots"])
    fitting = [regime for regime in regimes.values() if regime["max_shots"] >= int(shots)]
    if not fitting:
        raise ValueError(f"finetune.regimes: no regime has max_shots >= {shots}")
    return min(fitting, key=lambda regime: regime["max_shots"])
