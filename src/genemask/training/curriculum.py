"""Time-variant masking in a training run (CM-GEMS paper; docs/method.md section 4): the run's schedule, the
validation sets it observes, and the metrics it adds.

The schedule comes from the strategy's registry entry (`Strategy.make_schedule`; the schedules themselves are in
`masking/schedules.py`), so nothing here names a strategy. The component masks are precomputed like any other
(one mask store per component); the loader collates every micro-batch once per component
(`training/collators.py`), and the training loop takes the component the schedule names for the step.

In a training run (`training/pretrain.py`): `curriculum_for` gives the run's schedule (None for a time-invariant
strategy), `component_eval_maskers` the validation masks under each component (for a schedule that `evaluates`),
and `curriculum_columns` the metrics of a step (`masking`, `curriculum_valid_loss`, `switch_step`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from genemask.masking import registry
from genemask.masking.schedules import Schedule
from genemask.masking.settings import MaskingSettings
from genemask.masking.store import MaskStore
from genemask.masking.strategies import Masker
from genemask.training.checkpoints import Progress
from genemask.training.settings import PretrainConfig

Curriculum = Schedule


def curriculum_for(config: PretrainConfig) -> Schedule | None:
    """The schedule of a run's time-variant strategy, with its parameters from the settings (a parameter the
    settings do not carry takes its registry default); None for a time-invariant strategy."""
    entry = registry.get(config.strategy)
    if not entry.time_variant:
        return None
    parameters = {name: getattr(config, name, None) for name in entry.defaults}
    return entry.make_schedule(parameters, seed=config.mask_seed, total_steps=config.steps)


def component_eval_maskers(config: PretrainConfig, curriculum: Schedule | None) -> dict[str, Masker]:
    """Maskers of the validation set under each component, for a schedule that validates under the active
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


def curriculum_columns(
    curriculum: Schedule,
    masking: str,
    eval_sets: dict[str, list[dict]],
    row: dict,
    progress: Progress,
    log,
    evaluate_loss: Callable[[list[dict]], float],
) -> dict:
    """A time-variant strategy's metrics: the component of the step just done and, at an evaluation, the loss
    under the active masking that a schedule such as cm-gems switches on (and the switch, when it happens)."""
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
