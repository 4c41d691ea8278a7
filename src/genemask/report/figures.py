"""Figures and small HTML tables for the Snakemake report (`snakemake --report`), one function per section."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.plotting import pyplot, save_png
from genemask.genome.chunkstore import check_summary
from genemask.ngrams.ranks import read_kmer_ranks

plt = pyplot()

_STYLE = (
    "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}</style>"
)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: line {error.lineno}: invalid JSON") from None


def _save_figure(figure, out: Path) -> None:
    save_png(figure, out, tight=True)


def _write_html(out: Path, title: str, body: str) -> None:
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{_STYLE}</head>"
    )
    page += f"<body><h2>{html.escape(title)}</h2>{body}</body></html>\n"
    with atomic_file(out) as tmp:
        tmp.write_text(page)


def chunk_report(summary_path: Path, figure_out: Path, table_out: Path) -> None:
    """Chunk length histogram and the base accounting of the chunk store."""
    summary = check_summary(_read_json(summary_path), summary_path)
    edges = np.array(summary["length_histogram"]["edges"])
    counts = np.array(summary["length_histogram"]["counts"])
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="black", color="#4c72b0")
    axis.set_xlabel("chunk length (nt)")
    axis.set_ylabel("chunks")
    axis.set_title(
        f"{summary['chunks_train'] + summary['chunks_valid']:,} chunks from {summary['contigs']} contigs"
    )
    _save_figure(figure, figure_out)
    keys = [
        "bases_total",
        "bases_acgt",
        "bases_kept",
        "bases_skipped",
        "bases_duplicate",
        "chunks_train",
        "chunks_valid",
        "chunks_duplicate",
        "chunks_sampled",
    ]
    rows = "".join(f"<tr><th>{key}</th><td>{summary[key]:,}</td></tr>" for key in keys)
    rows += f"<tr><th>fraction_kept</th><td>{summary['fraction_kept']:.4f}</td></tr>"
    _write_html(table_out, "Chunk store", f"<table>{rows}</table>")


def npmi_report(
    ngrams_path: Path, ranks_path: Path, figure_out: Path, table_out: Path, top: int = 25
) -> None:
    """NPMI distribution per n-gram length, and the best and worst ranked k-mers."""
    ranking = read_kmer_ranks(ranks_path)
    try:
        table = pd.read_parquet(ngrams_path, columns=["n", "npmi"])
    except FileNotFoundError as error:
        raise UserError(f"{error.filename}: no such file") from None
    table = table.dropna()
    lengths = sorted(table["n"].unique())
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.boxplot([table.loc[table["n"] == n, "npmi"] for n in lengths], showfliers=False)
    axis.set_xticks(range(1, len(lengths) + 1), [str(n) for n in lengths])
    axis.set_xlabel("n-gram length n")
    axis.set_ylabel("NPMI")
    axis.set_title("NPMI of kept n-grams by length")
    _save_figure(figure, figure_out)
    order = np.argsort(ranking.rank, kind="stable")
    order = order[np.isfinite(ranking.npmi[order])]  # the k-mers with an NPMI value, best first
    ranked = pd.DataFrame(
        {
            "rank": ranking.rank[order],
            "kmer": ranking.kmers[order],
            "count": ranking.count[order],
            "npmi": ranking.npmi[order],
        }
    )

    def rows(frame: pd.DataFrame) -> str:
        return "".join(
            f"<tr><td>{r['rank']}</td><td style='font-family:monospace'>{r['kmer']}</td>"
            f"<td>{r['count']:,}</td><td>{r['npmi']:.4f}</td></tr>"
            for _, r in frame.iterrows()
        )

    header = "<tr><th>rank</th><th>k-mer</th><th>count</th><th>NPMI</th></tr>"
    body = f"<h3>Top {top}</h3><table>{header}{rows(ranked.head(top))}</table>"
    body += f"<h3>Bottom 10 ranked</h3><table>{header}{rows(ranked.tail(10))}</table>"
    _write_html(table_out, "NPMI ranking of k-mers", body)


def masking_report(statistics_path: Path, figure_out: Path) -> None:
    """Share of fully hidden 6-mers in each NPMI-rank decile, per strategy (uniform = 0.1)."""
    try:
        stats = pd.read_csv(statistics_path, sep="\t")
    except FileNotFoundError:
        raise UserError(f"{statistics_path}: no such file") from None
    deciles = [c for c in stats.columns if c.startswith("rank_decile_")]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(len(stats), 1)
    x = np.arange(1, len(deciles) + 1)
    for i, (_, row) in enumerate(stats.iterrows()):
        axis.bar(
            x + (i - (len(stats) - 1) / 2) * width, row[deciles].to_numpy(float), width, label=row["strategy"]
        )
    axis.axhline(0.1, color="grey", linestyle="--", linewidth=1)
    axis.set_xticks(x)
    axis.set_xlabel("NPMI rank decile (1 = highest NPMI)")
    axis.set_ylabel("share of fully hidden 6-mers")
    axis.legend(fontsize=8)
    _save_figure(figure, figure_out)


def training_report(metrics_paths: Sequence[Path], figure_out: Path) -> dict[str, int]:
    """Training and validation loss curves, one line per pretrained model; a curriculum's switch (cm-gems: the
    step after which global masking took over) is a dotted vertical line in its model's colour. Returns the
    switch step of each model that switched."""
    figure, (train_axis, valid_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    switches = {}
    for path in metrics_paths:
        try:
            metrics = pd.read_csv(path)
        except FileNotFoundError:
            raise UserError(f"{path}: no such file") from None
        name = Path(path).parent.name
        train = metrics.dropna(subset=["train_loss"]) if "train_loss" in metrics else metrics.iloc[0:0]
        lines = []
        if len(train):
            lines += train_axis.plot(train["step"], train["train_loss"], label=name)
        if "valid_loss" in metrics:
            valid = metrics.dropna(subset=["valid_loss"])
            lines += valid_axis.plot(valid["step"], valid["valid_loss"], marker="o", label=name)
        switch = metrics["switch_step"].dropna() if "switch_step" in metrics else []
        if len(switch):
            switches[name] = int(switch.iloc[0])
            colour = lines[0].get_color() if lines else "grey"
            for axis in (train_axis, valid_axis):
                axis.axvline(switches[name], color=colour, linestyle=":", linewidth=1.2)
            valid_axis.annotate(
                f"switch {switches[name]}",
                (switches[name], 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color=colour,
                rotation=90,
                ha="right",
                va="top",
            )
    for axis, title in ((train_axis, "training loss"), (valid_axis, "validation loss (fixed masks)")):
        axis.set_xlabel("step")
        axis.set_title(title)
        axis.legend(fontsize=7)
    _save_figure(figure, figure_out)
    return switches
