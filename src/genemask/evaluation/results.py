"""Run records (one JSON per fine-tuning run) and the few-shot result tables and figures built from them.

A run record holds `model`, `task`, `shots`, `seed`, `metrics` (accuracy, macro_f1, mcc, auc) and whatever the
run adds (sizes, hyper-parameters, losses, timings). `make_results` aggregates them over seeds (mean and
sample standard deviation, ddof = 1) into the paper's layout: rows are models, columns are task x shots.

  <out>/tables/fewshot.csv          metric, model, then one "mean ± std" column per task x shots
  <out>/tables/fewshot.md / .tex    one table per metric (best mean per column in bold); each cell also shows
                                    its paired-test mark against random masking (genemask.evaluation.paired),
                                    how many seeds collapsed to one predicted class, and the paper's mean ± std
                                    where the paper has the same cell (genemask.evaluation.published)
  <out>/tables/fewshot_summary.csv  the same numbers, tidy: model task shots metric mean std n_seeds n_collapsed
  <out>/tables/paired.csv           every paired comparison (vs random masking and vs the random-init floor)
  <out>/tables/vs_paper.csv/.md/.html  ours beside the published numbers, Welch's t-test, a verdict per task
  <out>/figures/<task>.png          each metric against shots, one line per model, error bars = std; the
                                    paper's points (filled: exact match; hollow: nearest published row)
  <out>/figures/paired_vs_random.png  mean difference against random masking, 95% interval, per cell

Shots are an integer (examples per class) or "full" (the whole training set), which sorts last.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.metrics import METRICS
from genemask.evaluation.paired import MARK_TEXT, paired_table, plot_differences
from genemask.evaluation.published import verdicts, vs_paper, vs_paper_html, vs_paper_markdown
from genemask.evaluation.records import write_run_record  # noqa: F401  (re-exported: the records' writer)
from genemask.evaluation.tasks import TASKS

METRIC_TITLES = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "mcc": "MCC", "auc": "AUC"}
IDENTITY = ("model", "task", "shots", "seed")
FULL_SHOTS = "full"  # fine-tune on the whole training set


def shots_key(shots: object) -> tuple[int, int]:
    """Sort key: integer shots ascending, then "full"."""
    return (1, 0) if shots == FULL_SHOTS else (0, int(shots))


def read_run_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a readable JSON run record ({error})") from None
    missing = [key for key in (*IDENTITY, "metrics") if key not in record]
    if missing:
        raise UserError(f"{path}: run record lacks {', '.join(missing)}")
    shots_ok = isinstance(record["shots"], int) or record["shots"] == FULL_SHOTS
    if not shots_ok or not isinstance(record["seed"], int):
        raise UserError(
            f"{path}: expected integer (or '{FULL_SHOTS}') shots and an integer seed, got {record['shots']!r} "
            f"and {record['seed']!r}"
        )
    absent = [metric for metric in METRICS if metric not in record["metrics"]]
    if absent:
        raise UserError(f"{path}: metrics lack {', '.join(absent)}")
    return record


def find_run_records(paths: Iterable[str | Path]) -> list[Path]:
    """JSON files given directly, and every *.json below the given directories, sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(path.rglob("*.json"))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or directory")
    if not found:
        raise UserError(f"no run records (*.json) in {', '.join(map(str, paths))}")
    return found


def load_runs(paths: Sequence[Path]) -> pd.DataFrame:
    """One row per run: model task shots seed, then the metrics (NaN where a record holds null)."""
    rows = []
    seen: dict[tuple, Path] = {}
    for path in paths:
        record = read_run_record(path)
        key = tuple(record[name] for name in IDENTITY)
        if key in seen:
            raise UserError(f"{path}: the same run ({', '.join(map(str, key))}) as {seen[key]}")
        seen[key] = path
        metrics = {
            m: np.nan if record["metrics"][m] is None else float(record["metrics"][m]) for m in METRICS
        }
        collapsed = {"collapsed": bool(record.get("collapsed", False))}  # older records lack the mark
        rows.append(dict(zip(IDENTITY, key, strict=True)) | metrics | collapsed)
    return pd.DataFrame(rows, columns=[*IDENTITY, *METRICS, "collapsed"])


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


def _task_title(task: str) -> str:
    return TASKS[task].title if task in TASKS else task


def _cell(mean: float, std: float, plus_minus: str) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if np.isnan(std) else f"{mean:.3f}{plus_minus}{std:.3f}"


class FewShotTables:
    """The summary arranged as the paper does: one block per metric, rows models, columns (task, shots)."""

    def __init__(
        self,
        summary: pd.DataFrame,
        model_order: Sequence[str] | None,
        task_order: Sequence[str] | None,
        *,
        paired: pd.DataFrame | None = None,
        paper: pd.DataFrame | None = None,
    ):
        self.summary = summary
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
        self.collapsed = {
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

    def values(self, metric: str, statistic: str) -> pd.DataFrame:
        table = self.summary[self.summary.metric == metric].pivot_table(
            index="model", columns=["task", "shots"], values=statistic, dropna=False
        )
        return table.reindex(index=self.models, columns=pd.MultiIndex.from_tuples(self.columns))

    def cells(
        self, metric: str, plus_minus: str, bold: tuple[str, str] | None = None, style: str = "plain"
    ) -> list[list[str]]:
        """Cell texts: mean ± std, the mark against random, "[c/n collapsed]", "(paper mean ± std)"."""
        means, stds = self.values(metric, "mean"), self.values(metric, "std")
        best = means.max(axis=0)
        rows = []
        for model in self.models:
            row = []
            for column in self.columns:
                text = _cell(means.at[model, column], stds.at[model, column], plus_minus)
                if bold and not np.isnan(means.at[model, column]) and means.at[model, column] == best[column]:
                    text = f"{bold[0]}{text}{bold[1]}"
                key = (model, *column, metric)
                if self.marks.get(key):
                    text += MARK_TEXT[style][self.marks[key]]
                collapsed, n_seeds = self.collapsed.get(key, (0, 0))
                if collapsed:
                    text += f" [{collapsed}/{n_seeds} collapsed]"
                if key in self.paper:
                    text += f" (paper {_cell(*self.paper[key], plus_minus)})"
                row.append(text)
            rows.append(row)
        return rows

    def column_titles(self) -> list[str]:
        return [f"{_task_title(task)} {shots}" for task, shots in self.columns]

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
        out = []
        for metric in self.metrics:
            out.append(f"## {METRIC_TITLES[metric]} (mean ± std over seeds; best per column in bold)\n")
            out.append(LEGEND.replace("*", "\\*") + "\n")
            out.append("| Model | " + " | ".join(self.column_titles()) + " |")
            out.append("|---|" + "---:|" * len(self.columns))
            for model, row in zip(
                self.models, self.cells(metric, " ± ", ("**", "**"), "markdown"), strict=True
            ):
                out.append(f"| {model} | " + " | ".join(row) + " |")
            out.append("")
        return "\n".join(out)

    def latex(self) -> str:
        tasks = list(dict.fromkeys(task for task, _ in self.columns))
        spans = [sum(1 for t, _ in self.columns if t == task) for task in tasks]
        out = ["% Few-shot results (mean $\\pm$ std over seeds); needs \\usepackage{booktabs}.", ""]
        for metric in self.metrics:
            header = " & ".join(
                f"\\multicolumn{{{span}}}{{c}}{{{_latex_escape(_task_title(task))}}}"
                for task, span in zip(tasks, spans, strict=True)
            )
            rules, start = [], 2
            for span in spans:
                rules.append(f"\\cmidrule(lr){{{start}-{start + span - 1}}}")
                start += span
            out += [
                "\\begin{table}[ht]",
                "\\centering",
                f"\\caption{{Few-shot {METRIC_TITLES[metric]} (mean $\\pm$ std over seeds). {LATEX_LEGEND}}}",
                f"\\begin{{tabular}}{{l{'r' * len(self.columns)}}}",
                "\\toprule",
                f" & {header} \\\\",
                " ".join(rules),
                "Model & " + " & ".join(str(shots) for _, shots in self.columns) + " \\\\",
                "\\midrule",
            ]
            for model, row in zip(
                self.models, self.cells(metric, " $\\pm$ ", ("\\textbf{", "}"), "latex"), strict=True
            ):
                out.append(f"{_latex_escape(model)} & " + " & ".join(row) + " \\\\")
            out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
        return "\n".join(out)


LEGEND = (
    "Marks: paired t-test against random masking of the same size and steps over the seeds, "
    "Benjamini-Hochberg corrected over the table (** q<0.01, * q<0.05, † q<0.1; all values in paired.csv). "
    "[c/n collapsed]: c of n seeds predicted one class for the whole test set. "
    "(paper ...): the published mean ± std of the same architecture, strategy, steps, task and shots."
)


def _latex_escape(text: str) -> str:
    for char in "\\&%$#_{}":
        text = text.replace(char, f"\\{char}")
    return text


LATEX_LEGEND = _latex_escape(LEGEND).replace("†", "$^\\dagger$").replace("<", "$<$").replace("±", "$\\pm$")


def _x_positions(shots: Sequence[object]) -> dict[object, float]:
    """Shots on a log axis; "full" one decade beyond the largest integer shots."""
    numeric = [int(s) for s in shots if s != FULL_SHOTS]
    full_at = 10.0 * max(numeric, default=100)
    return {s: full_at if s == FULL_SHOTS else float(s) for s in shots}


def plot_task(
    summary: pd.DataFrame, task: str, models: Sequence[str], out: Path, paper: pd.DataFrame | None = None
) -> None:
    """One panel per metric: mean against shots (log scale), one line per model, error bars = std.

    With `paper` (the vs_paper table), the published points matched to our models are drawn beside them:
    filled squares for exact matches, hollow ones for the nearest published rows (labelled as such).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = summary[summary.task == task]
    metrics = [metric for metric in METRICS if metric in set(data.metric)]
    shots = sorted(data.shots.unique(), key=shots_key)
    x_of = _x_positions(shots)
    published = pd.DataFrame() if paper is None else paper[paper.task == task]
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.2), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        drawn: set[tuple] = set()
        for model in models:
            line = data[(data.model == model) & (data.metric == metric)]
            line = line.iloc[sorted(range(len(line)), key=lambda i: shots_key(line.shots.iloc[i]))]
            if line.empty:
                continue
            x = [x_of[s] for s in line.shots]
            handle = axis.errorbar(
                x, line["mean"], yerr=line["std"].fillna(0), marker="o", capsize=3, label=model
            )[0]
            if published.empty:
                continue
            for row in published[(published.model == model) & (published.metric == metric)].itertuples():
                point = (row.paper_architecture, row.paper_masking, row.paper_steps, row.shots, row.match)
                if point in drawn:
                    continue
                drawn.add(point)
                exact = row.match == "exact"
                kind = "" if exact else ", nearest"
                axis.errorbar(
                    [x_of[row.shots] * (1 + 0.06 * sum(p[3] == row.shots for p in drawn))],
                    [row.paper_mean],
                    yerr=[row.paper_std],
                    marker="s",
                    capsize=2,
                    color=handle.get_color(),
                    markerfacecolor=handle.get_color() if exact else "none",
                    linestyle="none",
                    alpha=0.8,
                    label=f"paper {row.paper_architecture} {row.paper_masking} {row.paper_steps // 1000}K{kind}",
                )
        axis.set_xscale("log")
        axis.set_xticks([x_of[s] for s in shots], [str(s) for s in shots])
        axis.minorticks_off()
        axis.set_xlabel("shots")
        axis.set_title(METRIC_TITLES[metric])
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean ± std over seeds")
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    figure.legend(unique.values(), unique.keys(), loc="lower center", ncol=min(len(unique), 4), frameon=False)
    figure.suptitle(_task_title(task))
    figure.tight_layout(rect=(0, min(0.6, 0.08 + 0.05 * ((len(unique) - 1) // 4)), 1, 1))
    with atomic_file(out) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def make_results(
    run_paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    model_order: Sequence[str] | None = None,
    task_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Aggregate run records into tables/ and figures/ under `out_dir`; return the tidy summary."""
    out_dir = Path(out_dir)
    runs = load_runs(find_run_records(run_paths))
    summary = summarise(runs)
    paired = paired_table(runs)
    paper = vs_paper(summary)
    tables = FewShotTables(summary, model_order, task_order, paired=paired, paper=paper)
    tasks = list(dict.fromkeys(task for task, _ in tables.columns))
    titles = {task: _task_title(task) for task in tasks}
    lines = verdicts(paper, tasks)
    for name, text in (
        ("fewshot.csv", tables.csv()),
        ("fewshot.md", tables.markdown()),
        ("fewshot.tex", tables.latex()),
        ("paired.csv", paired.to_csv(index=False, float_format="%.6g")),
        ("vs_paper.csv", paper.to_csv(index=False, float_format="%.6g")),
        ("vs_paper.md", vs_paper_markdown(paper, lines, titles)),
        ("vs_paper.html", vs_paper_html(paper, lines, titles)),
    ):
        with atomic_file(out_dir / "tables" / name) as tmp:
            tmp.write_text(text)
    with atomic_file(out_dir / "tables" / "fewshot_summary.csv") as tmp:
        ordered = summary.assign(model=pd.Categorical(summary.model, tables.models, ordered=True))
        ordered = ordered.assign(_shots=ordered.shots.map(shots_key))
        ordered.sort_values(["task", "model", "_shots", "metric"]).drop(columns="_shots").to_csv(
            tmp, index=False, float_format="%.6g"
        )
    for task in tasks:
        plot_task(summary, task, tables.models, out_dir / "figures" / f"{task}.png", paper)
    plot_differences(paired, tasks, titles, out_dir / "figures" / "paired_vs_random.png")
    return summary
