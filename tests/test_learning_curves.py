"""Learning curves: pretrained model names to (run, step), and one figure per task from the few-shot summary."""

from __future__ import annotations

import pandas as pd
import pytest

from genemask.errors import UserError
from genemask.evaluation.model_names import (
    ModelName,
    parse_model_name,
    pretrained_model,
    pretrained_name,
    random_init_name,
)
from genemask.report.learning_curves import curves, learning_curve_report


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tiny_random_60", ModelName("tiny_random_60", "pretrained", "tiny", "random", 60)),
        (
            "dnabert_genemask-as-released_10000_step2000",
            ModelName(
                "dnabert_genemask-as-released_10000_step2000",
                "pretrained",
                "dnabert",
                "genemask-as-released",
                10000,
                2000,
            ),
        ),
        ("logo_cm-gems_500", ModelName("logo_cm-gems_500", "pretrained", "logo", "cm-gems", 500)),
        ("tiny_random-init", ModelName("tiny_random-init", "random-init", "tiny")),
        ("kmer-logreg", ModelName("kmer-logreg", "kmer")),
        ("dnabert-6-120k", ModelName("dnabert-6-120k", "reference")),
        ("zhihan1996/DNABERT-2-117M", ModelName("zhihan1996/DNABERT-2-117M", "reference")),
        ("my_model", ModelName("my_model", "reference")),
    ],
)
def test_every_kind_of_model_name_parses_and_formats_back(name, expected):
    parsed = parse_model_name(name)
    assert parsed == expected
    if parsed.kind == "pretrained":
        assert pretrained_name(parsed.preset, parsed.strategy, parsed.run_steps, parsed.export_step) == name
        assert pretrained_model(name) == parsed
    else:
        assert pretrained_model(name) is None
    if parsed.kind == "random-init":
        assert random_init_name(parsed.preset) == name


def test_exported_models_know_their_steps_and_run():
    exported = parse_model_name("tiny_genemask_60_step30")
    assert (exported.steps, exported.run_steps, exported.suffix) == (30, 60, "_60_step30")
    assert exported.with_strategy("random") == "tiny_random_60_step30"
    assert parse_model_name("tiny_genemask_60").suffix == "_60"
    assert pretrained_name("tiny", "random", 60, 60) == "tiny_random_60"  # an export at the end is the run


def summary() -> pd.DataFrame:
    rows = []
    for model, value in (("tiny_random_60_step30", 0.2), ("tiny_random_60", 0.3), ("tiny_genemask_60", 0.5)):
        for shots in (10, 50):
            rows.append(
                dict(model=model, task="sim-promoter", shots=shots, metric="mcc", mean=value, std=0.1)
            )
    rows.append(dict(model="kmer-logreg", task="sim-promoter", shots=10, metric="mcc", mean=0.4, std=0.0))
    return pd.DataFrame(rows).assign(n_seeds=2)


def test_curves_keep_pretrained_models_with_their_steps():
    data = curves(summary())
    assert sorted(set(zip(data.strategy, data.step, strict=True))) == [
        ("genemask", 60),
        ("random", 30),
        ("random", 60),
    ]


def test_one_figure_per_task(tmp_path):
    path = tmp_path / "fewshot_summary.csv"
    summary().to_csv(path, index=False)
    (out,) = learning_curve_report(path, ["sim-promoter"], tmp_path / "curves")
    assert out == tmp_path / "curves" / "sim-promoter.png" and out.stat().st_size > 10_000
    summary().drop(columns="std").to_csv(path, index=False)
    with pytest.raises(UserError, match="missing columns std"):
        learning_curve_report(path, ["sim-promoter"], tmp_path / "curves")
