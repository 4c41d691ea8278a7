"""The motif stage's outputs: the enrichment tables, the ranked plot, the sequence logos and the HTML section."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genemask.atomic import atomic_file
from genemask.motifs.enrichment import ENRICHMENT_COLUMNS, EnrichmentResult
from genemask.motifs.jaspar import ALPHABET, Motif

DEFAULT_FDR = 0.05
DEFAULT_LOGOS = 8


def plot_enrichment(table: pd.DataFrame, path: Path, fdr: float = DEFAULT_FDR, n_labels: int = 10) -> None:
    """Ranked plot: -log10 q of both tests by motif rank, the top motifs labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    position = np.arange(1, len(table) + 1)
    floor = np.finfo(np.float64).tiny
    figure, axes = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for column, label, style in (
        ("q_hypergeom", "hypergeometric (top-N)", "o"),
        ("q_rank", "rank test", "x"),
    ):
        axes.plot(position, -np.log10(np.maximum(table[column], floor)), style, ms=3, label=label)
    axes.axhline(-math.log10(fdr), color="grey", ls="--", lw=1, label=f"FDR {fdr:g}")
    for i in range(min(n_labels, len(table))):
        y = -math.log10(max(table["q_hypergeom"].iloc[i], floor))
        axes.annotate(
            f"{table['name'].iloc[i]} ({table['motif_id'].iloc[i]})",
            (position[i], y),
            xytext=(0.3, 0.93 - 0.065 * i),  # a column of labels, away from the crowded points
            textcoords="axes fraction",
            fontsize=7,
            va="center",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"},
        )
    axes.set_xscale("log")
    axes.set_xlabel("motif rank (by hypergeometric p)")
    axes.set_ylabel("-log10 q (Benjamini-Hochberg)")
    axes.set_title("JASPAR motif enrichment among the top-NPMI k-mers")
    axes.legend(fontsize=8)
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=130)
    plt.close(figure)


def _logo_figure_png(motifs: Sequence[Motif], table: pd.DataFrame) -> bytes:
    """Information-content logos (bits) of `motifs`, one panel each, drawn with logomaker."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q_of = dict(zip(table["motif_id"], table["q_hypergeom"], strict=True))
    n_columns = 2
    n_rows = max(1, math.ceil(len(motifs) / n_columns))
    figure, axes = plt.subplots(
        n_rows, n_columns, figsize=(10, 1.9 * n_rows), layout="constrained", squeeze=False
    )
    for axis in axes.flat:
        axis.set_axis_off()
    if not motifs:
        axes[0, 0].text(0, 0.5, "no motifs to draw", fontsize=10)
    for axis, motif in zip(axes.flat, motifs, strict=False):
        axis.set_axis_on()
        counts = pd.DataFrame(motif.counts, columns=list(ALPHABET))
        information = logomaker.transform_matrix(counts, from_type="counts", to_type="information")
        logomaker.Logo(information, ax=axis, color_scheme="classic")
        axis.set_ylim(0, 2)
        axis.set_ylabel("bits", fontsize=8)
        axis.set_title(f"{motif.name} ({motif.motif_id})  q = {q_of[motif.motif_id]:.2g}", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def write_outputs(
    result: EnrichmentResult,
    out_dir: str | Path,
    *,
    parameters: dict[str, object],
    fdr: float = DEFAULT_FDR,
    n_logos: int = DEFAULT_LOGOS,
) -> None:
    """enrichment.tsv, kmer_best_motifs.tsv, enrichment.png, logos.png and report.html under out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_dir / "enrichment.tsv") as tmp:
        result.table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_file(out_dir / "kmer_best_motifs.tsv") as tmp:
        result.per_kmer.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="")
    plot_enrichment(result.table, out_dir / "enrichment.png", fdr=fdr)
    by_id = {m.motif_id: m for m in result.motifs}
    logo_motifs = [by_id[i] for i in result.table["motif_id"].iloc[:n_logos]]
    logos = _logo_figure_png(logo_motifs, result.table)
    with atomic_file(out_dir / "logos.png") as tmp:
        tmp.write_bytes(logos)
    with atomic_file(out_dir / "report.html") as tmp:
        tmp.write_text(report_html(result.table, logos, parameters=parameters, fdr=fdr), encoding="utf-8")


def report_html(
    table: pd.DataFrame, logos_png: bytes, *, parameters: dict[str, object], fdr: float, max_rows: int = 25
) -> str:
    """A self-contained HTML page holding one <section>: the enriched motifs and their logos."""
    enriched = table[table["q_hypergeom"] < fdr]
    shown = enriched if len(enriched) else table
    shown = shown.head(max_rows)
    setting = ", ".join(f"{key} = {html.escape(str(value))}" for key, value in parameters.items())
    if len(enriched):
        summary = (
            f"{len(enriched)} of {len(table)} motifs are enriched among the top-N k-mers at FDR {fdr:g}."
        )
    else:
        summary = f"No motif of {len(table)} is enriched at FDR {fdr:g}; the most significant are shown."
    header = "".join(f"<th>{html.escape(c)}</th>" for c in ENRICHMENT_COLUMNS)
    rows = []
    for record in shown.itertuples(index=False):
        cells = []
        for column in ENRICHMENT_COLUMNS:
            value = getattr(record, column)
            text = f"{value:.3g}" if isinstance(value, float) else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    image = base64.b64encode(logos_png).decode("ascii")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>JASPAR motif enrichment</title>"
        "<style>table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
        "</style></head><body>\n<section id='motif-enrichment'>\n"
        "<h2>JASPAR motifs among the top-NPMI k-mers</h2>\n"
        f"<p>{html.escape(summary)} Settings: {setting}.</p>\n"
        "<p>Hypergeometric test of motif hits among the top-N k-mers against all k-mers, and a one-sided "
        "Mann-Whitney test of the NPMI ranks of hit k-mers; q-values are Benjamini-Hochberg over "
        "motifs.</p>\n"
        f"<table><thead><tr>{header}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
        f"<h3>Sequence logos of the most significant motifs</h3>\n<img alt='motif logos' "
        f"src='data:image/png;base64,{image}'>\n</section>\n</body></html>\n"
    )
