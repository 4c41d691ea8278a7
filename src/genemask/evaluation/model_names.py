"""The names of fine-tuned models, written and read in one place (the workflow builds them, the tables parse them).

  <preset>_<strategy>_<steps>              a pretraining run's final model        tiny_genemask_60
  <preset>_<strategy>_<steps>_step<N>      the same run's model exported at step N  tiny_genemask_60_step30
  <preset>_random-init                     the preset never pretrained (the floor)  tiny_random-init
  kmer-logreg                              the k-mer logistic-regression baseline
  anything else                            a reference (config `finetune.references`: an HF id or a local path)

Presets hold letters, digits and dots (no `_`); strategies letters, digits, dots and `-`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

KMER_MODEL = "kmer-logreg"
RANDOM_INIT = "random-init"
ModelKind = Literal["pretrained", "random-init", "kmer", "reference"]

_PRESET = r"[A-Za-z0-9.]+"
_PRETRAINED = re.compile(
    rf"^(?P<preset>{_PRESET})_(?P<strategy>[A-Za-z0-9.-]+)_(?P<run_steps>\d+)(?:_step(?P<export>\d+))?$"
)
_RANDOM_INIT = re.compile(rf"^(?P<preset>{_PRESET})_{RANDOM_INIT}$")


@dataclass(frozen=True)
class ModelName:
    """What a model's name says. `steps` are the optimiser steps behind the weights (the export step of an
    exported model); `run_steps` the length of the run it comes from."""

    name: str
    kind: ModelKind
    preset: str | None = None
    strategy: str | None = None
    run_steps: int | None = None
    export_step: int | None = None

    @property
    def steps(self) -> int | None:
        return self.export_step if self.export_step is not None else self.run_steps

    @property
    def suffix(self) -> str:
        """`_<run steps>[_step<N>]`: what models of the same run length and export step share."""
        if self.kind != "pretrained":
            raise ValueError(f"{self.name}: only a pretrained model's name has a steps suffix")
        return f"_{self.run_steps}" + ("" if self.export_step is None else f"_step{self.export_step}")

    def with_strategy(self, strategy: str) -> str:
        """The name of the same preset, steps and export with another strategy (its baseline, say)."""
        return pretrained_name(self.preset, strategy, self.run_steps, self.export_step)


def pretrained_name(preset: str, strategy: str, steps: int, export_step: int | None = None) -> str:
    """`tiny`, `genemask`, 60 -> `tiny_genemask_60`; with export step 30 -> `tiny_genemask_60_step30`."""
    name = f"{preset}_{strategy}_{int(steps)}"
    return name if export_step is None or int(export_step) == int(steps) else f"{name}_step{int(export_step)}"


def random_init_name(preset: str) -> str:
    """`tiny` -> `tiny_random-init`."""
    return f"{preset}_{RANDOM_INIT}"


def parse_model_name(name: str) -> ModelName:
    """Every model name parses: pretrained, random-init, the k-mer baseline or (anything else) a reference."""
    if name == KMER_MODEL:
        return ModelName(name, "kmer")
    found = _RANDOM_INIT.match(name)
    if found:
        return ModelName(name, "random-init", preset=found["preset"])
    found = _PRETRAINED.match(name)
    if found is None:
        return ModelName(name, "reference")
    export = None if found["export"] is None else int(found["export"])
    run_steps = int(found["run_steps"])
    return ModelName(
        name,
        "pretrained",
        preset=found["preset"],
        strategy=found["strategy"],
        run_steps=run_steps,
        export_step=None if export == run_steps else export,
    )


def pretrained_model(name: str) -> ModelName | None:
    """The parsed name of a pretrained model (final or exported); None for any other kind."""
    parsed = parse_model_name(name)
    return parsed if parsed.kind == "pretrained" else None
