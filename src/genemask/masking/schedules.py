"""The schedules of the time-variant strategies (CM-GEMS paper; docs/method.md section 4): which component strategy
each optimiser step uses. A schedule is part of its strategy's registry entry (`Strategy.schedule` builds it), so
the training loop knows none of them by name.

Steps are counted as the training loop counts them: `choose(step)` is asked before optimiser step `step` (0-based,
i.e. after `step` steps), `observe(step, loss)` after the evaluation that follows `step` steps (only for a
schedule that `evaluates`: its validation runs under the masking active at that moment).

- `cm-step`: step t of T uses its second component (`global`) with probability q(t) = floor(t / floor(T/100)) /
  100 (floor(T/100) is taken as at least 1, so runs under 100 steps raise q by 0.01 a step), otherwise its first
  (`random`); one Bernoulli draw per step, from (seed, t) alone, so a resumed run draws the same.
- `cm-gems`: its first component (`genemask`) while fewer than two evaluations exist or while the smallest
  absolute change |PPL_i - PPL_(i-1)| in validation perplexity between consecutive evaluations so far is >= tau;
  from the first evaluation at which it drops below tau, the second (`global`) for the rest of the run. This is
  the released code's rule (`read_file_compute_diff` in curriculum-GeneMask's CM-GEMS_pretraining_code.py): a
  rise counts by its size, like a fall. `switch_step` is the number of steps done at that evaluation; steps
  switch_step+1, ... (1-based) use `global`. Its state (perplexities so far, switch step) goes into the
  checkpoint, so a resumed run switches where an uninterrupted one does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

CM_STEP_LEVELS = 100
MIN_EVALUATIONS = 2
_CM_STEP_STREAM = 0x5EED_0C5E  # keeps the per-step draws apart from other uses of the same seed


class Schedule(Protocol):
    """What the training loop asks of a time-variant strategy's schedule."""

    components: tuple[str, ...]
    evaluates: bool  # validate under the active masking and `observe` the loss

    @property
    def switch_step(self) -> int | None: ...

    def choose(self, step: int) -> str: ...

    def observe(self, step: int, valid_loss: float) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def cm_step_probability(step: int, total_steps: int) -> float:
    """q(t) = floor(t / floor(T/100)) / 100, capped at 1."""
    interval = max(1, total_steps // CM_STEP_LEVELS)
    return min(1.0, (step // interval) / CM_STEP_LEVELS)


@dataclass
class CmStep:
    """`cm-step`: per step, the second component with probability q(t), else the first."""

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
    """`cm-gems`: the first component until validation perplexity changes by less than tau between two
    consecutive evaluations, then the second for good."""

    tau: float = 1.0
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
        if len(self.perplexities) >= MIN_EVALUATIONS and self.smallest_change() < self.tau:
            self.switch_step = step

    def smallest_change(self) -> float:
        """min over consecutive evaluations of |PPL_i - PPL_(i-1)|; inf before two."""
        p = self.perplexities
        return min((abs(p[i] - p[i - 1]) for i in range(1, len(p))), default=math.inf)

    def state_dict(self) -> dict:
        return {
            "perplexities": list(self.perplexities),
            "evaluated_at": list(self.evaluated_at),
            "switch_step": self.switch_step,
        }

    def load_state_dict(self, state: dict) -> None:
        if not state:  # a new run
            return
        self.perplexities = [float(x) for x in state["perplexities"]]
        self.evaluated_at = [int(x) for x in state["evaluated_at"]]
        self.switch_step = state["switch_step"]


# Schedule factories, as registry entries name them: (components, parameters, seed, total_steps) -> Schedule.


def cm_step(components: Sequence[str], parameters: Mapping, *, seed: int, total_steps: int) -> CmStep:
    return CmStep(seed, total_steps, tuple(components))


def cm_gems(components: Sequence[str], parameters: Mapping, *, seed: int, total_steps: int) -> CmGems:
    return CmGems(float(parameters["tau"]), tuple(components))
