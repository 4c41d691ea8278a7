"""GUE result tables in the CM-GEMS paper's layout, our models beside the published columns, and the heat map.

GUE runs are run records like the few-shot ones (shots `full`), read, summarised and tested by the shared code
(genemask.evaluation.results, .paired); what is GUE's own is the published 12-column layout, the group means and
the paired test ACROSS tasks.

  <out>/tables/gue.csv        tidy: source (ours | published), model, task, group, dataset, metric, mean, std, n_seeds
  <out>/tables/gue.md / .tex  MCC x 100 per task (rows, grouped as CM-GEMS Table 2) and model (columns: ours, then
                              published; seeds per column in the header), per-group means, the mean over the tasks
                              run (the 27-task mean when all are), the paired tests across tasks, deviations
  <out>/tables/gue_tests.csv  the paired tests
  <out>/figures/gue_heatmap.png  MCC x 100 per task and model

Paired test (as CM-GEMS compares strategies): for each of our pretrained models and each of its baselines
(random masking of the same size and steps; the random-init floor), the per-task MCC means over seeds are paired
across the tasks both ran, with genemask.evaluation.paired.paired_statistics (mean difference and 95% interval,
paired t-test, the pinned exact Wilcoxon, wins/ties/losses, all at the metrics' resolution) and
Benjamini-Hochberg within each baseline family.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genemask.errors import UserError
from genemask.evaluation.gue import GROUP_ORDER, GUE_TASKS, gue_task
from genemask.evaluation.paired import STATISTICS_COLUMNS, baselines, correct_and_mark, paired_statistics
from genemask.evaluation.plotting import pyplot, save_png
from genemask.evaluation.results import format_cell, latex_escape, summarise, write_tables
from genemask.evaluation.run_records import (
    find_run_records,
    read_run_records,
    runs_frame,
)

PUBLISHED_FILE = Path(__file__).parent / "data" / "gue_mcc.csv"
PUBLISHED_SOURCE = "CM-GEMS (Roy et al., ECAI 2024) Table 2; 120K columns from the DNABERT-2 paper"
GUE_TESTS_COLUMNS = ["model", "baseline", "comparison", *STATISTICS_COLUMNS, "q_ttest", "q_wilcoxon", "mark"]
LEGEND = (
    "Ours: mean ± std over seeds (std with ddof = 1; n = seeds per cell in the header), full training data, model "
    "selected on dev; the published columns are single numbers. Paired tests across tasks: per-task means paired "
    "task by task; paired t-test and Wilcoxon signed-rank (exact over all 2^n sign flips, zero differences "
    "dropped, ties mid-ranked: below 6 tasks no two-sided p can fall under 0.05), Benjamini-Hochberg q within "
    "each baseline family (random masking; the random-init floor)."
)


def load_published(path: Path = PUBLISHED_FILE) -> pd.DataFrame:
    """The published MCC x 100 as model, task (our name), mcc."""
    table = pd.read_csv(path, dtype={"dataset": str})
    by_key = {(task.group, task.dataset): name for name, task in GUE_TASKS.items()}
    table["task"] = [by_key.get(key) for key in zip(table.task_group, table.dataset, strict=True)]
    if table.task.isna().any():
        raise UserError(
            f"{path}: rows of unknown GUE tasks: {table[table.task.isna()].head(1).to_dict('records')}"
        )
    return table.rename(columns={"mcc_x100": "mcc"})[["model", "task", "mcc"]]


def load_gue_runs(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """One row per run (the shared run frame) and, per task, the deviations its runs record."""
    records = read_run_records(find_run_records(paths))
    deviations: dict[str, set[str]] = {}
    for record in records:
        gue_task(record["task"])
        deviations.setdefault(record["task"], set()).update(record.get("deviations", []))
        if record.get("truncated_sequences"):
            deviations[record["task"]].add(
                f"{record['model']}: sequences over {record['max_length_used']} tokens truncated "
                f"({record['truncated_sequences']}; {record['truncation']})"
            )
    return runs_frame(records), deviations


def paired_tests(means: pd.DataFrame) -> pd.DataFrame:
    """Each pretrained model against its baselines over the tasks both have (`means`: task x model)."""
    rows = []
    for model, baseline, comparison in baselines(list(means.columns)):
        pair = means[[model, baseline]].dropna()
        differences = (pair[model] - pair[baseline]).to_numpy(dtype=float)
        rows.append(
            {"model": model, "baseline": baseline, "comparison": comparison, **paired_statistics(differences)}
        )
    table = pd.DataFrame(rows, columns=GUE_TESTS_COLUMNS[:-3])
    return correct_and_mark(table)[GUE_TESTS_COLUMNS]


def _fmt(value: float, std: float = np.nan, plus_minus: str = " ± ") -> str:
    return format_cell(value, std, plus_minus, digits=2, missing="–")


class GueTables:
    """MCC x 100: rows tasks in CM-GEMS order with group means, columns our models then the published ones."""

    def __init__(
        self, summary: pd.DataFrame, published: pd.DataFrame, models: Sequence[str], tasks: Sequence[str]
    ):
        self.summary = summary
        self.ours = list(models)
        self.published_models = list(dict.fromkeys(published.model))
        ordered = [name for name in GUE_TASKS if name in set(tasks)]
        self.tasks = sorted(ordered, key=lambda name: GROUP_ORDER.index(GUE_TASKS[name].group))
        mcc = summary[summary.metric == "mcc"]
        ours_mean = mcc.pivot_table(index="task", columns="model", values="mean", dropna=False)
        ours_std = mcc.pivot_table(index="task", columns="model", values="std", dropna=False)
        pub = published.pivot_table(index="task", columns="model", values="mcc")
        self.means = pd.concat([ours_mean, pub], axis=1).reindex(index=self.tasks, columns=self.columns)
        self.stds = ours_std.reindex(index=self.tasks, columns=self.columns)
        self.published_all = pub.reindex(columns=self.published_models)
        seeds = mcc[mcc.task.isin(self.tasks)].groupby("model")["n_seeds"]
        self.seeds = {
            model: (int(low), int(high))
            for model, low, high in zip(seeds.min().index, seeds.min(), seeds.max(), strict=True)
        }

    def seeds_text(self, model: str) -> str:
        """How many seeds each of the model's cells has: `n=3`, or `n=2-3` where cells differ."""
        low, high = self.seeds.get(model, (0, 0))
        return f"n={low}" if low == high else f"n={low}-{high}"

    @property
    def columns(self) -> list[str]:
        return [*self.ours, *self.published_models]

    def rows(self, plus_minus: str = " ± ") -> list[tuple[str, str, list[str]]]:
        """(group, task title, cells) per task, a mean row after each group and the overall mean at the end."""
        out = []
        groups = list(dict.fromkeys(GUE_TASKS[task].group for task in self.tasks))
        for group in groups:
            members = [task for task in self.tasks if GUE_TASKS[task].group == group]
            for task in members:
                spec = GUE_TASKS[task]
                cells = [
                    _fmt(self.means.at[task, c], self.stds.at[task, c], plus_minus) for c in self.columns
                ]
                out.append((group, spec.dataset or "Covid", cells))
            if len(members) > 1:
                out.append((group, f"mean ({len(members)})", self._mean_cells(members)))
        in_paper = [task for task in self.tasks if GUE_TASKS[task].in_published_table]
        label = "27-task mean" if len(in_paper) == 27 else f"mean over these {len(in_paper)} tasks"
        out.append(("All", label, self._mean_cells(in_paper)))
        if len(in_paper) < 27:
            cells = ["" for _ in self.ours] + [_fmt(v) for v in self.published_all.mean(axis=0)]
            out.append(("All", "27-task mean (published)", cells))
        return out

    def _mean_cells(self, tasks: list[str]) -> list[str]:
        block = self.means.loc[tasks] if tasks else self.means.iloc[:0]
        cells = []
        for column in self.columns:
            values = block[column].dropna()
            text = _fmt(values.mean()) if len(values) else "–"
            if 0 < len(values) < len(tasks):
                text += f" ({len(values)}/{len(tasks)})"
            cells.append(text)
        return cells


def markdown(tables: GueTables, tests: pd.DataFrame, deviations: dict[str, set[str]]) -> str:
    header = [f"{m} ({tables.seeds_text(m)})" for m in tables.ours]
    header += [f"{m} (published)" for m in tables.published_models]
    out = [
        "# GUE: MCC x 100 on the test set",
        "",
        f"{LEGEND} Published: {PUBLISHED_SOURCE}.",
        "",
        "| Group | Task | " + " | ".join(header) + " |",
        "|---|---|" + "---:|" * len(tables.columns),
    ]
    for group, task, cells in tables.rows():
        bold = "**" if task.startswith(("mean", "27")) else ""
        out.append(f"| {group} | {bold}{task}{bold} | " + " | ".join(cells) + " |")
    out += ["", "## Paired tests across tasks (per-task means over seeds)", ""]
    if tests.empty:
        out.append("No model has a baseline (random masking or random-init) of the same size and steps.")
    else:
        out += [
            "| Model | Baseline | Tasks | Mean difference [95% CI] | p (paired t) | q | p (Wilcoxon) | q "
            "| wins/ties/losses |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in tests.itertuples():
            interval = "" if np.isnan(row.ci95_low) else f" [{_fmt(row.ci95_low)}, {_fmt(row.ci95_high)}]"
            out.append(
                f"| {row.model} | {row.baseline} | {row.n_pairs} | {_fmt(row.mean_difference)}{interval} | "
                f"{_p(row.p_ttest)} | {_p(row.q_ttest)} | {_p(row.p_wilcoxon)} | {_p(row.q_wilcoxon)} | "
                f"{row.wins}/{row.ties}/{row.losses} |"
            )
    out += _other_metric_lines(tables)
    notes = [
        f"- {GUE_TASKS[task].title}: {note}"
        for task in tables.tasks
        for note in sorted(deviations.get(task, ()))
    ]
    if notes:
        out += ["", "## Deviations from the published setting (not comparable where listed)", "", *notes]
    return "\n".join(out) + "\n"


def _other_metric_lines(tables: GueTables) -> list[str]:
    """Tasks whose source paper reports another metric than MCC (DNABERT-2 scores Covid by F1): ours in it."""
    lines = []
    for task in tables.tasks:
        metric = GUE_TASKS[task].published_metric
        if metric == "mcc":
            continue
        cells = tables.summary[(tables.summary.task == task) & (tables.summary.metric == metric)]
        values = ", ".join(
            f"{row.model} {_fmt(row.mean, row.std)}" for row in cells.itertuples() if row.model in tables.ours
        )
        lines.append(
            f"- {GUE_TASKS[task].title}: the DNABERT-2 paper reports {metric} x 100; ours: {values or '–'}"
        )
    return ["", "## Tasks published in another metric", "", *lines] if lines else []


def _p(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.3g}"


def latex(tables: GueTables, tests: pd.DataFrame) -> str:
    header = " & ".join(
        [
            *(latex_escape(f"{m} ({tables.seeds_text(m)})") for m in tables.ours),
            *map(latex_escape, tables.published_models),
        ]
    )
    legend = latex_escape(LEGEND).replace("±", "$\\pm$")
    out = [
        "% GUE MCC x 100 (ours: mean $\\pm$ std over seeds); needs \\usepackage{booktabs}.",
        "\\begin{table}[ht]",
        "\\centering\\scriptsize",
        f"\\caption{{GUE, MCC $\\times$ 100. {legend} Published: {latex_escape(PUBLISHED_SOURCE)}.}}",
        "\\label{tab:gue}",
        f"\\begin{{tabular}}{{ll{'r' * len(tables.columns)}}}",
        "\\toprule",
        f"Group & Task & {header} \\\\",
        "\\midrule",
    ]
    for group, task, cells in tables.rows(" $\\pm$ "):
        out.append(
            f"{latex_escape(group)} & {latex_escape(task)} & "
            + " & ".join(cells).replace("–", "--")
            + " \\\\"
        )
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    if not tests.empty:
        out += [
            "\\begin{table}[ht]",
            "\\centering",
            "\\caption{Paired tests across GUE tasks (as in Table~\\ref{tab:gue}).}",
            "\\begin{tabular}{llrrrrrr}",
            "\\toprule",
            "Model & Baseline & Tasks & Mean diff. & $p$ (paired $t$) & $q$ & $p$ (Wilcoxon) & $q$ \\\\",
            "\\midrule",
        ]
        for row in tests.itertuples():
            numbers = [
                _fmt(row.mean_difference),
                *map(_p, (row.p_ttest, row.q_ttest, row.p_wilcoxon, row.q_wilcoxon)),
            ]
            out.append(
                f"{latex_escape(row.model)} & {latex_escape(row.baseline)} & {row.n_pairs} & "
                + " & ".join(numbers).replace("–", "--")
                + " \\\\"
            )
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)


def plot_heatmap(tables: GueTables, out: Path) -> None:
    """MCC x 100 per task (rows) and model (columns: ours, then published), each cell annotated."""
    plt = pyplot()
    values = tables.means.to_numpy(dtype=float)
    titles = [GUE_TASKS[task].title for task in tables.tasks]
    labels = [*tables.ours, *(f"{m} (pub.)" for m in tables.published_models)]
    figure, axis = plt.subplots(figsize=(3 + 0.55 * len(labels), 3.2 + 0.35 * len(titles)))
    image = axis.imshow(
        np.ma.masked_invalid(values), cmap="viridis", vmin=min(0, np.nanmin(values)), vmax=100, aspect="auto"
    )
    axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    axis.set_yticks(range(len(titles)), titles, fontsize=7)
    for (row, column), value in np.ndenumerate(values):
        if not np.isnan(value):
            color = "white" if value < 60 else "black"
            axis.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=6, color=color)
    axis.axvline(len(tables.ours) - 0.5, color="red", linewidth=1.5)
    figure.colorbar(image, ax=axis, label="MCC x 100")
    axis.set_title("GUE test MCC x 100 (left of the red line: ours, mean over seeds)", fontsize=9)
    figure.tight_layout()
    save_png(figure, out)


def make_gue_results(
    run_paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Aggregate GUE run records into tables/gue.* and figures/gue_heatmap.png under `out_dir`; return the summary
    (metrics x 100)."""
    out_dir = Path(out_dir)
    runs, deviations = load_gue_runs(run_paths)
    summary = summarise(runs).drop(columns=["shots", "n_collapsed"])
    summary[["mean", "std"]] *= 100
    models = list(dict.fromkeys([*(models or []), *summary.model]))
    models = [model for model in models if model in set(summary.model)]
    tasks = [task for task in dict.fromkeys([*(tasks or []), *summary.task]) if task in set(summary.task)]
    published = load_published()
    tables = GueTables(summary, published, models, tasks)
    tests = paired_tests(tables.means[tables.ours])
    tidy = pd.concat(
        [
            summary.assign(source="ours"),
            published[published.task.isin(tables.tasks)]
            .assign(source="published", metric="mcc", std=np.nan, n_seeds=np.nan)
            .rename(columns={"mcc": "mean"}),
        ]
    )
    tidy["group"] = [GUE_TASKS[task].group for task in tidy.task]
    tidy["dataset"] = [GUE_TASKS[task].dataset for task in tidy.task]
    tidy = tidy[["source", "model", "task", "group", "dataset", "metric", "mean", "std", "n_seeds"]]
    write_tables(
        out_dir / "tables",
        {
            "gue.csv": tidy.to_csv(index=False, float_format="%.6g"),
            "gue.md": markdown(tables, tests, deviations),
            "gue.tex": latex(tables, tests),
            "gue_tests.csv": tests.to_csv(index=False, float_format="%.6g"),
        },
    )
    plot_heatmap(tables, out_dir / "figures" / "gue_heatmap.png")
    return summary
