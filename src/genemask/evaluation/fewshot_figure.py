"""The few-shot figure per task: each metric against shots, one line per model, the paper's points beside ours."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from genemask.evaluation.metrics import METRICS
from genemask.evaluation.plotting import pyplot, save_png
from genemask.evaluation.run_records import FULL_SHOTS, shots_key
from genemask.evaluation.tasks import TASKS

METRIC_TITLES = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "mcc": "MCC", "auc": "AUC"}


def task_title(task: str) -> str:
    return TASKS[task].title if task in TASKS else task


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
    plt = pyplot()
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
    figure.suptitle(task_title(task))
    figure.tight_layout(rect=(0, min(0.6, 0.08 + 0.05 * ((len(unique) - 1) // 4)), 1, 1))
    save_png(figure, out)
