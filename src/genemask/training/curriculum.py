"""Time-variant masking (CM-GEMS paper; method.md section 4): which component strategy each optimiser step uses.

The component masks are precomputed like any other (one mask store per component); the loader collates every
micro-batch once per component (`ComponentBatches`), so it can run ahead of the choice, and the training loop
takes the component its curriculum names for the step. Steps are counted as the loop counts them: `choose(step)`
is asked before optimiser step `step` (0-based, i.e. after `step` steps), `observe(step, loss)` after the
evaluation that follows `step` steps.

- `cm-step`: step t of T uses `global` with probability q(t) = floor(t / floor(T/100)) / 100 (floor(T/100) is
  taken as at least 1, so runs under 100 steps raise q by 0.01 a step), otherwise `random`; one Bernoulli draw per
  step, from (seed, t) alone, so a resumed run draws the same.
- `cm-gems`: `genemask` while fewer than two evaluations exist or while the smallest fall in validation
  perplexity (exp of the loss, measured with the masking active at that moment) between consecutive evaluations
  is >= tau; from the first evaluation at which it drops below tau (a rise counts as a negative fall: perplexity
  has stopped falling), `global` for the rest of the run. `switch_step` is the number of steps done at that
  evaluation; steps switch_step+1, ... (1-based) use `global`. Its state (perplexities so far, switch step) goes
  into the checkpoint, so a resumed run switches where an uninterrupted one does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

CM_STEP_LEVELS = 100
DEFAULT_TAU = 1.0
MIN_EVALUATIONS = 2
_CM_STEP_STREAM = 0x5EED_0C5E  # keeps the per-step draws apart from other uses of the same seed


def cm_step_probability(step: int, total_steps: int) -> float:
    """q(t) = floor(t / floor(T/100)) / 100, capped at 1."""
    interval = max(1, total_steps // CM_STEP_LEVELS)
    return min(1.0, (step // interval) / CM_STEP_LEVELS)


@dataclass
class CmStep:
    """`cm-step`: per step, `global` with probability q(t), else `random`."""

    seed: int
    total_steps: int
    components: tuple[str, ...] = ("random", "global")
    evaluates: bool = False  # needs no validation under its own masking

    def choose(self, step: int) -> str:
        u = np.random.default_rng([self.seed, step, _CM_STEP_STREAM]).random()
        return self.components[1] if u < cm_step_probability(step, self.total_steps) else self.components[0]

    def observe(self, step: int, valid_loss: float) -> None:
        pass

    @property
    def switch_step(self) -> None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class CmGems:
    """`cm-gems`: `genemask` until validation perplexity stops falling by tau, then `global` for good."""

    tau: float = DEFAULT_TAU
    components: tuple[str, ...] = ("genemask", "global")
    evaluates: bool = True  # validation under the active masking drives the switch
    perplexities: list[float] = field(default_factory=list)
    evaluated_at: list[int] = field(default_factory=list)
    switch_step: int | None = None

    def choose(self, step: int) -> str:
        switched = self.switch_step is not None and step >= self.switch_step
        return self.components[1] if switched else self.components[0]

    def observe(self, step: int, valid_loss: float) -> None:
        """Record the validation loss after `step` steps under the active masking; switch when due."""
        if self.switch_step is not None or not math.isfinite(valid_loss):
            return
        self.perplexities.append(math.exp(valid_loss))
        self.evaluated_at.append(step)
        if len(self.perplexities) >= MIN_EVALUATIONS and self.smallest_fall() < self.tau:
            self.switch_step = step

    def smallest_fall(self) -> float:
        """min over consecutive evaluations of (previous perplexity - next perplexity); inf before two."""
        p = self.perplexities
        return min((p[i - 1] - p[i] for i in range(1, len(p))), default=math.inf)

    def state_dict(self) -> dict:
        return {
            "perplexities": list(self.perplexities),
            "evaluated_at": list(self.evaluated_at),
            "switch_step": self.switch_step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.perplexities = [float(x) for x in state["perplexities"]]
        self.evaluated_at = [int(x) for x in state["evaluated_at"]]
        self.switch_step = state["switch_step"]


Curriculum = CmStep | CmGems


def make_curriculum(
    strategy: str, components: Sequence[str], *, seed: int, total_steps: int, parameters: Mapping
) -> Curriculum:
    """The curriculum of a time-variant strategy, with the components and parameters its registry entry gives."""
    if strategy == "cm-step":
        return CmStep(seed, total_steps, tuple(components))
    if strategy == "cm-gems":
        return CmGems(float(parameters.get("tau", DEFAULT_TAU)), tuple(components))
    raise ValueError(f"no curriculum for strategy '{strategy}'")


class ComponentBatches:
    """A collator that collates each micro-batch once per component strategy (same sequences, other masks)."""

    def __init__(self, collators: Mapping[str, Callable[[list[dict]], dict]]) -> None:
        self.collators = dict(collators)

    def __call__(self, items: list[dict]) -> dict[str, dict]:
        return {name: collate(items) for name, collate in self.collators.items()}
