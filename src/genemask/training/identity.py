"""What identifies a pretraining run and a mask store: the one list that the workflow's checkpoint folder names
(workflow/rules/common.smk), the checkpoint fingerprint checked on resume (`genemask.training.checkpoints`) and
the rerun tests all read.

A run is identified by the settings that change its weights (`RUN_SETTINGS`), and by its masks' identity
(`mask_identity`): the genome, the chunking, the NPMI settings when the strategy reads them, the shared masking
settings and the strategy's own parameters (the masking registry lists them). Nothing else identifies it: not the
grid lists (other strategies, architectures, step counts, tasks), nor the checkpoint, logging or device settings.
Torch-free, so that Snakemake can import it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from genemask.masking import registry

__all__ = [
    "MASK_SETTINGS",
    "RUN_SETTINGS",
    "RunSetting",
    "genome_identity",
    "mask_identity",
    "run_identity",
    "run_setting_names",
    "run_settings_of_config",
    "settings_hash",
    "strategy_settings",
]


@dataclass(frozen=True)
class RunSetting:
    """One setting that changes a run's weights.

    `name`: the `PretrainConfig` field (the key of the checkpoint fingerprint); `config`: where the workflow's
    config sets it (a dotted key; `wildcard:<name>` when the rule's wildcard names it; None when the workflow
    leaves the command-line default); `only`: None (every run), "time-variant" (only runs of a time-variant
    strategy, whose schedule may read validation: cm-gems switches on validation perplexity, so the evaluation
    interval and set change its weights) or "parameter" (only runs of a strategy with this parameter in its
    registry entry).
    """

    name: str
    config: str | None
    only: str | None = None

    def applies_to(self, strategy: str) -> bool:
        entry = registry.get(strategy)
        if self.only == "time-variant":
            return entry.time_variant
        if self.only == "parameter":
            return self.name in entry.defaults
        return True


RUN_SETTINGS: tuple[RunSetting, ...] = (
    RunSetting("preset", "wildcard:arch"),
    RunSetting("steps", "wildcard:steps"),
    RunSetting("strategy", "wildcard:strategy"),
    RunSetting("dropout", None),
    RunSetting("k", "masking.k"),
    RunSetting("seed", "pretrain.seed"),
    RunSetting("mask_seed", None),
    RunSetting("learning_rate", "pretrain.learning_rate"),
    RunSetting("betas", "pretrain.betas"),
    RunSetting("eps", "pretrain.eps"),
    RunSetting("weight_decay", "pretrain.weight_decay"),
    RunSetting("warmup_steps", "pretrain.warmup_steps"),
    RunSetting("max_grad_norm", None),
    # not batch_size: the micro-batch and the process count leave the sequences of each step alone
    RunSetting("global_batch", "pretrain.global_batch"),
    RunSetting("tau", "masking.cm_gems.tau", only="parameter"),
    RunSetting("eval_every", "pretrain.eval_every", only="time-variant"),
    RunSetting("eval_chunks", "pretrain.eval_chunks", only="time-variant"),
)
# The settings under `masking:` shared by every strategy's masks (each strategy adds its own parameters).
MASK_SETTINGS = ("k", "seed", "epochs")


def run_setting_names(strategy: str) -> tuple[str, ...]:
    """The `PretrainConfig` fields that identify a run of `strategy` (its checkpoint fingerprint's settings)."""
    return tuple(s.name for s in RUN_SETTINGS if s.applies_to(strategy))


def run_settings_of_config(config: dict, strategy: str) -> dict[str, Any]:
    """The run's settings under the workflow config's `pretrain:`, by config key (the others are in the mask
    identity or the folder name)."""
    names = set(run_setting_names(strategy))
    return {
        s.config.removeprefix("pretrain."): config["pretrain"][s.config.removeprefix("pretrain.")]
        for s in RUN_SETTINGS
        if s.name in names and s.config and s.config.startswith("pretrain.")
    }


def settings_hash(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]


def _dotted(config: dict, key: str) -> Any:
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def strategy_settings(config: dict, strategy: str) -> dict[str, Any]:
    """The masking settings one strategy's masks depend on: its own parameters (the registry names them and their
    keys under `masking:`), no other strategy's."""
    return {p.name: _dotted(config["masking"], p.config) for p in registry.get(strategy).parameters}


def genome_identity(config: dict) -> dict[str, Any]:
    genome = config["genome"]
    identity = {key: genome[key] for key in ("source", "fasta", "chromosomes")}
    if genome["source"] == "simulated":
        identity["simulate"] = genome["simulate"]
    return identity


def mask_identity(config: dict, strategy: str) -> list:
    """What one strategy's masks depend on; a time-variant strategy's are its components' and its own settings."""
    components = [
        [name, strategy_settings(config, name)]
        for name in registry.mask_strategies([strategy])
        if name != strategy
    ]
    return [
        genome_identity(config),
        config["chunking"],
        config["npmi"] if registry.reads(strategy) else None,
        strategy,
        {key: config["masking"][key] for key in MASK_SETTINGS},
        strategy_settings(config, strategy),
        components,
    ]


def run_identity(config: dict, arch: str, strategy: str, steps: int | str) -> str:
    """Hash of what changes the weights of one pretraining run of a (validated) workflow config: its checkpoint
    folder's name carries it, so a changed setting starts afresh and any other change leaves the run alone."""
    return settings_hash(
        mask_identity(config, strategy), arch, int(steps), run_settings_of_config(config, strategy)
    )
