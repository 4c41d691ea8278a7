"""Paired comparisons of masking strategies, seed by seed, as the paper tests them.

Within one (task, shots, seed) every model fine-tunes on the same k-shot draw, so a strategy is compared with
its baseline seed by seed: the paired t-test (the paper's test) and the Wilcoxon signed-rank test (no normality
assumed) on the per-seed differences. Baselines, for a pretrained model `<preset>_<strategy>_<steps>`:
- `random`: `<preset>_random_<steps>`, the same architecture and steps with random masking (the paper's baseline);
- `random-init`: `<preset>_random-init`, the same architecture never pretrained (the floor).
Benjamini-Hochberg correction runs over the whole table (every comparison, task, shots and metric), separately
for each test; the marks use the corrected paired t-test, at the paper's thresholds (** < 0.01, * < 0.05,
dagger < 0.1). The 95% interval of the mean difference is Student's t interval over the seeds.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from genemask.evaluation.metrics import METRICS
from genemask.evaluation.model_names import pretrained_model, random_init_name

MARK_THRESHOLDS = ((0.01, "**"), (0.05, "*"), (0.1, "dagger"))
MARK_TEXT = {  # how each output format prints a mark
    "plain": {"**": "**", "*": "*", "dagger": "†"},
    "markdown": {"**": "\\*\\*", "*": "\\*", "dagger": "†"},  # escaped: not bold or italics markers
    "latex": {"**": "$^{**}$", "*": "$^{*}$", "dagger": "$^{\\dagger}$"},
}
PAIRED_COLUMNS = [
    "task",
    "shots",
    "metric",
    "model",
    "baseline",
    "comparison",
    "n_pairs",
    "mean_difference",
    "std_difference",
    "ci95_low",
    "ci95_high",
    "t",
    "p_ttest",
    "p_wilcoxon",
    "q_ttest",
    "q_wilcoxon",
    "mark",
]


def baselines(models: list[str]) -> list[tuple[str, str, str]]:
    """(model, baseline, comparison) for every pretrained model whose baselines are among `models`."""
    present = set(models)
    pairs = []
    for model in models:
        identity = pretrained_model(model)
        if identity is None:
            continue
        random_masking = identity.with_strategy("random")
        if identity.strategy != "random" and random_masking in present:
            pairs.append((model, random_masking, "random"))
        floor = random_init_name(identity.preset)
        if floor in present:
            pairs.append((model, floor, "random-init"))
    return pairs


def paired_statistics(differences: np.ndarray) -> dict[str, float]:
    """Mean, std, 95% t interval, paired t-test and Wilcoxon signed-rank p of per-seed differences (NaN-free)."""
    n = differences.size
    out = {
        "n_pairs": n,
        "mean_difference": float(differences.mean()) if n else math.nan,
        "std_difference": float(differences.std(ddof=1)) if n > 1 else math.nan,
        "ci95_low": math.nan,
        "ci95_high": math.nan,
        "t": math.nan,
        "p_ttest": math.nan,
        "p_wilcoxon": math.nan,
    }
    if n < 2:
        return out
    half_width = stats.t.ppf(0.975, n - 1) * out["std_difference"] / math.sqrt(n)
    out["ci95_low"], out["ci95_high"] = (
        out["mean_difference"] - half_width,
        out["mean_difference"] + half_width,
    )
    if not np.any(differences):
        return out  # identical results: no test has anything to say
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # Every seed differing by the same amount (common with few seeds and small test sets: one test
        # sequence more right on each) gives t = inf and p = 0: an artefact of zero variance, not evidence; the
        # t-test stays undefined (NaN, no mark) and the rank test speaks alone.
        if out["std_difference"] > 0:
            result = stats.ttest_1samp(differences, 0.0)
            out["t"], out["p_ttest"] = float(result.statistic), float(result.pvalue)
        try:
            out["p_wilcoxon"] = float(stats.wilcoxon(differences).pvalue)
        except ValueError:
            pass
    return out


def benjamini_hochberg(p_values: pd.Series) -> pd.Series:
    """BH-adjusted p-values over the finite entries; NaN stays NaN."""
    adjusted = pd.Series(np.nan, index=p_values.index)
    finite = p_values.notna()
    if finite.any():
        adjusted[finite] = stats.false_discovery_control(p_values[finite].to_numpy(), method="bh")
    return adjusted


def significance_mark(p: float) -> str:
    """'**', '*', 'dagger' or '' at the paper's thresholds."""
    if math.isnan(p):
        return ""
    return next((mark for threshold, mark in MARK_THRESHOLDS if p < threshold), "")


def paired_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every (model vs baseline, task, shots, metric) comparison over the seeds both have (see module doc)."""
    rows = []
    models = list(dict.fromkeys(runs.model))
    by_model = {model: runs[runs.model == model] for model in models}
    for model, baseline, comparison in baselines(models):
        joined = by_model[model].merge(
            by_model[baseline], on=["task", "shots", "seed"], suffixes=("", "_baseline")
        )
        for (task, shots), cell in joined.groupby(["task", "shots"], sort=False):
            for metric in METRICS:
                differences = (cell[metric] - cell[f"{metric}_baseline"]).dropna().to_numpy(dtype=float)
                rows.append(
                    {
                        "task": task,
                        "shots": shots,
                        "metric": metric,
                        "model": model,
                        "baseline": baseline,
                        "comparison": comparison,
                        **paired_statistics(differences),
                    }
                )
    table = pd.DataFrame(rows, columns=PAIRED_COLUMNS[:-3])
    table["q_ttest"] = benjamini_hochberg(table.p_ttest)
    table["q_wilcoxon"] = benjamini_hochberg(table.p_wilcoxon)
    table["mark"] = [significance_mark(q) for q in table.q_ttest]
    return table[PAIRED_COLUMNS]


def plot_differences(table: pd.DataFrame, tasks: list[str], titles: dict[str, str], out) -> None:
    """Mean difference against `random` with its 95% interval, one panel per (metric, task), x = shots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genemask.atomic import atomic_file

    data = table[table.comparison == "random"]
    metrics = [metric for metric in METRICS if metric in set(data.metric)] or ["accuracy"]
    tasks = [task for task in tasks if task in set(data.task)] or tasks[:1]
    figure, axes = plt.subplots(
        len(metrics), len(tasks), figsize=(3.2 * len(tasks), 2.4 * len(metrics)), squeeze=False
    )
    models = list(dict.fromkeys(data.model))
    for row, metric in enumerate(metrics):
        for column, task in enumerate(tasks):
            axis = axes[row][column]
            cell = data[(data.metric == metric) & (data.task == task)]
            shots = sorted(
                set(cell.shots), key=lambda s: (isinstance(s, str), 0 if isinstance(s, str) else s)
            )
            for offset, model in enumerate(models):
                line = cell[cell.model == model]
                if line.empty:
                    continue
                x = np.array([shots.index(s) for s in line.shots]) + 0.12 * (offset - (len(models) - 1) / 2)
                low = (line.mean_difference - line.ci95_low).fillna(0).to_numpy()
                high = (line.ci95_high - line.mean_difference).fillna(0).to_numpy()
                axis.errorbar(
                    x,
                    line.mean_difference.to_numpy(),
                    yerr=np.vstack([low, high]),
                    fmt="o",
                    capsize=3,
                    label=model,
                )
            axis.axhline(0, color="grey", linewidth=0.8)
            axis.set_xticks(range(len(shots)), [str(s) for s in shots])
            axis.grid(alpha=0.3)
            if row == 0:
                axis.set_title(titles.get(task, task))
            if row == len(metrics) - 1:
                axis.set_xlabel("shots")
            if column == 0:
                axis.set_ylabel(f"Δ {metric} vs random")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if not labels:
        axes[0][0].text(
            0.5,
            0.5,
            "no strategy with a random-masking\nbaseline of the same size and steps",
            ha="center",
            va="center",
            transform=axes[0][0].transAxes,
        )
    figure.legend(handles, labels, loc="lower center", ncol=max(1, min(len(labels), 4)), frameon=False)
    figure.tight_layout(rect=(0, 0.06 + 0.04 * (max(len(labels), 1) - 1) // 4, 1, 1))
    with atomic_file(out) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
