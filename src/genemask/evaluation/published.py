"""The papers' published few-shot numbers, matched to our models, and `vs_paper`: ours beside theirs.

`data/published_fewshot.csv` ships with the package (source and columns in `data/README.md`): GeneMask (ECAI
2023) Tables 1 and 4 and CM-GEMS (ECAI 2024) Table 4, each cell a mean and std over 10 runs.

Our pretrained models are named `<preset>_<strategy>_<steps>` (workflow/rules/common.smk). A cell of ours is
matched to a published row with the same masking strategy, task, shots and metric:
- exact: the same architecture (preset `dnabert` = DNABERT, `logo` = LOGO) and the same pretraining steps;
- nearest: otherwise the published row closest in architecture (a preset the paper did not run counts as the
  paper's architecture of the nearest size) and then in steps (log scale). A simulated task stands in for the
  real task of the same kind. A nearest row is always labelled with what differs; it orients, it does not test.
  (A strategy the paper ran only on DNABERT, e.g. pmi-vocab, gets DNABERT's row for a LOGO-size model.)
A strategy the paper did not publish for that task and shots, the random-init floor and the k-mer baseline
have no published row.

vs_paper: for each matched cell, ours and the paper's mean and std, the difference, and Welch's t-test on the
two summaries (scipy.stats.ttest_ind_from_stats; the paper's cells are means of 10 runs, ours of n seeds).
"""

from __future__ import annotations

import functools
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

PUBLISHED_CSV = Path(__file__).parent / "data" / "published_fewshot.csv"
PUBLISHED_SHA1 = "3cec187b9c62925355001caaec9b1a1046d49167"  # git blob sha1 of the shipped copy
PUBLISHED_RUNS = 10  # every published cell is a mean over 10 runs
CONSISTENT_ALPHA = 0.05  # Welch p >= this: no evidence that ours differs from the paper

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
# `<preset>_<strategy>_<steps>`, or `..._step<N>` for a run's model exported at step N (learning curves).
_MODEL_NAME = re.compile(
    r"^(?P<preset>[A-Za-z0-9.]+)_(?P<strategy>[A-Za-z0-9.-]+)_(?P<run_steps>\d+)(?:_step(?P<step>\d+))?$"
)
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
    "difference",
    "welch_t",
    "welch_p",
    "consistent",
]


@dataclass(frozen=True)
class PretrainedModel:
    """What a pretrained model's name says: `<preset>_<strategy>_<run steps>[_step<steps>]`; `steps` are the
    optimiser steps behind the weights (the export step of an exported model)."""

    preset: str
    strategy: str
    steps: int
    run_steps: int

    @property
    def suffix(self) -> str:
        """`_<run steps>` or `_<run steps>_step<N>`: what the same run's models of other strategies share."""
        return f"_{self.run_steps}" + (f"_step{self.steps}" if self.steps != self.run_steps else "")


def parse_model_name(name: str) -> PretrainedModel | None:
    """`tiny_genemask_60` -> (tiny, genemask, 60); None for other names (random-init floors, references)."""
    found = _MODEL_NAME.match(name)
    if found is None:
        return None
    run_steps = int(found["run_steps"])
    return PretrainedModel(found["preset"], found["strategy"], int(found["step"] or run_steps), run_steps)


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
    identity = parse_model_name(model)
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


def welch_from_summaries(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int
) -> tuple[float, float]:
    """Welch's t-test on two (mean, std, n) summaries -> (t, p); NaN where undefined (n < 2, both std 0)."""
    if n_a < 2 or n_b < 2 or not np.isfinite([mean_a, std_a, mean_b, std_b]).all() or std_a + std_b == 0:
        return math.nan, math.nan
    result = stats.ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def vs_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """Every cell of the tidy summary (model task shots metric mean std n_seeds) that has a published row."""
    rows = []
    for cell in summary.itertuples(index=False):
        match = match_published(cell.model, cell.task, cell.shots, cell.metric)
        if match is None:
            continue
        paper = match.row
        t, p = welch_from_summaries(
            cell.mean, cell.std, int(cell.n_seeds), paper["mean"], paper["std"], PUBLISHED_RUNS
        )
        rows.append(
            {
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
                "paper_significance_vs_random": ""
                if pd.isna(paper.significance_vs_random_10k)
                else paper.significance_vs_random_10k,
                "difference": cell.mean - float(paper["mean"]),
                "welch_t": t,
                "welch_p": p,
                "consistent": "" if math.isnan(p) else ("yes" if p >= CONSISTENT_ALPHA else "no"),
            }
        )
    return pd.DataFrame(rows, columns=VS_PAPER_COLUMNS)


def verdicts(table: pd.DataFrame, tasks: list[str]) -> dict[str, str]:
    """One line per task: is ours consistent with the paper, judged on the exact cells only."""
    lines = {}
    for task in tasks:
        rows = table[table.task == task]
        exact = rows[rows.match == "exact"]
        tested = exact[exact.welch_p.notna()]
        if rows.empty:
            lines[task] = "no published cell for these models, shots and metrics."
        elif exact.empty:
            lines[task] = (
                f"no published cell with the same architecture, steps and task; {len(rows)} nearest rows are "
                "listed for orientation only, not as a test of reproduction."
            )
        elif tested.empty:
            lines[task] = f"{len(exact)} exact cells, none testable (need >= 2 seeds and a non-zero std)."
        else:
            differ = tested[tested.welch_p < CONSISTENT_ALPHA]
            lower = int((differ.difference < 0).sum())
            verdict = "consistent with the paper" if differ.empty else "differs from the paper"
            lines[task] = (
                f"{verdict}: {len(tested) - len(differ)} of {len(tested)} exact cells agree (Welch p >= "
                f"{CONSISTENT_ALPHA}); {len(differ)} differ ({lower} lower, {len(differ) - lower} higher); "
                f"mean difference {tested.difference.mean():+.3f}."
            )
    return lines


def vs_paper_markdown(table: pd.DataFrame, lines: dict[str, str], task_titles: dict[str, str]) -> str:
    out = [
        "# Ours beside the published numbers",
        "",
        "Welch's t-test on the two summaries (ours: n seeds; the paper: 10 runs). `exact`: same architecture, "
        "masking, steps, task and shots; `nearest`: the closest published row, labelled with what differs "
        "(orientation only).",
        "",
        "## Verdict per task (exact cells only)",
        "",
    ]
    out += [f"- **{task_titles.get(task, task)}**: {line}" for task, line in lines.items()]
    out += [
        "",
        "| Task | Shots | Metric | Model | Ours | Paper | Difference | Welch p | Match |",
        "|---|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for row in table.itertuples(index=False):
        ours = f"{row.ours_mean:.3f}" + ("" if math.isnan(row.ours_std) else f" ± {row.ours_std:.3f}")
        paper = f"{row.paper_mean:.3f} ± {row.paper_std:.3f}"
        p = "n/a" if math.isnan(row.welch_p) else f"{row.welch_p:.3g}"
        source = f"{row.paper_architecture} {row.paper_masking} {row.paper_steps} ({row.paper_source})"
        out.append(
            f"| {task_titles.get(row.task, row.task)} | {row.shots} | {row.metric} | {row.model} | {ours} | "
            f"{paper} | {row.difference:+.3f} | {p} | {row.match}; {source} |"
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
