"""The few-shot result tables and figures, from run records (genemask.evaluation.run_records).

`make_results` aggregates the records over seeds (mean and
sample standard deviation, ddof = 1) into the paper's layout: rows are models, columns are task x shots.

  <out>/tables/fewshot.csv          metric, model, then one "mean ± std" column per task x shots
  <out>/tables/fewshot.md / .tex    one table per metric, the legend once per file (seeds per cell, the std
                                    convention, the tests, models identical by design); each cell also shows
                                    its paired-test mark against random masking (genemask.evaluation.paired),
                                    how many seeds collapsed to one predicted class, and the paper's mean ± std
                                    where the paper has the same cell (genemask.evaluation.published); no bold
  <out>/tables/fewshot_summary.csv  the same numbers, tidy: model task shots metric mean std n_seeds n_collapsed
  <out>/tables/paired.csv           every paired comparison (vs random masking and vs the random-init floor)
  <out>/tables/vs_paper.csv/.md/.html  ours beside the published numbers; exact cells: difference, 95% CI, TOST,
                                    a verdict (genemask.evaluation.published); nearest rows: orientation only
  <out>/figures/<task>.png          each metric against shots, one line per model, error bars = std; the
                                    paper's points (filled: exact match; hollow: nearest published row)
  <out>/figures/paired_vs_random.png  mean difference against random masking, 95% interval, per cell

Shots are an integer (examples per class) or "full" (the whole training set), which sorts last.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genemask.atomic import atomic_file
from genemask.evaluation.fewshot_figure import METRIC_TITLES, plot_task, task_title
from genemask.evaluation.metrics import METRICS
from genemask.evaluation.paired import (
    MARK_TEXT,
    MARK_THRESHOLDS,
    at_resolution,
    paired_table,
    plot_differences,
    smallest_wilcoxon_p,
)
from genemask.evaluation.published import (
    verdicts,
    vs_paper,
    vs_paper_html,
    vs_paper_markdown,
)
from genemask.evaluation.run_records import (
    IDENTITY,
    find_run_records,
    load_runs,
    shots_key,
)
from genemask.evaluation.settings import EQUIVALENCE_MARGIN
from genemask.evaluation.tasks import TASKS


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Tidy: model task shots metric mean std n_seeds n_collapsed (std with ddof=1; NaN for a single seed)."""
    long = runs.melt(id_vars=[*IDENTITY, "collapsed"], value_vars=list(METRICS), var_name="metric")
    grouped = long.groupby(["model", "task", "shots", "metric"], sort=False)
    summary = grouped["value"].agg(mean="mean", std="std", n_seeds="count")
    summary["n_collapsed"] = grouped["collapsed"].sum().astype(int)
    return summary.reset_index()


def _order(values: Iterable[str], preferred: Sequence[str] | None) -> list[str]:
    values = list(dict.fromkeys(values))
    first = [value for value in dict.fromkeys(preferred or []) if value in values]
    return first + sorted(value for value in values if value not in first)


def format_cell(
    mean: float, std: float = math.nan, plus_minus: str = " ± ", digits: int = 3, missing: str = "n/a"
) -> str:
    """`mean ± std` at `digits` decimals; the mean alone without a std; `missing` without a mean."""
    if np.isnan(mean):
        return missing
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f}{plus_minus}{std:.{digits}f}"


class FewShotTables:
    """The summary arranged as the paper does: one block per metric, rows models, columns (task, shots).

    No cell is bold: with a handful of seeds the best mean of a column is rarely significantly better than the
    runner-up, and the marks carry what the tests say.
    """

    def __init__(
        self,
        summary: pd.DataFrame,
        model_order: Sequence[str] | None,
        task_order: Sequence[str] | None,
        *,
        paired: pd.DataFrame | None = None,
        paper: pd.DataFrame | None = None,
        identical: Sequence[tuple[str, str]] = (),
    ):
        self.summary = summary
        self.identical = list(identical)
        cell = ["model", "task", "shots", "metric"]
        self.marks: dict[tuple, str] = {}
        if paired is not None:
            against_random = paired[paired.comparison == "random"]
            self.marks = dict(
                zip(map(tuple, against_random[cell].to_numpy()), against_random["mark"], strict=True)
            )
        self.paper: dict[tuple, tuple[float, float]] = {}
        if paper is not None:
            exact = paper[paper.match == "exact"]
            self.paper = {
                tuple(key): (mean, std)
                for key, mean, std in zip(
                    exact[cell].to_numpy(), exact.paper_mean, exact.paper_std, strict=True
                )
            }
        self.counts = {
            (row.model, row.task, row.shots, row.metric): (row.n_collapsed, row.n_seeds)
            for row in summary.itertuples(index=False)
        }
        self.models = _order(summary.model, model_order)
        tasks = _order(summary.task, [*(task_order or []), *TASKS])
        self.columns = [
            (task, shots)
            for task in tasks
            for shots in sorted(summary.loc[summary.task == task, "shots"].unique(), key=shots_key)
        ]
        self.metrics = [metric for metric in METRICS if metric in set(summary.metric)]
        seeds = set(summary.loc[summary.n_seeds > 0, "n_seeds"])
        self.uniform_seeds = int(next(iter(seeds))) if len(seeds) == 1 else None

    def values(self, metric: str, statistic: str) -> pd.DataFrame:
        table = self.summary[self.summary.metric == metric].pivot_table(
            index="model", columns=["task", "shots"], values=statistic, dropna=False
        )
        return table.reindex(index=self.models, columns=pd.MultiIndex.from_tuples(self.columns))

    def cells(self, metric: str, plus_minus: str, style: str = "plain") -> list[list[str]]:
        """Cell texts: mean ± std, the mark against random, "[n=k]" (seeds differ across cells),
        "[c/n collapsed]", "(paper mean ± std)"."""
        means, stds = self.values(metric, "mean"), self.values(metric, "std")
        rows = []
        for model in self.models:
            row = []
            for column in self.columns:
                text = format_cell(means.at[model, column], stds.at[model, column], plus_minus)
                key = (model, *column, metric)
                if self.marks.get(key):
                    text += MARK_TEXT[style][self.marks[key]]
                collapsed, n_seeds = self.counts.get(key, (0, 0))
                if self.uniform_seeds is None and n_seeds:
                    text += f" [n={n_seeds}]"
                if collapsed:
                    text += f" [{collapsed}/{n_seeds} collapsed]"
                if key in self.paper:
                    text += f" (paper {format_cell(*self.paper[key], plus_minus)})"
                row.append(text)
            rows.append(row)
        return rows

    def column_titles(self) -> list[str]:
        return [f"{task_title(task)} {shots}" for task, shots in self.columns]

    def legend(self, style: str) -> str:
        """What the cells and marks mean, once per file, with the marks exactly as the cells print them."""
        seeds = (
            f"{self.uniform_seeds} seeds per cell"
            if self.uniform_seeds is not None
            else "seeds per cell in brackets [n=k]"
        )
        floor = (
            f"{smallest_wilcoxon_p(self.uniform_seeds):.3g} for the {self.uniform_seeds} seeds here"
            if self.uniform_seeds is not None
            else "0.5 for 2 seeds"
        )
        text = LEGEND.format(seeds=seeds, marks="MARKS", floor=floor)
        if self.identical:
            pairs = "; ".join(f"{a} = {b}" for a, b in self.identical)
            text += (
                " Identical in every run (as designed where a model cannot differ, e.g. cm-gems that never "
                f"switched trains as genemask; otherwise worth a look): {pairs}."
            )
        latex = style == "latex"
        if latex:
            text = latex_escape(text).replace("±", "$\\pm$")
        less = "$<$" if latex else "<"
        marks = ", ".join(
            f"{MARK_TEXT[style][mark]} q{less}{threshold}" for threshold, mark in MARK_THRESHOLDS
        )
        return text.replace("MARKS", marks)

    def csv(self) -> str:
        frames = [
            pd.DataFrame(self.cells(metric, " ± "), columns=self.column_titles()).assign(
                metric=metric, model=self.models
            )
            for metric in self.metrics
        ]
        table = pd.concat(frames)[["metric", "model", *self.column_titles()]]
        return table.to_csv(index=False)

    def markdown(self) -> str:
        out = ["# Few-shot results", "", self.legend("markdown"), ""]
        for metric in self.metrics:
            out.append(f"## {METRIC_TITLES[metric]}\n")
            out.append("| Model | " + " | ".join(self.column_titles()) + " |")
            out.append("|---|" + "---:|" * len(self.columns))
            for model, row in zip(self.models, self.cells(metric, " ± ", "markdown"), strict=True):
                out.append(f"| {model} | " + " | ".join(row) + " |")
            out.append("")
        return "\n".join(out)

    def latex(self) -> str:
        tasks = list(dict.fromkeys(task for task, _ in self.columns))
        spans = [sum(1 for t, _ in self.columns if t == task) for task in tasks]
        out = ["% Few-shot results (mean $\\pm$ std over seeds); needs \\usepackage{booktabs}.", ""]
        first = f"tab:fewshot-{self.metrics[0]}" if self.metrics else ""
        for metric in self.metrics:
            header = " & ".join(
                f"\\multicolumn{{{span}}}{{c}}{{{latex_escape(task_title(task))}}}"
                for task, span in zip(tasks, spans, strict=True)
            )
            rules, start = [], 2
            for span in spans:
                rules.append(f"\\cmidrule(lr){{{start}-{start + span - 1}}}")
                start += span
            label = f"tab:fewshot-{metric}"
            legend = (
                self.legend("latex") if label == first else f"Cells and marks as in Table~\\ref{{{first}}}."
            )
            out += [
                "\\begin{table}[ht]",
                "\\centering",
                f"\\caption{{Few-shot {METRIC_TITLES[metric]}. {legend}}}",
                f"\\label{{{label}}}",
                f"\\begin{{tabular}}{{l{'r' * len(self.columns)}}}",
                "\\toprule",
                f" & {header} \\\\",
                " ".join(rules),
                "Model & " + " & ".join(str(shots) for _, shots in self.columns) + " \\\\",
                "\\midrule",
            ]
            for model, row in zip(self.models, self.cells(metric, " $\\pm$ ", "latex"), strict=True):
                out.append(f"{latex_escape(model)} & " + " & ".join(row) + " \\\\")
            out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
        return "\n".join(out)


# {seeds}, {marks}: filled in by FewShotTables.legend; the marks' symbols per output format.
LEGEND = (
    "Cells: mean ± std over seeds ({seeds}; std is the sample standard deviation, ddof = 1, which we assume the "
    "papers' ± is too). Marks: paired t-test against random masking of the same size and steps over the seeds, "
    "Benjamini-Hochberg corrected over every comparison against random masking in the file ({marks}); a "
    "difference that is the same on every seed (at 1e-12) has no variance and gets no t-test and no mark. "
    "paired.csv also holds the Wilcoxon signed-rank test (exact over all 2^n sign flips, zero differences dropped, "
    "tied ones mid-ranked; n seeds cannot give p below 2/2^n, {floor}) and the comparisons against the "
    "random-init floor (their own correction family). No bold: with so few seeds the best mean of a column is "
    "rarely significantly better than the runner-up. [c/n collapsed]: c of n seeds predicted one class for the "
    "whole test set. (paper ...): the published mean ± std of the same architecture, strategy, steps, task and "
    "shots (10 runs)."
)


def latex_escape(text: str) -> str:
    """Text safe in LaTeX (the characters LaTeX treats specially)."""
    for char in "\\&%$#_{}":
        text = text.replace(char, f"\\{char}")
    return text.replace("^", "\\^{}").replace("~", "\\~{}")


def identical_models(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of models whose runs (task, shots, seed) and metrics agree everywhere at the metrics' resolution."""
    keyed = {
        model: group.set_index(["task", "shots", "seed"])[list(METRICS)].sort_index()
        for model, group in runs.groupby("model", sort=False)
    }
    pairs = []
    for i, first in enumerate(keyed):
        for second in list(keyed)[i + 1 :]:
            a, b = keyed[first], keyed[second]
            if a.index.equals(b.index) and np.array_equal(
                at_resolution(a.to_numpy()), at_resolution(b.to_numpy()), equal_nan=True
            ):
                pairs.append((first, second))
    return pairs


def write_tables(directory: Path, texts: dict[str, str]) -> None:
    """Each name's text to directory/name, atomically."""
    for name, text in texts.items():
        with atomic_file(directory / name) as tmp:
            tmp.write_text(text)


def make_results(
    run_paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    model_order: Sequence[str] | None = None,
    task_order: Sequence[str] | None = None,
    equivalence_margin: float = EQUIVALENCE_MARGIN,
    figures: bool = True,
) -> pd.DataFrame:
    """Aggregate run records into tables/ and figures/ (unless `figures` is false) under `out_dir`; return the
    tidy summary."""
    out_dir = Path(out_dir)
    runs = load_runs(find_run_records(run_paths))
    summary = summarise(runs)
    paired = paired_table(runs)
    paper = vs_paper(summary, equivalence_margin)
    tables = FewShotTables(
        summary, model_order, task_order, paired=paired, paper=paper, identical=identical_models(runs)
    )
    tasks = list(dict.fromkeys(task for task, _ in tables.columns))
    titles = {task: task_title(task) for task in tasks}
    lines = verdicts(paper, tasks, equivalence_margin)
    write_tables(
        out_dir / "tables",
        {
            "fewshot.csv": tables.csv(),
            "fewshot.md": tables.markdown(),
            "fewshot.tex": tables.latex(),
            "paired.csv": paired.to_csv(index=False, float_format="%.6g"),
            "vs_paper.csv": paper.to_csv(index=False, float_format="%.6g"),
            "vs_paper.md": vs_paper_markdown(paper, lines, titles, equivalence_margin),
            "vs_paper.html": vs_paper_html(paper, lines, titles),
        },
    )
    with atomic_file(out_dir / "tables" / "fewshot_summary.csv") as tmp:
        ordered = summary.assign(model=pd.Categorical(summary.model, tables.models, ordered=True))
        ordered = ordered.assign(_shots=ordered.shots.map(shots_key))
        ordered.sort_values(["task", "model", "_shots", "metric"]).drop(columns="_shots").to_csv(
            tmp, index=False, float_format="%.6g"
        )
    if not figures:
        return summary
    for task in tasks:
        plot_task(summary, task, tables.models, out_dir / "figures" / f"{task}.png", paper)
    plot_differences(paired, tasks, titles, out_dir / "figures" / "paired_vs_random.png")
    return summary
