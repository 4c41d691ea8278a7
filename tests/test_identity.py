"""One run identity: each setting listed in genemask.training.identity changes both the workflow's checkpoint
folder (a new run is planned) and the checkpoint fingerprint (a direct resume is refused); every other setting
changes neither."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest
import torch

from genemask.config import load_config, load_schema, schema_keys
from genemask.errors import UserError
from genemask.masking import registry
from genemask.training.checkpoints import (
    Progress,
    capture_rng,
    check_same_run,
    fingerprint,
    read_latest_checkpoint,
    write_checkpoint,
)
from genemask.training.identity import (
    MASK_SETTINGS,
    RUN_SETTINGS,
    run_identity,
    run_setting_names,
)
from genemask.training.settings import PretrainConfig

REPO = Path(__file__).resolve().parents[1]
DEMO = load_config(REPO / "config" / "demo.yaml")
STRATEGIES = ("random", "genemask", "pmi-vocab", "cm-step", "cm-gems")

# A valid other value of each PretrainConfig field (for a cm-gems run).
OTHER_VALUE = {
    "preset": "logo",
    "dropout": 0.2,
    "steps": 11,
    "k": 5,
    "strategy": "cm-step",
    "seed": 3,
    "mask_seed": 4,
    "learning_rate": 1e-4,
    "betas": (0.9, 0.99),
    "eps": 1e-8,
    "weight_decay": 0.1,
    "warmup_steps": 7,
    "max_grad_norm": 0.5,
    "batch_size": 5,
    "global_batch": 20,
    "tau": 0.5,
    "eval_every": 1,
    "eval_chunks": 17,
    "eval_strategy": "genemask",
    "checkpoint_every": 3,
    "keep_checkpoints": 5,
    "keep_weights_every": 2,
    "log_every": 1,
    "runtime_minutes": 30.0,
    "stop_margin_minutes": 2.0,
    "compile": True,
    "workers": 3,
    "threads": 2,
    "device": "cpu",
    "metrics": Path("m.csv"),
    "chunks": Path("other-chunks"),
    "out": Path("other-out"),
    "checkpoint_dir": Path("other-ck"),
    "masks": None,
    "ranks": None,
    "ngrams": None,
}
# Inputs: identified by their content (the fingerprint's digests and the workflow's upstream identities).
INPUTS = {"chunks", "out", "checkpoint_dir", "masks", "ranks", "ngrams", "metrics"}


def run_config(tmp_path: Path, **changes) -> PretrainConfig:
    base = dict(
        chunks=tmp_path,
        out=tmp_path / "o",
        checkpoint_dir=tmp_path / "c",
        strategy="cm-gems",
        global_batch=10,
    )
    return PretrainConfig(**(base | changes))


def test_every_pretrain_field_is_covered_here():
    fields = {f.name for f in dataclasses.fields(PretrainConfig)}
    assert fields == set(OTHER_VALUE), "give the new PretrainConfig field an OTHER_VALUE"
    assert {s.name for s in RUN_SETTINGS} <= fields


@pytest.mark.parametrize("name", sorted(set(OTHER_VALUE) - INPUTS))
def test_a_resume_is_refused_exactly_when_an_identifying_setting_changed(tmp_path, name):
    for strategy in ("cm-gems", "random"):
        before = fingerprint(run_config(tmp_path, strategy=strategy), 60, 6000)
        changes = {"strategy": strategy, name: OTHER_VALUE[name]}
        after = fingerprint(run_config(tmp_path, **changes), 60, 6000)
        if name in run_setting_names(strategy):
            with pytest.raises(UserError, match=rf"\({name}: .* there, .* now\); delete") as refused:
                check_same_run(before, after, tmp_path / "step-1", tmp_path)
            assert "\n" not in str(refused.value)
        else:
            check_same_run(before, after, tmp_path / "step-1", tmp_path)  # resumes


def test_cm_gems_resumed_with_another_eval_interval_is_refused(tmp_path):
    """Stopped at step 3 with --eval-every 2, restarted with --eval-every 1: cm-gems would switch elsewhere."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    saved = fingerprint(run_config(tmp_path, eval_every=2), 60, 6000)
    write_checkpoint(
        tmp_path / "ck",
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        progress=Progress(3),
        fingerprint=saved,
        position={"epoch": 0, "step_in_epoch": 3, "world_size": 1, "accum": 1},
        rng_states=[capture_rng(torch.device("cpu"))],
        keep=2,
    )
    now = fingerprint(run_config(tmp_path, eval_every=1), 60, 6000)
    with pytest.raises(UserError, match=r"other settings \(eval_every: 2 there, 1 now\)"):
        read_latest_checkpoint(
            tmp_path / "ck",
            now,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            device=torch.device("cpu"),
        )
    # the same interval resumes
    same = fingerprint(run_config(tmp_path, eval_every=2), 60, 6000)
    resumed = read_latest_checkpoint(
        tmp_path / "ck",
        same,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        device=torch.device("cpu"),
    )
    assert resumed.progress.step == 3


# --------------------------------------------------------------------------------------------------------------
# The workflow's side: the checkpoint folder's hash (common.smk's run_identity is genemask.training.identity's)


def _changed(value, schema: dict):
    if isinstance(value, bool):
        return not value
    if "enum" in schema:
        return next(option for option in schema["enum"] if option != value)
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2
    if isinstance(value, str):
        return value + "-x"
    if isinstance(value, list):
        return [*value, value[0]] if value else ["chr1"]
    if isinstance(value, dict):
        return {**value, "x": 1}
    return ["chr1"] if value is None else None


def _set(config: dict, key: str, value) -> dict:
    config = copy.deepcopy(config)
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    return config


def _get(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def identifying_keys(strategy: str) -> set[str]:
    """The config keys that identify a run of `strategy`, as genemask.training.identity lists them."""
    keys = {key for key, _ in schema_keys(load_schema()) if key.split(".")[0] == "chunking"}
    keys |= {"genome.source", "genome.fasta", "genome.chromosomes"}
    keys |= {key for key, _ in schema_keys(load_schema()) if key.startswith("genome.simulate.")}
    if registry.reads(strategy):
        keys |= {key for key, _ in schema_keys(load_schema()) if key.startswith("npmi.")}
    keys |= {f"masking.{key}" for key in MASK_SETTINGS}
    for name in [strategy, *registry.mask_strategies([strategy])]:
        keys |= {f"masking.{p.config}" for p in registry.get(name).parameters}
    names = set(run_setting_names(strategy))
    keys |= {
        s.config
        for s in RUN_SETTINGS
        if s.name in names and s.config and not s.config.startswith("wildcard:")
    }
    return keys


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_workflow_plans_a_new_run_exactly_when_an_identifying_key_changed(strategy):
    before = run_identity(DEMO, "tiny", strategy, 10)
    identifying = identifying_keys(strategy)
    for key, schema in schema_keys(load_schema()):
        if key.startswith("genome.simulate.") and DEMO["genome"]["source"] != "simulated":
            continue
        if key.startswith(
            "genome.urls."
        ):  # where a genome is fetched from (its md5 is checked), not what it is
            key, schema = "genome.urls", {}
        after = run_identity(_set(DEMO, key, _changed(_get(DEMO, key), schema)), "tiny", strategy, 10)
        assert (after != before) == (key in identifying), f"{strategy}: changing {key}"
    assert "eval_every" in run_setting_names("cm-gems") and "eval_every" not in run_setting_names("random")
    assert run_identity(DEMO, "logo", strategy, 10) != before != run_identity(DEMO, "tiny", strategy, 20)


def test_settings_the_workflow_leaves_at_their_default_are_not_passed_by_it():
    """A RunSetting without a config key must not be set by the pretraining rule (else the workflow could change
    a run's weights without changing its folder)."""
    shell = (REPO / "workflow" / "rules" / "pretrain.smk").read_text()
    rule = shell.split("rule pretrain_model:", 1)[1].split("\nrule ", 1)[0]
    flags = set(re.findall(r"--([a-z-]+)", rule))
    for setting in RUN_SETTINGS:
        field = next(f for f in dataclasses.fields(PretrainConfig) if f.name == setting.name)
        flag = (field.metadata.get("flag") or f"--{field.name.replace('_', '-')}").lstrip("-")
        if setting.config is None:
            assert flag not in flags, f"pretrain.smk passes --{flag}, but identity lists no config key for it"
