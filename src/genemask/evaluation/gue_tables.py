"""GUE result tables in the CM-GEMS paper's layout, our models beside the published columns, and the heat map.

  <out>/tables/gue.csv        tidy: source (ours | published), model, task, group, dataset, metric, mean, std, n_seeds
  <out>/tables/gue.md / .tex  MCC x 100 per task (rows, grouped as CM-GEMS Table 2) and model (columns: ours, then
                              published), per-group means, the mean over the tasks run (the 27-task mean when all
                              are), the paired test of each masking strategy against `random`, deviations
  <out>/tables/gue_tests.csv  the paired tests
  <out>/figures/gue_heatmap.png  MCC x 100 per task and model

Paired test (as CM-GEMS compares strategies): for each of our models `<arch>_<strategy>_<steps>` with a
`<arch>_random_<steps>` beside it, the per-task means over seeds are paired across the tasks both ran; we give
the mean difference, a paired t-test and a Wilcoxon signed-rank test (two-sided, scipy), and wins/ties/losses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from genemask import __version__
from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.gue import GROUP_ORDER, GUE_TASKS, gue_task
from genemask.evaluation.metrics import METRICS

PUBLISHED_FILE = Path(__file__).parent / "data" / "gue_mcc.csv"
PUBLISHED_SOURCE = "CM-GEMS (Roy et al., ECAI 2024) Table 2; 120K columns from the DNABERT-2 paper"
BASELINE_STRATEGY = "random"
_MODEL_NAME = re.compile(r"(?P<arch>.+)_(?P<strategy>[^_]+)_(?P<steps>\d+)")
IDENTITY = ("model", "task", "seed")


def write_gue_record(path: str | Path, record: dict, *, model: str, task: str, seed: int) -> dict:
    """One GUE run's JSON (identity first, non-finite metrics as null), atomically; return what was written."""
    full = {"model": model, "task": task, "seed": seed, **record, "genemask_version": __version__}
    full["metrics"] = {
        name: value if value is None or math.isfinite(value) else None
        for name, value in record["metrics"].items()
    }
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(full, indent=2) + "\n")
    return full


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
    """One row per run (model task seed, metrics x 100) and, per task, the deviations its runs record."""
    rows, seen, deviations = [], {}, {}
    for path in map(Path, paths):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{path}: not a readable GUE run record ({error})") from None
        missing = [key for key in (*IDENTITY, "metrics") if key not in record]
        if missing:
            raise UserError(f"{path}: run record lacks {', '.join(missing)}")
        key = tuple(record[name] for name in IDENTITY)
        if key in seen:
            raise UserError(f"{path}: the same run ({', '.join(map(str, key))}) as {seen[key]}")
        seen[key] = path
        gue_task(record["task"])
        metrics = {
            m: np.nan if record["metrics"].get(m) is None else 100 * record["metrics"][m] for m in METRICS
        }
        rows.append(dict(zip(IDENTITY, key, strict=True)) | metrics)
        deviations.setdefault(record["task"], set()).update(record.get("deviations", []))
        if record.get("truncated_sequences"):
            deviations[record["task"]].add(
                f"{record['model']}: sequences over {record['max_length_used']} tokens truncated "
                f"({record['truncated_sequences']}; {record['truncation']})"
            )
    if not rows:
        raise UserError("no GUE run records given")
    return pd.DataFrame(rows, columns=[*IDENTITY, *METRICS]), deviations


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Tidy: model task metric mean std n_seeds (std ddof = 1; NaN for one seed)."""
    long = runs.melt(id_vars=list(IDENTITY), value_vars=list(METRICS), var_name="metric")
    return (
        long.groupby(["model", "task", "metric"], sort=False)["value"]
        .agg(mean="mean", std="std", n_seeds="count")
        .reset_index()
    )


def paired_tests(means: pd.DataFrame, baseline: str = BASELINE_STRATEGY) -> pd.DataFrame:
    """Each `<arch>_<s>_<steps>` against `<arch>_<baseline>_<steps>` over the tasks both have (task x model)."""
    rows = []
    for model in means.columns:
        match = _MODEL_NAME.fullmatch(model)
        if match is None or match["strategy"] == baseline:
            continue
        reference = f"{match['arch']}_{baseline}_{match['steps']}"
        if reference not in means.columns:
            continue
        pair = means[[model, reference]].dropna()
        diff = (pair[model] - pair[reference]).to_numpy()
        n = diff.size
        t_p = wilcoxon_p = np.nan
        t_stat = np.nan
        if n >= 2 and np.std(diff) > 0:
            t_stat, t_p = stats.ttest_rel(pair[model], pair[reference])
        if n >= 1 and np.any(diff != 0):
            wilcoxon_p = stats.wilcoxon(diff).pvalue
        rows.append(
            {
                "model": model,
                "baseline": reference,
                "n_tasks": n,
                "mean_difference": float(diff.mean()) if n else np.nan,
                "t": float(t_stat),
                "p_t_test": float(t_p),
                "p_wilcoxon": float(wilcoxon_p),
                "wins": int((diff > 0).sum()),
                "ties": int((diff == 0).sum()),
                "losses": int((diff < 0).sum()),
            }
        )
    columns = [
        "model",
        "baseline",
        "n_tasks",
        "mean_difference",
        "t",
        "p_t_test",
        "p_wilcoxon",
        "wins",
        "ties",
    ]
    return pd.DataFrame(rows, columns=[*columns, "losses"])


def _fmt(value: float, std: float = np.nan, plus_minus: str = " ± ") -> str:
    if np.isnan(value):
        return "–"
    return f"{value:.2f}" if np.isnan(std) else f"{value:.2f}{plus_minus}{std:.2f}"


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
    out = [
        "# GUE: MCC x 100 on the test set",
        "",
        f"Ours: mean ± std over seeds, full training data, model selected on dev. Published: {PUBLISHED_SOURCE}.",
        "",
        "| Group | Task | "
        + " | ".join(tables.ours)
        + " | "
        + " | ".join(f"{m} (published)" for m in tables.published_models)
        + " |",
        "|---|---|" + "---:|" * len(tables.columns),
    ]
    for group, task, cells in tables.rows():
        bold = "**" if task.startswith(("mean", "27")) else ""
        out.append(f"| {group} | {bold}{task}{bold} | " + " | ".join(cells) + " |")
    out += ["", f"## Paired test across tasks against `{BASELINE_STRATEGY}` (per-task means over seeds)", ""]
    if tests.empty:
        out.append(f"No model has a `{BASELINE_STRATEGY}` counterpart of the same size and steps.")
    else:
        out += [
            "| Model | Baseline | Tasks | Mean difference | t | p (paired t) | p (Wilcoxon) | wins/ties/losses |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for row in tests.itertuples():
            out.append(
                f"| {row.model} | {row.baseline} | {row.n_tasks} | {_fmt(row.mean_difference)} | {_fmt(row.t)} | "
                f"{_p(row.p_t_test)} | {_p(row.p_wilcoxon)} | {row.wins}/{row.ties}/{row.losses} |"
            )
        out += ["", "Few tasks say little: below 6 tasks the two-sided Wilcoxon test cannot reach p < 0.05."]
    notes = [
        f"- {GUE_TASKS[task].title}: {note}"
        for task in tables.tasks
        for note in sorted(deviations.get(task, ()))
    ]
    if notes:
        out += ["", "## Deviations from the published setting (not comparable where listed)", "", *notes]
    return "\n".join(out) + "\n"


def _p(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.3g}"


def _latex_escape(text: str) -> str:
    for char in "\\&%$#_{}":
        text = text.replace(char, f"\\{char}")
    return text


def latex(tables: GueTables, tests: pd.DataFrame) -> str:
    header = " & ".join(_latex_escape(c) for c in tables.columns)
    out = [
        "% GUE MCC x 100 (ours: mean $\\pm$ std over seeds); needs \\usepackage{booktabs}.",
        "\\begin{table}[ht]",
        "\\centering\\scriptsize",
        f"\\caption{{GUE, MCC $\\times$ 100. Published: {_latex_escape(PUBLISHED_SOURCE)}.}}",
        f"\\begin{{tabular}}{{ll{'r' * len(tables.columns)}}}",
        "\\toprule",
        f"Group & Task & {header} \\\\",
        "\\midrule",
    ]
    for group, task, cells in tables.rows(" $\\pm$ "):
        out.append(
            f"{_latex_escape(group)} & {_latex_escape(task)} & "
            + " & ".join(cells).replace("–", "--")
            + " \\\\"
        )
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    if not tests.empty:
        out += [
            "\\begin{table}[ht]",
            "\\centering",
            f"\\caption{{Paired tests across GUE tasks against {BASELINE_STRATEGY} masking.}}",
            "\\begin{tabular}{llrrrr}",
            "\\toprule",
            "Model & Baseline & Tasks & Mean diff. & $p$ (paired $t$) & $p$ (Wilcoxon) \\\\",
            "\\midrule",
        ]
        for row in tests.itertuples():
            out.append(
                f"{_latex_escape(row.model)} & {_latex_escape(row.baseline)} & {row.n_tasks} & "
                f"{_fmt(row.mean_difference)} & {_p(row.p_t_test)} & {_p(row.p_wilcoxon)} \\\\".replace(
                    "–", "--"
                )
            )
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)


def plot_heatmap(tables: GueTables, out: Path) -> None:
    """MCC x 100 per task (rows) and model (columns: ours, then published), each cell annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    with atomic_file(out) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def make_gue_results(
    run_paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Aggregate GUE run records into tables/gue.* and figures/gue_heatmap.png under `out_dir`; return the summary."""
    out_dir = Path(out_dir)
    runs, deviations = load_gue_runs(run_paths)
    summary = summarise(runs)
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
    for name, text in (
        ("gue.csv", tidy.to_csv(index=False, float_format="%.6g")),
        ("gue.md", markdown(tables, tests, deviations)),
        ("gue.tex", latex(tables, tests)),
        ("gue_tests.csv", tests.to_csv(index=False, float_format="%.6g")),
    ):
        with atomic_file(out_dir / "tables" / name) as tmp:
            tmp.write_text(text)
    plot_heatmap(tables, out_dir / "figures" / "gue_heatmap.png")
    return summary
