"""Few-shot result tables and figures from run records."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genemask import cli
from genemask.errors import UserError
from genemask.evaluation.results import make_results
from genemask.evaluation.run_records import find_run_records, load_runs, write_run_record

# model -> task -> shots -> accuracies over seeds (the other metrics are derived from them)
ACCURACY = {
    "genemask_10k": {"prom-core": {10: [0.70, 0.74], 50: [0.80, 0.84]}, "splice-40": {10: [0.50, 0.60]}},
    "kmer-logreg": {"prom-core": {10: [0.60, 0.60], 50: [0.90, 0.70]}, "splice-40": {10: [0.40, 0.44]}},
}


def metrics_from(accuracy: float) -> dict:
    return {"accuracy": accuracy, "macro_f1": accuracy - 0.1, "mcc": 2 * accuracy - 1, "auc": accuracy + 0.05}


@pytest.fixture
def runs(tmp_path):
    directory = tmp_path / "finetune"
    for model, tasks in ACCURACY.items():
        for task, by_shots in tasks.items():
            for shots, values in by_shots.items():
                for seed, value in enumerate(values):
                    record = {"metrics": metrics_from(value), "n_train": 2 * shots}
                    path = directory / model / task / str(shots) / f"seed{seed}.json"
                    write_run_record(path, record, model=model, task=task, shots=shots, seed=seed)
    return directory


def test_tables_hold_mean_and_std_over_seeds_in_the_papers_layout(runs, tmp_path):
    out = tmp_path / "results"
    make_results([runs], out, model_order=["kmer-logreg"], task_order=["splice-40"])
    table = pd.read_csv(out / "tables" / "fewshot.csv")
    assert list(table.columns) == ["metric", "model", "Splice-40 10", "Prom-core 10", "Prom-core 50"]
    accuracy = table[table.metric == "accuracy"].set_index("model")
    assert list(accuracy.index) == ["kmer-logreg", "genemask_10k"]
    # mean and sample standard deviation (ddof=1) over the seeds
    assert accuracy.at["genemask_10k", "Prom-core 10"] == f"0.720 ± {np.std([0.70, 0.74], ddof=1):.3f}"
    assert accuracy.at["kmer-logreg", "Prom-core 50"] == "0.800 ± 0.141"
    assert accuracy.at["kmer-logreg", "Prom-core 10"] == "0.600 ± 0.000"
    mcc = table[table.metric == "mcc"].set_index("model")
    assert mcc.at["genemask_10k", "Splice-40 10"] == "0.100 ± 0.141"
    assert set(table.metric) == {"accuracy", "macro_f1", "mcc", "auc"}

    summary = pd.read_csv(out / "tables" / "fewshot_summary.csv")
    row = summary[
        (summary.model == "kmer-logreg") & (summary.task == "splice-40") & (summary.metric == "auc")
    ]
    assert row["mean"].item() == pytest.approx(0.47) and row["n_seeds"].item() == 2


def test_markdown_and_latex_say_the_seeds_and_the_legend_once_and_bold_nothing(runs, tmp_path):
    make_results([runs], tmp_path, figures=False)
    markdown = (tmp_path / "tables" / "fewshot.md").read_text()
    assert "| Model | Prom-core 10 | Prom-core 50 | Splice-40 10 |" in markdown
    assert "| genemask_10k | 0.720 ± 0.028 | 0.820 ± 0.028 | 0.550 ± 0.071 |" in markdown
    assert "| kmer-logreg | 0.600 ± 0.000 | 0.800 ± 0.141 | 0.420 ± 0.028 |" in markdown
    assert markdown.count("## ") == 4 and markdown.count("Cells: mean ± std") == 1
    assert (
        "2 seeds per cell" in markdown
        and "0.5 for the 2 seeds here" in markdown
        and "ddof = 1" in markdown
        and "**0." not in markdown
    )
    latex = (tmp_path / "tables" / "fewshot.tex").read_text()
    assert latex.count("\\begin{tabular}{lrrr}") == 4
    assert "\\multicolumn{2}{c}{Prom-core} & \\multicolumn{1}{c}{Splice-40}" in latex
    assert "genemask\\_10k & 0.720 $\\pm$ 0.028" in latex and "\\textbf" not in latex
    assert latex.count("\\begin{table}") == latex.count("\\end{table}") == 4
    assert latex.count("Cells: mean") == 1 and latex.count("as in Table~\\ref{tab:fewshot-accuracy}") == 3


def test_cells_say_their_seeds_where_they_differ(runs, tmp_path):
    extra = {"metrics": metrics_from(0.9)}
    write_run_record(runs / "extra.json", extra, model="kmer-logreg", task="splice-40", shots=10, seed=2)
    make_results([runs], tmp_path, figures=False)
    accuracy = pd.read_csv(tmp_path / "tables" / "fewshot.csv").set_index(["metric", "model"]).loc["accuracy"]
    assert accuracy.at["kmer-logreg", "Splice-40 10"].endswith("[n=3]")
    assert accuracy.at["kmer-logreg", "Prom-core 10"].endswith("[n=2]")
    assert "seeds per cell in brackets" in (tmp_path / "tables" / "fewshot.md").read_text()


def test_the_latex_legend_prints_the_marks_as_the_cells_do(tmp_path):
    """Strategies 3, 7 and 1 sequences in 100 better than random on 4 seeds (with spread): every kind of mark."""
    from genemask.evaluation.paired import MARK_TEXT

    base = [0.50, 0.55, 0.60, 0.52]
    shifts = {"tiny_random_60": [0, 0, 0, 0], "tiny_genemask_60": [0.05, 0.06, 0.05, 0.06]}
    for model, shift in shifts.items():
        for seed, (value, plus) in enumerate(zip(base, shift, strict=True)):
            write_run_record(
                tmp_path / "runs" / f"{model}{seed}.json",
                {"metrics": metrics_from(value + plus)},
                model=model,
                task="prom-core",
                shots=10,
                seed=seed,
            )
    make_results([tmp_path / "runs"], tmp_path / "out", figures=False)
    latex = (tmp_path / "out" / "tables" / "fewshot.tex").read_text()
    caption = latex.split("\\caption{", 1)[1].split("\n", 1)[0]
    body = latex.split("\\midrule", 1)[1]
    used = [mark for mark, text in MARK_TEXT["latex"].items() if text in body]
    assert used  # the genemask cells carry a mark
    for text in MARK_TEXT["latex"].values():
        assert f"{text} q$<$" in caption
    assert "$^{**}$ q$<$0.01" in caption and "**" not in caption.replace("$^{**}$", "")


def test_models_identical_by_design_get_a_note(runs, tmp_path):
    for path in list((runs / "genemask_10k").rglob("*.json")):
        record = json.loads(path.read_text())
        copy = runs / "cm-gems_10k" / path.relative_to(runs / "genemask_10k")
        write_run_record(
            copy,
            {"metrics": record["metrics"]},
            model="cm-gems_10k",
            task=record["task"],
            shots=record["shots"],
            seed=record["seed"],
        )
    make_results([runs], tmp_path, figures=False)
    markdown = (tmp_path / "tables" / "fewshot.md").read_text()
    assert (
        "Identical in every run (as designed where" in markdown
        and "cm-gems_10k = genemask_10k"
        in markdown.replace("genemask_10k = cm-gems_10k", "cm-gems_10k = genemask_10k")
    )
    assert markdown.count("Identical in every run") == 1


def test_one_figure_per_task(runs, tmp_path):
    assert cli.main(["results", "--runs", str(runs), "--out-dir", str(tmp_path)]) == 0
    for task in ("prom-core", "splice-40"):
        assert (tmp_path / "figures" / f"{task}.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "figures" / "sim-promoter.png").exists()


def test_a_single_seed_has_no_std_and_null_metrics_stay_missing(tmp_path):
    write_run_record(
        tmp_path / "a.json",
        {"metrics": metrics_from(0.5) | {"auc": float("nan")}},
        model="m",
        task="t",
        shots=5,
        seed=0,
    )
    assert json.loads((tmp_path / "a.json").read_text())["metrics"]["auc"] is None
    make_results([tmp_path / "a.json"], tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "tables" / "fewshot.csv", dtype=str, keep_default_na=False)
    table = table.set_index("metric")
    assert table.at["accuracy", "t 5"] == "0.500"
    assert table.at["auc", "t 5"] == "n/a"


def test_bad_run_records_are_reported(runs, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    original = next(runs.rglob("*.json"))
    (copy / "same.json").write_text(original.read_text())
    with pytest.raises(UserError, match="the same run"):
        load_runs(find_run_records([runs, copy]))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"model": "m", "task": "t", "shots": 5, "metrics": {}}))
    with pytest.raises(UserError, match="lacks seed"):
        load_runs([broken])
    broken.write_text("{")
    with pytest.raises(UserError, match="not a readable JSON"):
        load_runs([broken])
    with pytest.raises(UserError, match="no such file or directory"):
        find_run_records([tmp_path / "absent"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no run records"):
        find_run_records([tmp_path / "empty"])
