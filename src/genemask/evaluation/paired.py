"""Paired comparisons of masking strategies, seed by seed, as the paper tests them.

Within one (task, shots, seed) every model fine-tunes on the same k-shot draw, so a strategy is compared with
its baseline seed by seed: the paired t-test (the paper's test) and the Wilcoxon signed-rank test (no normality
assumed) on the per-seed differences. Baselines, for a pretrained model `<preset>_<strategy>_<steps>`:
- `random`: `<preset>_random_<steps>`, the same architecture and steps with random masking (the paper's baseline);
- `random-init`: `<preset>_random-init`, the same architecture never pretrained (the floor).

Differences are compared at the metrics' resolution: rounded to RESOLUTION_DIGITS decimals before any test, so
that float noise (0.0151515151515152 against 0.0151515151515151, one test sequence better on each seed) is a
constant difference, with zero variance: the t-test is then undefined (NaN, no mark), not t = 5e14.

The Wilcoxon variant is ours, pinned (scipy's changed between 1.11 and 1.17 on tied input): zero differences
dropped (Wilcoxon's "wilcox" zero method), tied |differences| given their mid-rank, two-sided p from the exact
permutation distribution of the positive rank sum over all 2^n sign flips (ties included) for n <= WILCOXON_EXACT_MAX_N
non-zero differences, else the normal approximation with the tie-corrected variance sum(rank^2)/4 and no
continuity correction. The smallest two-sided p that n differences can reach is 2 / 2^n (n = 2: 0.5).

Benjamini-Hochberg correction runs per family: the comparisons against random masking (the marks) form one family
over the whole table (every model, task, shots and metric), those against the random-init floor another,
separately for each test. The marks use the corrected paired t-test at the paper's thresholds (** < 0.01,
* < 0.05, dagger < 0.1). The 95% interval of the mean difference is Student's t interval over the seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from genemask.evaluation.metrics import METRICS, rankdata
from genemask.evaluation.model_names import pretrained_model, random_init_name

RESOLUTION_DIGITS = 12  # metric values agree when they agree to 12 decimals (float noise is ~1e-16)
WILCOXON_EXACT_MAX_N = 50
MARK_THRESHOLDS = ((0.01, "**"), (0.05, "*"), (0.1, "dagger"))
MARK_TEXT = {  # how each output format prints a mark
    "plain": {"**": "**", "*": "*", "dagger": "†"},
    "markdown": {"**": "\\*\\*", "*": "\\*", "dagger": "†"},  # escaped: not bold or italics markers
    "latex": {"**": "$^{**}$", "*": "$^{*}$", "dagger": "$^{\\dagger}$"},
}
STATISTICS_COLUMNS = [
    "n_pairs",
    "mean_difference",
    "std_difference",
    "ci95_low",
    "ci95_high",
    "t",
    "p_ttest",
    "p_wilcoxon",
    "wins",
    "ties",
    "losses",
]
PAIRED_COLUMNS = [
    "task",
    "shots",
    "metric",
    "model",
    "baseline",
    "comparison",
    *STATISTICS_COLUMNS,
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


def at_resolution(values: np.ndarray) -> np.ndarray:
    """Values rounded to the metrics' resolution (RESOLUTION_DIGITS decimals), -0.0 made 0.0."""
    return np.round(np.asarray(values, dtype=float), RESOLUTION_DIGITS) + 0.0


def wilcoxon_signed_rank(differences: np.ndarray) -> float:
    """Two-sided p of the Wilcoxon signed-rank test, pinned as the module doc says; NaN if every difference is 0."""
    nonzero = at_resolution(differences)
    nonzero = nonzero[nonzero != 0]
    n = nonzero.size
    if n == 0:
        return math.nan
    ranks = rankdata(np.abs(nonzero))  # mid-ranks: multiples of 1/2
    positive_sum = float(ranks[nonzero > 0].sum())
    if n > WILCOXON_EXACT_MAX_N:
        z = (positive_sum - ranks.sum() / 2) / math.sqrt(float((ranks**2).sum()) / 4)
        return float(min(1.0, 2 * stats.norm.sf(abs(z))))
    # Exact: the distribution of twice the positive rank sum (an integer) over all 2^n sign flips, by convolution.
    doubled = np.rint(2 * ranks).astype(np.int64)
    counts = np.zeros(int(doubled.sum()) + 1)
    counts[0] = 1.0
    for rank in doubled:
        counts = counts + np.concatenate([np.zeros(rank), counts[:-rank]])
    probabilities = counts / 2.0**n
    observed = int(round(2 * positive_sum))
    lower, upper = probabilities[: observed + 1].sum(), probabilities[observed:].sum()
    return float(min(1.0, 2 * min(lower, upper)))


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p the exact test can give with n non-zero differences: 2 / 2^n."""
    return min(1.0, 2.0 / 2.0**n)


def paired_statistics(differences: np.ndarray) -> dict[str, float]:
    """Mean, std, 95% t interval, paired t-test and Wilcoxon p, wins/ties/losses of per-seed differences (NaN-free),
    all at the metrics' resolution. A constant difference has no t-test (zero variance: t would be infinite)."""
    differences = at_resolution(differences)
    n = differences.size
    out = {
        "n_pairs": n,
        "mean_difference": float(differences.mean()) if n else math.nan,
        "std_difference": float(differences.std(ddof=1)) if n > 1 else math.nan,
        "ci95_low": math.nan,
        "ci95_high": math.nan,
        "t": math.nan,
        "p_ttest": math.nan,
        "p_wilcoxon": wilcoxon_signed_rank(differences),
        "wins": int((differences > 0).sum()),
        "ties": int((differences == 0).sum()),
        "losses": int((differences < 0).sum()),
    }
    if n < 2:
        return out
    standard_error = out["std_difference"] / math.sqrt(n)
    half_width = stats.t.ppf(0.975, n - 1) * standard_error
    out["ci95_low"] = out["mean_difference"] - half_width
    out["ci95_high"] = out["mean_difference"] + half_width
    if np.ptp(differences) > 10.0**-RESOLUTION_DIGITS:  # not a constant difference at the resolution
        out["t"] = out["mean_difference"] / standard_error
        out["p_ttest"] = float(2 * stats.t.sf(abs(out["t"]), n - 1))
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


def correct_and_mark(table: pd.DataFrame) -> pd.DataFrame:
    """q_ttest, q_wilcoxon (Benjamini-Hochberg within each `comparison` family) and the mark from q_ttest."""
    table = table.copy()
    table["q_ttest"] = np.nan
    table["q_wilcoxon"] = np.nan
    for _, family in table.groupby("comparison", sort=False):
        table.loc[family.index, "q_ttest"] = benjamini_hochberg(family.p_ttest)
        table.loc[family.index, "q_wilcoxon"] = benjamini_hochberg(family.p_wilcoxon)
    table["mark"] = [significance_mark(q) for q in table.q_ttest]
    return table


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
    return correct_and_mark(table)[PAIRED_COLUMNS]


def plot_differences(table: pd.DataFrame, tasks: list[str], titles: dict[str, str], out) -> None:
    """Mean difference against `random` with its 95% interval, one panel per (metric, task), x = shots."""
    from genemask.evaluation.plotting import pyplot, save_png

    plt = pyplot()
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
    save_png(figure, out, dpi=110)
