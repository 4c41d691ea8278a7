"""One definition per setting: every command-line option that is a config key has the schema's default and range;
numbers parse finite and in range; the config check refuses what the stages refuse, naming the key."""

from __future__ import annotations

import argparse
import copy
import math
import re
from pathlib import Path

import pytest
import yaml

from genemask import cli
from genemask.config import SCHEMA, load_schema, schema_keys, validate_config
from genemask.errors import UserError
from genemask.options import INT64_MAX, Range, number_type, schema_setting

REPO = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())

# Options that name a config key for its range and description but keep another default, and why.
OWN_DEFAULTS = {
    (
        "chunk",
        "--random-sampling-coverage",
    ): "0 = off; the workflow turns the pass on (chunking.random_sampling)",
    ("gue finetune", "--lr"): "None = the recipe's, which is the schema default",
    ("gue finetune", "--batch-size"): "None = the recipe's, which is the schema default",
    ("gue finetune", "--warmup-steps"): "None = the recipe's, which is the schema default",
    ("masks", "--centre-probability"): "None = the strategy's (its registry entry, checked in test_registry)",
    ("masks", "--all-high-below"): "None = the strategy's",
    ("masks", "--mask-fraction"): "None = the strategy's",
    ("pretrain", "--steps"): "one run's steps: the schema's list holds one per run",
    ("pretrain", "--betas"): "a tuple, the schema's list",
}


PARSERS = cli.subcommand_parsers()


def keyed_options():
    for command, parser in PARSERS.items():
        for action in parser._actions:
            if getattr(action, "config_key", None):
                yield command, action


def test_the_commands_name_config_keys():
    keyed = {(command, action.option_strings[0]) for command, action in keyed_options()}
    assert len(keyed) >= 50 and ("motifs", "--threshold") in keyed and ("finetune", "--weight-decay") in keyed
    assert set(OWN_DEFAULTS) <= keyed


@pytest.mark.parametrize(("command", "action"), list(keyed_options()), ids=lambda x: getattr(x, "dest", x))
def test_every_option_has_its_config_key_s_default_and_range(command, action):
    node = schema_setting(action.config_key)
    flag = action.option_strings[0]
    default = action.default
    if (command, flag) in OWN_DEFAULTS:
        if isinstance(node["default"], list) and default is not None:
            assert default in node["default"] or list(default) == node["default"]
    else:
        assert default == node["default"], (
            f"genemask {command} {flag}: default {default!r}, schema {node['default']!r}"
        )
    if node.get("type") in ("number", "integer") or "integer" in node.get("type", []):
        assert action.type.range == Range.from_schema(node), f"genemask {command} {flag}"


def test_motifs_threshold_has_one_default():
    threshold = next(a for a in PARSERS["motifs"]._actions if "--threshold" in a.option_strings)
    from genemask.motifs.enrichment import DEFAULT_THRESHOLD

    assert threshold.default == DEFAULT_THRESHOLD == schema_setting("motifs.threshold")["default"] == 0.95
    assert "0.95" in cli.build_parser("motifs")._subparsers._group_actions[0].choices["motifs"].format_help()


def test_every_numeric_option_refuses_nan_and_inf():
    for command, parser in PARSERS.items():
        for action in parser._actions:
            kind = getattr(action.type, "kind", None)
            if action.type in (int, float):
                pytest.fail(f"genemask {command} {action.option_strings}: a bare {action.type.__name__} type")
            if kind is float:
                for text in ("nan", "inf", "-inf"):
                    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
                        action.type(text)


def test_help_numbers_come_from_the_definitions():
    """A number the help calls a default is the option's default or its config key's, or a definition's the help
    reads (a strategy's registry entry, the stop margin); no copies (the GUE help once said 3e-5 by hand)."""
    from genemask.masking import registry
    from genemask.training.settings import STOP_MARGIN_FRACTION

    definitions = {str(value) for entry in registry.REGISTRY.values() for value in entry.defaults.values()}
    definitions.add(f"{STOP_MARGIN_FRACTION * 100:g}")
    for command, parser in PARSERS.items():
        for action in parser._actions:
            for number in re.findall(r"default[^0-9(]*?\b(\d[\d.e-]*)", action.help or ""):
                known = {str(action.default), *definitions}
                key = getattr(action, "config_key", None)
                if key:
                    known.add(str(schema_setting(key)["default"]))
                assert number.rstrip(".") in known, (
                    f"genemask {command} {action.option_strings}: {action.help}"
                )


@pytest.mark.parametrize(
    ("kind", "valid", "text", "message"),
    [
        (float, Range(minimum=0), "nan", "expected a finite number >= 0, got nan"),
        (float, Range(), "inf", "expected a finite number, got inf"),
        (float, Range(exclusive_minimum=0, exclusive_maximum=1), "1", "in (0, 1), got 1.0"),
        (int, Range(minimum=1), "0", "expected an integer >= 1, got 0"),
        (int, Range(minimum=3, maximum=6), "7", "expected an integer in 3..6, got 7"),
        (int, Range(), str(10**21), "expected an integer, got 1000000000000000000000"),
        (int, Range(), "1.5", "expected an integer, got '1.5'"),
    ],
)
def test_number_types_refuse_with_one_line(kind, valid, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        number_type(kind, valid)(text)
    assert str(refused.value).endswith(message) and "\n" not in str(refused.value)
    assert number_type(int, Range())(str(INT64_MAX)) == INT64_MAX


def test_a_bad_option_is_one_line_and_exit_2(capsys):
    assert cli.main(["finetune", "--model", "m", "--train", "a", "--test", "b", "--out", "c", "--task", "t",
                     "--shots", "10", "--weight-decay", "nan"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "argument --weight-decay: expected a finite number in [0, 1], got nan" in err
    )


def _with(edit: dict) -> dict:
    config = copy.deepcopy(DEMO)
    for dotted, value in edit.items():
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return config


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"finetune.weight_decay": math.nan}, "finetune.weight_decay: expected a finite number, got nan"),
        ({"finetune.regimes": {"few": {"max_shots": 10, "learning_rate": math.nan, "epochs": 1, "batch_size": 1}}},
         "finetune.regimes.few.learning_rate: expected a finite number, got nan"),
        ({"pretrain.betas": [0.9, math.nan]}, r"pretrain.betas\[1\]: expected a finite number, got nan"),
        ({"finetune.dropout": 1}, "finetune.dropout: 1 is greater than or equal to the maximum of 1"),
        ({"masking.random.centre_probability": 1}, "masking.random.centre_probability: 1 is greater than or equal"),
        ({"pretrain.steps": [10**30]}, "pretrain.steps.0: 10+ is greater than the maximum"),
        ({"pretrain.steps": []}, "pretrain.steps: .* should be non-empty"),
        ({"chunking.seed": -1}, "chunking.seed: -1 is less than the minimum of 0"),
        ({"npmi.min_count": 10**21}, "npmi.min_count: expected an integer of at most 2\\^63-1"),
        ({"motifs.threshold": 0}, "motifs.threshold: 0 is less than or equal to the minimum of 0"),
    ],
)  # fmt: skip
def test_the_config_check_refuses_what_a_stage_refuses(edit, message):
    with pytest.raises(UserError, match=message) as refused:
        validate_config(_with(edit), "c.yaml")
    assert "\n" not in str(refused.value) and str(refused.value).startswith("c.yaml: ")


def test_every_numeric_schema_key_has_a_range_or_says_why_not():
    """A number without bounds is a setting nobody thought about; seeds, sizes and rates all have a floor."""
    unbounded = [
        key
        for key, node in schema_keys(load_schema(SCHEMA))
        if node.get("type") in ("number", "integer")
        and not set(node) & {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}
    ]
    assert unbounded == []


def test_the_presets_are_one_table():
    """Adding a model size is one entry of PRESETS: the CLI choices, the workflow's wildcard and the estimate read
    it; the schema's enum (which cannot read Python) is kept equal here."""
    from genemask.estimate import assumed_mfu, presets
    from genemask.training.settings import PRESETS, preset_pattern

    assert sorted(schema_setting("pretrain.architectures")["enum"]) == sorted(PRESETS)
    assert presets() == tuple(PRESETS) and all(0 < assumed_mfu(name) < 1 for name in PRESETS)
    assert re.fullmatch(preset_pattern(), "logo") and not re.fullmatch(preset_pattern(), "logo2")
    preset = next(a for a in PARSERS["pretrain"]._actions if "--preset" in a.option_strings)
    assert tuple(preset.choices) == tuple(PRESETS)
    smk = (REPO / "workflow" / "rules" / "pretrain.smk").read_text()
    assert "tiny|logo" not in smk and smk.count("arch=preset_pattern()") == 2
