"""The option sweep: every numeric option of every subcommand, as the parsers define them (a new option is swept
without a change here), given nan, inf, -1, 0 and a huge value, must end in exit 0 with a finite result or exit 2
with one line; never a traceback, never NaN in what a command wrote.

Most values are refused by the option's type (exit 2 in milliseconds). The rest run the command in-process: the
cheap commands on tiny real inputs, so that what they write is checked; the others on absent inputs, where they
must still end in one line.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

import numpy as np
import pytest

from genemask import cli

VALUES = ("nan", "inf", "-1", "0", "huge")
HUGE = {int: str(10**21), float: "1e30"}
NON_FINITE = re.compile(r"\b(nan|NaN|-?inf|-?Infinity)\b")


def numeric_options() -> list[tuple[str, str]]:
    found = []
    for command, parser in cli.subcommand_parsers().items():
        for action in parser._actions:
            kind = getattr(action.type, "kind", action.type)
            if kind in (int, float) and action.option_strings:
                found.append((command, action.option_strings[0]))
    return found


OPTIONS = numeric_options()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep-inputs")
    rng = np.random.default_rng(0)
    genome = "".join(np.array(list("ACGT"))[rng.integers(0, 4, 3000)])
    (root / "genome.fa").write_text(">chr1\n" + genome + "\n")
    draw = random.Random(0)
    for name in ("train", "test"):
        rows = ["".join(draw.choice("ACGT") for _ in range(70)) + f"\t{label}" for label in (0, 1) * 4]
        (root / f"{name}.tsv").write_text("sequence\tlabel\n" + "\n".join(rows) + "\n")
    return root


def base_arguments(command: str, inputs: Path, out: Path) -> list[str]:
    """Valid other arguments: real tiny inputs for the cheap commands, absent ones for the rest."""
    missing = out / "absent"
    real = {
        "chunk": ["--fasta", f"{inputs}/genome.fa", "--out", f"{out}/chunks"],
        "npmi": ["--fasta", f"{inputs}/genome.fa", "--out", f"{out}/npmi", "--max-n", "4", "--min-count", "2"],
        "kmer-baseline": ["--train", f"{inputs}/train.tsv", "--test", f"{inputs}/test.tsv", "--out",
                          f"{out}/run.json", "--task", "sim-promoter", "--shots", "4"],
        "simulate-genome": ["--out", f"{out}/g.fa.gz", "--length", "10000", "--motifs", ""],
        "download": ["--url", "http://127.0.0.1:9/g.fa.gz", "--out", f"{out}/g.fa.gz", "--retries", "0"],
        "tasks sample": ["--task", "sim-promoter", "--task-dir", str(missing), "--shots", "2", "--seed", "0",
                         "--out", f"{out}/s.tsv"],
        "pretrain-export": ["--run", str(missing), "--checkpoint-dir", str(missing), "--step", "1", "--out",
                            f"{out}/m"],
        "gue finetune": ["--task", "prom_core_all", "--dir", str(missing), "--provenance", f"{missing}.json",
                         "--model", "tiny", "--random-init", "--out", f"{out}/run.json"],
        "finetune": ["--model", "tiny", "--random-init", "--train", str(missing), "--test", str(missing), "--out",
                     f"{out}/run.json", "--task", "sim-promoter", "--shots", "4"],
        "masks": ["--chunks", str(missing), "--out", f"{out}/masks", "--strategy", "random"],
    }  # fmt: skip
    if command in real:
        return real[command].copy()
    arguments = []
    for action in cli.subcommand_parsers()[command]._actions:
        if action.required and action.option_strings:
            arguments += [
                action.option_strings[0],
                str(action.choices[0]) if action.choices else str(missing),
            ]
    return arguments


def sweep_value(command: str, flag: str, value: str) -> str:
    parser = cli.subcommand_parsers()[command]
    action = next(a for a in parser._actions if flag in a.option_strings)
    return HUGE[getattr(action.type, "kind", action.type)] if value == "huge" else value


def _outputs(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and p.suffix in {".json", ".tsv", ".csv", ".txt"}]


@pytest.mark.parametrize(("command", "flag"), OPTIONS, ids=[f"{c} {f}" for c, f in OPTIONS])
def test_a_numeric_option_never_ends_in_a_traceback_or_nan(command, flag, inputs, tmp_path, capsys):
    for value in VALUES:
        out = tmp_path / value
        out.mkdir()
        arguments = base_arguments(command, inputs, out)
        if flag in arguments:  # the swept option replaces the base value (argparse keeps the last)
            index = arguments.index(flag)
            del arguments[index : index + 2]
        given = sweep_value(command, flag, value)
        argv = [*command.split(), *arguments, f"{flag}={given}"]
        try:
            code = cli.main(argv)
        except Exception as error:  # noqa: BLE001 - the sweep's point: any exception is a traceback
            pytest.fail(f"genemask {' '.join(argv)}: {type(error).__name__}: {error}")
        err = capsys.readouterr().err
        assert "Traceback" not in err, f"{argv}: {err}"
        assert code in (0, 2), f"{argv}: exit {code}: {err}"
        if code == 2:
            assert len(err.strip().splitlines()) == 1, f"{argv}: {err}"
        else:
            for path in _outputs(out):
                assert not NON_FINITE.search(path.read_text()), f"{argv}: {path} holds a non-finite number"


def test_the_sweep_covers_every_command_with_numbers():
    commands = {command for command, _ in OPTIONS}
    assert {
        "chunk",
        "finetune",
        "kmer-baseline",
        "masks",
        "motifs",
        "npmi",
        "pretrain",
        "gue finetune",
    } <= commands
    assert len(OPTIONS) > 80
    assert all(isinstance(parser, argparse.ArgumentParser) for parser in cli.subcommand_parsers().values())
