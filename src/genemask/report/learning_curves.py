"""Learning curves: fine-tuning metrics against pretraining steps, one line per pretraining run.

Pretrained model names (genemask.evaluation.model_names) are `{arch}_{strategy}_{run_steps}` (a run's final
model) and `{arch}_{strategy}_{run_steps}_step{step}` (the same run exported at an earlier step).
Other models in the summary (random-init floors, references, the k-mer baseline) have no pretraining steps and
are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from genemask.errors import UserError
from genemask.evaluation.fewshot_figure import METRIC_TITLES
from genemask.evaluation.metrics import METRICS
from genemask.evaluation.model_names import pretrained_model
from genemask.evaluation.plotting import pyplot, save_png

plt = pyplot()


def curves(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's pretrained models, with columns arch, strategy, run_steps, step added."""
    parsed = {name: pretrained_model(name) for name in summary.model.unique()}
    keep = summary[summary.model.map(lambda name: parsed[name] is not None)].copy()
    for column, field in (
        ("arch", "preset"),
        ("strategy", "strategy"),
        ("run_steps", "run_steps"),
        ("step", "steps"),
    ):
        keep[column] = keep.model.map(lambda name, field=field: getattr(parsed[name], field))
    return keep


def plot_learning_curves(data: pd.DataFrame, task: str, out: Path) -> None:
    """One panel per (metric, shots) for one task: mean ± std over seeds against pretraining steps."""
    data = data[data.task == task]
    metrics = [metric for metric in METRICS if metric in set(data.metric)] or ["mcc"]
    shots = sorted(data.shots.unique()) or [0]
    lines = (
        data[["arch", "strategy", "run_steps"]]
        .drop_duplicates()
        .sort_values(["arch", "run_steps", "strategy"])
    )
    several_runs = data.arch.nunique() > 1 or data.run_steps.nunique() > 1
    figure, axes = plt.subplots(
        len(metrics), len(shots), figsize=(max(3.2 * len(shots), 5.0), 2.6 * len(metrics)), squeeze=False
    )
    for row, metric in enumerate(metrics):
        for column, shot in enumerate(shots):
            axis = axes[row][column]
            for arch, strategy, run_steps in lines.itertuples(index=False):
                line = data[
                    (data.metric == metric)
                    & (data.shots == shot)
                    & (data.arch == arch)
                    & (data.strategy == strategy)
                    & (data.run_steps == run_steps)
                ].sort_values("step")
                if line.empty:
                    continue
                label = f"{arch} {strategy} ({run_steps}-step run)" if several_runs else strategy
                axis.errorbar(
                    line.step, line["mean"], yerr=line["std"].fillna(0), marker="o", capsize=3, label=label
                )
            axis.set_title(f"{METRIC_TITLES.get(metric, metric)}, {shot} shots", fontsize=9)
            axis.grid(alpha=0.3)
            if row == len(metrics) - 1:
                axis.set_xlabel("pretraining steps")
    axes[0][0].set_ylabel("mean ± std over seeds")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if labels:
        figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    figure.suptitle(f"{task}: metric against pretraining steps", fontsize=10)
    figure.tight_layout(rect=(0, 0.06 + 0.04 * ((len(labels) - 1) // 4), 1, 1))
    save_png(figure, out, dpi=110)


def learning_curve_report(summary_path: Path, tasks: Sequence[str], out_dir: Path) -> list[Path]:
    """One figure per task, `out_dir/{task}.png`, from fewshot_summary.csv."""
    try:
        summary = pd.read_csv(summary_path)
    except FileNotFoundError:
        raise UserError(f"{summary_path}: no such file") from None
    missing = {"model", "task", "shots", "metric", "mean", "std"} - set(summary.columns)
    if missing:
        raise UserError(f"{summary_path}: missing columns {', '.join(sorted(missing))}")
    data = curves(summary)
    outs = []
    for task in tasks:
        out = Path(out_dir) / f"{task}.png"
        plot_learning_curves(data, task, out)
        outs.append(out)
    return outs
