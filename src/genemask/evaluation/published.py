"""The papers' published few-shot numbers, matched to our models, and `vs_paper`: ours beside theirs.

`data/published_fewshot.csv` ships with the package (source and columns in `data/README.md`): GeneMask (ECAI
2023) Tables 1 and 4 and CM-GEMS (ECAI 2024) Table 4, each cell a mean and std over 10 runs.

Our pretrained models are named `<preset>_<strategy>_<steps>` (genemask.evaluation.model_names). A cell of ours is
matched to a published row with the same masking strategy, task, shots and metric:
- exact: the same architecture (preset `dnabert` = DNABERT, `logo` = LOGO) and the same pretraining steps;
- nearest: otherwise the published row closest in architecture (a preset the paper did not run counts as the
  paper's architecture of the nearest size) and then in steps (log scale). A simulated task stands in for the
  real task of the same kind. A nearest row is always labelled with what differs; it orients, it does not test.
  (A strategy the paper ran only on DNABERT, e.g. pmi-vocab, gets DNABERT's row for a LOGO-size model.)
A strategy the paper did not publish for that task and shots, the random-init floor and the k-mer baseline
have no published row.

vs_paper tests exact cells only. Per exact cell: the difference ours - paper, its 95% interval and Welch's p from
the two summaries (Welch-Satterthwaite df; ours n seeds, the paper 10 runs, both std with ddof = 1, which we
assume of the paper), an equivalence test (TOST) against a margin, and the minimum detectable difference at 80%
power and alpha 0.05, MDD = (t_{0.975, df} + t_{0.80, df}) x SE. Verdict per cell: reproduced (TOST p < 0.05),
differs (Welch p < 0.05 after Holm's correction over the task's exact cells), else inconclusive; per task:
differs if any cell differs, reproduced if every cell is (intersection-union: no correction needed), else
inconclusive with the range of MDD. Nearest rows show the published values for orientation: no difference, no p,
no verdict; simulated tasks are never tested against real ones.
"""

from __future__ import annotations

import functools
import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from genemask.evaluation.model_names import pretrained_model
from genemask.evaluation.settings import EQUIVALENCE_MARGIN

PUBLISHED_CSV = Path(__file__).parent / "data" / "published_fewshot.csv"
PUBLISHED_SHA1 = "3cec187b9c62925355001caaec9b1a1046d49167"  # git blob sha1 of the shipped copy
PUBLISHED_RUNS = 10  # every published cell is a mean over 10 runs
ALPHA = 0.05  # every test here: two-sided Welch, each one-sided test of TOST
POWER = 0.80  # of the minimum detectable difference

# Our model presets (genemask.training.models) -> the papers' architecture names.
ARCHITECTURES = {"dnabert": "DNABERT", "logo": "LOGO"}
# Our masking strategies -> the papers' masking names. The *-as-released strategies are the authors' code, which
# produced their rows; the papers' `genemask-best-of-3-variants` is a per-cell maximum, matched by nothing.
STRATEGIES = {
    "random": "random",
    "genemask": "genemask",
    "genemask-as-released": "genemask",
    "pmi-vocab": "pmi-vocab",
    "global": "global",
    "global-as-released": "global",
    "cm-gems": "cm-gems",
    "cm-gems-as-released": "cm-gems",
    "cm-step": "cm-step",
}
REAL_TASK_TITLES = {
    "prom-core": "Prom-core",
    "prom-300": "Prom-300",
    "cohn-enh": "Cohn-enh",
    "splice-40": "Splice-40",
    "sil-300": "Sil-300",
}
SIMULATED_STAND_INS = {"sim-promoter": "Prom-core", "sim-enhancer": "Cohn-enh", "sim-splice": "Splice-40"}
VS_PAPER_COLUMNS = [
    "task",
    "shots",
    "metric",
    "model",
    "match",
    "paper_source",
    "paper_architecture",
    "paper_masking",
    "paper_steps",
    "paper_task",
    "ours_mean",
    "ours_std",
    "ours_n",
    "paper_mean",
    "paper_std",
    "paper_n",
    "paper_significance_vs_random",
    "difference",  # from here on: exact cells only
    "ci95_low",
    "ci95_high",
    "welch_df",
    "welch_p",
    "holm_p",
    "tost_p",
    "mdd80",
    "verdict",
]


@functools.cache
def published_table() -> pd.DataFrame:
    """The shipped published numbers, one row per (source, architecture, masking, steps, task, shots, metric)."""
    return pd.read_csv(PUBLISHED_CSV, dtype={"significance_vs_random_10k": str})


def paper_architecture(preset: str) -> str:
    """The papers' architecture for a preset: itself where they ran it, else LOGO, the smaller one.

    Our other presets (`tiny`, for the demo and tests) are smaller than both, so LOGO is the nearest.
    """
    return ARCHITECTURES.get(preset, "LOGO")


@dataclass(frozen=True)
class PaperMatch:
    kind: str  # "exact" or "nearest"
    label: str  # "exact", or "nearest: <what differs>"
    row: pd.Series  # the published row


def match_published(model: str, task: str, shots: object, metric: str) -> PaperMatch | None:
    """The published row for our (model, task, shots, metric) cell; None where the papers have none."""
    identity = pretrained_model(model)
    if identity is None or identity.strategy not in STRATEGIES:
        return None
    paper_task = REAL_TASK_TITLES.get(task) or SIMULATED_STAND_INS.get(task)
    if paper_task is None or not isinstance(shots, int | np.integer):
        return None
    table = published_table()
    candidates = table[
        (table.masking == STRATEGIES[identity.strategy])
        & (table.task == paper_task)
        & (table.shots == int(shots))
        & (table.metric == metric)
    ]
    if candidates.empty:
        return None
    architecture = paper_architecture(identity.preset)
    order = candidates.assign(
        _other_arch=candidates.architecture != architecture,
        _step_distance=(np.log(candidates.steps) - math.log(max(identity.steps, 1))).abs(),
        _source_order=np.arange(len(candidates)),  # GeneMask 2023 first: the CM-GEMS rows repeat its runs
    ).sort_values(["_other_arch", "_step_distance", "_source_order"])
    row = order.iloc[0][table.columns]
    differs = []
    if row.architecture != ARCHITECTURES.get(identity.preset):
        differs.append(f"{row.architecture} (ours {identity.preset})")
    if row.steps != identity.steps:
        differs.append(f"{row.steps} steps (ours {identity.steps})")
    if task not in REAL_TASK_TITLES:
        differs.append(f"{paper_task} (ours {task}, simulated)")
    if not differs:
        return PaperMatch("exact", "exact", row)
    return PaperMatch("nearest", "nearest: " + ", ".join(differs), row)


@dataclass(frozen=True)
class WelchComparison:
    """Ours minus the paper from two (mean, std, n) summaries, with Welch's standard error and df."""

    difference: float
    standard_error: float
    df: float

    def ci95(self) -> tuple[float, float]:
        half = stats.t.ppf(1 - ALPHA / 2, self.df) * self.standard_error
        return self.difference - half, self.difference + half

    def p_value(self) -> float:
        """Welch's two-sided p for "no difference"."""
        return float(2 * stats.t.sf(abs(self.difference) / self.standard_error, self.df))

    def tost_p(self, margin: float) -> float:
        """Two one-sided tests of |difference| < margin: the larger of the two one-sided p-values."""
        below = stats.t.sf((self.difference + margin) / self.standard_error, self.df)
        above = stats.t.cdf((self.difference - margin) / self.standard_error, self.df)
        return float(max(below, above))

    def minimum_detectable_difference(self) -> float:
        """(t_{1-alpha/2, df} + t_{power, df}) x SE: the difference a two-sided test finds with POWER."""
        return float(
            (stats.t.ppf(1 - ALPHA / 2, self.df) + stats.t.ppf(POWER, self.df)) * self.standard_error
        )


def welch_comparison(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int
) -> WelchComparison | None:
    """a - b with Welch's SE and Welch-Satterthwaite df; None where undefined (n < 2, NaN, both std 0)."""
    if n_a < 2 or n_b < 2 or not np.isfinite([mean_a, std_a, mean_b, std_b]).all() or std_a + std_b == 0:
        return None
    var_a, var_b = std_a**2 / n_a, std_b**2 / n_b
    df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    return WelchComparison(mean_a - mean_b, math.sqrt(var_a + var_b), df)


def holm(p_values: pd.Series) -> pd.Series:
    """Holm-adjusted p-values (step-down, monotone, capped at 1) over the finite entries; NaN stays NaN."""
    finite = p_values.dropna().sort_values()
    m = len(finite)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * finite.to_numpy()))
    return pd.Series(adjusted, index=finite.index).reindex(p_values.index)


def _published_row_columns(cell, match: PaperMatch) -> dict:
    paper = match.row
    significance = paper.significance_vs_random_10k
    return {
        "task": cell.task,
        "shots": cell.shots,
        "metric": cell.metric,
        "model": cell.model,
        "match": match.label,
        "paper_source": paper.source,
        "paper_architecture": paper.architecture,
        "paper_masking": paper.masking,
        "paper_steps": int(paper.steps),
        "paper_task": paper.task,
        "ours_mean": cell.mean,
        "ours_std": cell.std,
        "ours_n": int(cell.n_seeds),
        "paper_mean": float(paper["mean"]),
        "paper_std": float(paper["std"]),
        "paper_n": PUBLISHED_RUNS,
        "paper_significance_vs_random": "" if pd.isna(significance) else significance,
    }


def vs_paper(summary: pd.DataFrame, margin: float = EQUIVALENCE_MARGIN) -> pd.DataFrame:
    """Every cell of the tidy summary (model task shots metric mean std n_seeds) that has a published row.

    Exact cells get the difference, its Welch 95% interval, Welch's p (Holm-corrected over the task's exact cells),
    TOST against `margin`, the minimum detectable difference and a verdict; nearest rows only the paper's values.
    """
    rows = []
    for cell in summary.itertuples(index=False):
        match = match_published(cell.model, cell.task, cell.shots, cell.metric)
        if match is None:
            continue
        row = _published_row_columns(cell, match) | dict.fromkeys(VS_PAPER_COLUMNS[17:], math.nan)
        comparison = None
        if match.kind == "exact":
            row["difference"] = cell.mean - row["paper_mean"]
            comparison = welch_comparison(
                cell.mean, cell.std, int(cell.n_seeds), row["paper_mean"], row["paper_std"], PUBLISHED_RUNS
            )
        if comparison is not None:
            row["ci95_low"], row["ci95_high"] = comparison.ci95()
            row["welch_df"] = comparison.df
            row["welch_p"] = comparison.p_value()
            row["tost_p"] = comparison.tost_p(margin)
            row["mdd80"] = comparison.minimum_detectable_difference()
        rows.append(row)
    table = pd.DataFrame(rows, columns=VS_PAPER_COLUMNS)
    table["verdict"] = ""
    for _, task_rows in table.groupby("task", sort=False):
        table.loc[task_rows.index, "holm_p"] = holm(task_rows.welch_p)
    exact = table.match == "exact"
    table.loc[exact, "verdict"] = "untestable"
    tested = exact & table.welch_p.notna()
    table.loc[tested, "verdict"] = "inconclusive"
    table.loc[tested & (table.holm_p < ALPHA), "verdict"] = "differs"
    # Equivalent within the margin wins over "differs": a real difference smaller than the margin reproduces.
    table.loc[tested & (table.tost_p < ALPHA), "verdict"] = "reproduced"
    return table


def verdicts(table: pd.DataFrame, tasks: list[str], margin: float = EQUIVALENCE_MARGIN) -> dict[str, str]:
    """One line per task, judged on its exact cells only: reproduced within the margin, differs, or inconclusive."""
    lines = {}
    for task in tasks:
        rows = table[table.task == task]
        exact = rows[rows.match == "exact"]
        tested = exact[exact.verdict.isin(["reproduced", "differs", "inconclusive"])]
        if rows.empty:
            lines[task] = "no published cell for these models, shots and metrics."
        elif exact.empty:
            lines[task] = (
                f"no published cell with the same architecture, steps and (real) task; {len(rows)} nearest rows "
                "show the published values for orientation only, untested."
            )
        elif tested.empty:
            lines[task] = f"{len(exact)} exact cells, none testable (need >= 2 seeds and a non-zero std)."
        else:
            counts = tested.verdict.value_counts()
            reproduced, differ = int(counts.get("reproduced", 0)), tested[tested.verdict == "differs"]
            inconclusive = int(counts.get("inconclusive", 0))
            detail = (
                f"{reproduced} of {len(tested)} exact cells reproduced within ±{margin:g} (TOST p < {ALPHA}), "
                f"{len(differ)} differ (Holm-corrected Welch p < {ALPHA} over the task's cells; "
                f"{int((differ.difference < 0).sum())} lower), {inconclusive} inconclusive"
            )
            if len(differ):
                verdict = "differs from the paper"
            elif reproduced == len(tested):
                verdict = f"reproduced within ±{margin:g}"
            else:
                undecided = tested[tested.verdict == "inconclusive"].mdd80
                verdict = (
                    f"inconclusive (these seeds detect differences of {undecided.min():.3f} to "
                    f"{undecided.max():.3f} with 80% power)"
                )
            lines[task] = f"{verdict}: {detail}; mean difference {tested.difference.mean():+.3f}."
    return lines


def _number(value: float, format_spec: str) -> str:
    return "" if pd.isna(value) else format(value, format_spec)


def vs_paper_markdown(
    table: pd.DataFrame,
    lines: dict[str, str],
    task_titles: dict[str, str],
    margin: float = EQUIVALENCE_MARGIN,
) -> str:
    out = [
        "# Ours beside the published numbers",
        "",
        f"`exact`: same architecture, masking, steps, (real) task and shots: ours - paper with Welch's 95% interval "
        f"(ours: n seeds; the paper: {PUBLISHED_RUNS} runs; both std with ddof = 1, the paper's assumed so), "
        f"TOST against ±{margin:g} (`results.equivalence_margin`) and the smallest difference these seeds detect "
        "with 80% power at alpha 0.05 (MDD). Verdict per cell: reproduced (TOST p < 0.05), differs (Welch p < 0.05 "
        "after Holm over the task's exact cells), else inconclusive. `nearest`: the closest published row, "
        "labelled with what differs, for orientation only: no test, no verdict.",
        "",
        "## Verdict per task (exact cells only)",
        "",
    ]
    out += [f"- **{task_titles.get(task, task)}**: {line}" for task, line in lines.items()]
    out += [
        "",
        "| Task | Shots | Metric | Model | Ours (n) | Paper | Ours - paper [95% CI] | TOST p | MDD | Verdict "
        "| Match |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in table.itertuples(index=False):
        ours = f"{row.ours_mean:.3f}" + ("" if math.isnan(row.ours_std) else f" ± {row.ours_std:.3f}")
        paper = f"{row.paper_mean:.3f} ± {row.paper_std:.3f}"
        difference = _number(row.difference, "+.3f")
        if not pd.isna(row.ci95_low):
            difference += f" [{row.ci95_low:+.3f}, {row.ci95_high:+.3f}]"
        source = f"{row.paper_architecture} {row.paper_masking} {row.paper_steps} ({row.paper_source})"
        out.append(
            f"| {task_titles.get(row.task, row.task)} | {row.shots} | {row.metric} | {row.model} | "
            f"{ours} ({row.ours_n}) | {paper} | {difference} | {_number(row.tost_p, '.3g')} | "
            f"{_number(row.mdd80, '.3f')} | {row.verdict} | {row.match}; {source} |"
        )
    return "\n".join(out) + "\n"


def vs_paper_html(table: pd.DataFrame, lines: dict[str, str], task_titles: dict[str, str]) -> str:
    """The verdicts and the table as one HTML page, for the Snakemake report."""
    verdict_items = "".join(
        f"<li><b>{html.escape(task_titles.get(task, task))}</b>: {html.escape(line)}</li>"
        for task, line in lines.items()
    )
    style = (
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px}th{background:#eee}</style>"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Ours beside the paper</title>{style}</head>"
        f"<body><h2>Ours beside the published numbers</h2><ul>{verdict_items}</ul>"
        f"{table.to_html(index=False, float_format=lambda x: f'{x:.4g}', na_rep='n/a')}</body></html>\n"
    )
