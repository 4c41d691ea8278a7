"""Time-variant masking (CM-GEMS paper; docs/method.md section 4): which component strategy each optimiser step uses.

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

In a training run (`training/pretrain.py`): `train_collate` gives the train batches' collate function (one
strategy's masks, or every component's), `curriculum_for` the run's curriculum, `component_eval_maskers` the
validation masks under each component, and `curriculum_columns` the metrics of a step (`masking`,
`curriculum_valid_loss`, `switch_step`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genemask.errors import UserError
from genemask.masking import registry
from genemask.masking.collator import MLMCollator
from genemask.masking.settings import MaskingSettings
from genemask.masking.store import MaskStore
from genemask.masking.strategies import Masker
from genemask.training.checkpoints import Progress
from genemask.training.data import WithMaskedPositions
from genemask.training.settings import PretrainConfig

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
        if not state:  # a new run
            return
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


# ----------------------------------------------------------------------------------------------------------
# In a training run


def make_collator(
    k: int, strategy: str, seed: int, *, ranks: Path | None = None, ngrams: Path | None = None
) -> MLMCollator:
    """The masked-LM collator of masks drawn on the fly (train or validation batches)."""
    settings = MaskingSettings(strategy=strategy, k=k, seed=seed, ranks=ranks, ngrams=ngrams)
    return MLMCollator(Masker.from_settings(settings))


def train_collate(config: PretrainConfig, n_train: int) -> Callable[[list[dict]], dict]:
    """Precomputed masks when given (checked against the train split), else masks drawn on the fly; for a
    time-variant strategy one collator per component (ComponentBatches), the choice being made per step."""
    c = config
    components = registry.get(c.strategy).components
    needed = components or (c.strategy,)
    if c.masks is None:
        collators = {
            name: WithMaskedPositions(make_collator(c.k, name, c.mask_seed, ranks=c.ranks, ngrams=c.ngrams))
            for name in needed
        }
    else:
        stores = {}
        for path in c.masks:
            store = MaskStore.open(path)
            if store.k != c.k:
                raise UserError(f"{path}: masks of {store.k}-mer tokens, but --k is {c.k}")
            if store.meta.get("split", "train") != "train" or len(store) != n_train:
                raise UserError(
                    f"{path}: masks for {len(store)} chunks, the train split of {c.chunks} has "
                    f"{n_train}; were they made from this chunk store's train split?"
                )
            stores[store.strategy] = store
        if sorted(stores) != sorted(needed):
            raise UserError(
                f"--masks: stores of {', '.join(sorted(stores))}, but --strategy {c.strategy} needs "
                f"{', '.join(needed)}"
            )
        collators = {name: WithMaskedPositions(MLMCollator(stores[name])) for name in needed}
    return ComponentBatches(collators) if components else collators[c.strategy]


def component_eval_maskers(config: PretrainConfig, curriculum: Curriculum | None) -> dict[str, Masker]:
    """Maskers of the validation set under each component, for a curriculum that validates under the active
    masking (cm-gems): the components' parameters as their mask stores recorded them (defaults otherwise), the
    run's seed, and the inputs they read (--ranks)."""
    if curriculum is None or not curriculum.evaluates:
        return {}
    c = config
    recorded = {}
    for path in c.masks or ():
        store = MaskStore.open(path)
        recorded[store.strategy] = store.meta
    names = {f.name for f in dataclasses.fields(MaskingSettings)} - {
        "strategy",
        "k",
        "seed",
        "ranks",
        "ngrams",
    }
    maskers = {}
    for name in curriculum.components:
        parameters = {key: value for key, value in recorded.get(name, {}).items() if key in names}
        settings = MaskingSettings(
            strategy=name, k=c.k, seed=c.seed, ranks=c.ranks, ngrams=c.ngrams, **parameters
        )
        maskers[name] = Masker.from_settings(settings)
    return maskers


def curriculum_for(config: PretrainConfig) -> Curriculum | None:
    """The curriculum of a run's time-variant strategy, with its parameters from the settings; None otherwise."""
    entry = registry.get(config.strategy)
    if not entry.time_variant:
        return None
    parameters = {name: getattr(config, name) for name in entry.defaults}
    return make_curriculum(
        entry.name, entry.components, seed=config.mask_seed, total_steps=config.steps, parameters=parameters
    )


def curriculum_columns(
    curriculum: Curriculum,
    masking: str,
    eval_sets: dict[str, list[dict]],
    row: dict,
    progress: Progress,
    log,
    evaluate_loss: Callable[[list[dict]], float],
) -> dict:
    """A time-variant strategy's metrics: the component of the step just done and, at an evaluation, the loss
    under the active masking that a curriculum such as cm-gems switches on (and the switch, when it happens)."""
    columns = {"masking": masking}
    if "valid_loss" in row and eval_sets and curriculum.switch_step is None:
        loss = evaluate_loss(eval_sets[masking])
        curriculum.observe(progress.step, loss)
        columns["curriculum_valid_loss"] = loss
        if curriculum.switch_step is not None:
            log(
                f"step {progress.step}: {curriculum.components[1]} masking from the next step on (switch)",
                flush=True,
            )
        progress.curriculum = curriculum.state_dict()
    if curriculum.switch_step is not None:
        columns["switch_step"] = curriculum.switch_step
    return columns
