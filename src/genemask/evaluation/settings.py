"""Fine-tuning settings: one definition for the library and the `genemask finetune` CLI (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from genemask.options import Range, check_ranges, setting

MAX_TOKENS = 512  # the position embeddings of every model here (genemask.training.models.MAX_POSITIONS)

# Equivalence margin of vs_paper (metric units), the default of `results.equivalence_margin`: the median published
# difference between GeneMask and random masking (0.0195 over the 50 cells with both) and the median published std
# (0.020); a reproduction off by more than this could neither confirm nor refute the papers' claims (docs/method.md).
EQUIVALENCE_MARGIN = 0.02


@dataclass(frozen=True)
class FinetuneSettings:
    learning_rate: float = setting(
        1e-4, "peak learning rate", flag="--lr", range=Range(exclusive_minimum=0, maximum=1)
    )
    epochs: int = setting(20, "training epochs", range=Range(minimum=1))
    batch_size: int = setting(5, "sequences per batch", range=Range(minimum=1))
    warmup_ratio: float = setting(key="finetune.warmup_ratio")
    weight_decay: float = setting(key="finetune.weight_decay")
    dropout: float = setting(key="finetune.dropout")
    seed: int = setting(0, "run seed and recorded seed", range=Range(minimum=0))
    max_length: int = setting(512, "tokens incl. [CLS]/[SEP]", range=Range(minimum=3, maximum=MAX_TOKENS))
    random_init: bool = setting(False, "same architecture, random weights (the floor reference)")
    warmup_steps: int | None = setting(
        None, "a fixed number of warm-up steps instead of --warmup-ratio", type=int, range=Range(minimum=0)
    )

    def check(self) -> None:
        check_ranges(self)


def finetune_regime(regimes: dict[str, dict], shots: int | str) -> dict:
    """The hyper-parameter regime of a few-shot run: the one with the smallest max_shots >= its shots; the
    whole training set (`full`) takes the regime with the largest max_shots."""
    if str(shots) == "full":
        return max(regimes.values(), key=lambda regime: regime["max_shots"])
    fitting = [regime for regime in regimes.values() if regime["max_shots"] >= int(shots)]
    if not fitting:
        raise ValueError(f"finetune.regimes: no regime has max_shots >= {shots}")
    return min(fitting, key=lambda regime: regime["max_shots"])
