"""Learning curves: pretrained model names to (run, step), and one figure per task from the few-shot summary."""

from __future__ import annotations

import pandas as pd
import pytest

from genemask.errors import UserError
from genemask.evaluation.published import PretrainedModel
from genemask.evaluation.published import parse_model_name as parse_model
from genemask.report.learning_curves import curves, learning_curve_report


def test_model_names_give_run_and_step():
    assert parse_model("tiny_random_60") == PretrainedModel("tiny", "random", 60, 60)
    assert parse_model("dnabert_genemask-as-released_10000_step2000") == PretrainedModel(
        "dnabert", "genemask-as-released", 2000, 10000
    )
    for other in ("tiny_random-init", "kmer-logreg", "dnabert-6-120k"):
        assert parse_model(other) is None


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
