"""JASPAR motif enrichment among the top-NPMI k-mers (method.md section 7).

Every k-mer is scored against every motif's position weight matrix (PWM) at its best alignment: the k-mer
inside the motif when the motif is longer, the motif inside the k-mer when it is shorter, on both strands.
Scores are relative, (score - min) / (max - min) over the aligned window, as in MOODS and TFBS, so that motifs
of different length and information content share one threshold. A motif "hits" a k-mer when its relative
score reaches the threshold. Each motif is then tested for enrichment among the top-N k-mers against all 4^k
k-mers (hypergeometric), and for a shift of its hits towards the top of the whole ranking (Mann-Whitney),
with Benjamini-Hochberg FDR control over motifs.

PWM: p(b | column i) = (n_ib + pseudocount * bg_b) / (N_i + pseudocount), log-odds = ln(p / bg_b). The default
background is uniform, because the universe is the set of all 4^k k-mers, each counted once; `human`
(A/T 0.295, C/G 0.205) is available.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from genemask.atomic import atomic_file
from genemask.errors import UserError

ALPHABET = "ACGT"
BACKGROUNDS: dict[str, tuple[float, float, float, float]] = {
    "uniform": (0.25, 0.25, 0.25, 0.25),
    "human": (0.295, 0.205, 0.205, 0.295),
}
RANKS_COLUMNS = ("kmer", "count", "npmi", "rank")
ENRICHMENT_COLUMNS = (
    "motif_id",
    "name",
    "length",
    "hits_top",
    "hits_all",
    "odds_ratio",
    "p_hypergeom",
    "q_hypergeom",
    "p_rank",
    "q_rank",
)
# Bound on the (k-mers x alignment windows) score block held in memory at once.
_BLOCK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class Motif:
    motif_id: str
    name: str
    counts: np.ndarray  # (length, 4) float64, columns A C G T

    @property
    def length(self) -> int:
        return int(self.counts.shape[0])


@dataclass(frozen=True)
class KmerRanking:
    """The NPMI ranking of all 4^k k-mers, in file order."""

    kmers: np.ndarray  # str, (4^k,)
    codes: np.ndarray  # uint8 (4^k, k), A0 C1 G2 T3
    count: np.ndarray  # int64
    npmi: np.ndarray  # float64, NaN below the count threshold
    rank: np.ndarray  # int64, 1 = highest NPMI

    @property
    def k(self) -> int:
        return int(self.codes.shape[1])

    def top(self, n: int) -> np.ndarray:
        """Indices of the n best-ranked k-mers, best first (ties keep file order)."""
        return np.argsort(self.rank, kind="stable")[:n]


@dataclass(frozen=True)
class MotifScores:
    """Best alignment of every k-mer (rows) against every motif (columns)."""

    relative: np.ndarray  # float32, best relative score over alignments and strands
    strand: np.ndarray  # int8, +1: the k-mer matches the motif as given; -1: its reverse complement does
    offset: np.ndarray  # int16, motif column facing the (strand-oriented) k-mer's first base; < 0: the motif
    # starts -offset bases into the k-mer


@dataclass(frozen=True)
class EnrichmentResult:
    table: pd.DataFrame  # one row per motif, ENRICHMENT_COLUMNS, most significant first
    per_kmer: pd.DataFrame  # one row per top-N k-mer, its best-matching motifs
    scores: MotifScores
    motifs: list[Motif]


def parse_background(spec: str | Sequence[float]) -> np.ndarray:
    """`uniform`, `human`, or four probabilities for A C G T ("0.3,0.2,0.2,0.3" or a sequence)."""
    if isinstance(spec, str):
        if spec in BACKGROUNDS:
            return np.array(BACKGROUNDS[spec])
        try:
            values = [float(v) for v in spec.split(",")]
        except ValueError:
            values = []
    else:
        values = [float(v) for v in spec]
    background = np.array(values)
    if (
        background.shape != (4,)
        or np.any(background <= 0)
        or not math.isclose(background.sum(), 1, abs_tol=1e-6)
    ):
        raise UserError(
            f"background {spec!r}: expected 'uniform', 'human' or four positive A,C,G,T probabilities "
            "summing to 1"
        )
    return background / background.sum()


def load_jaspar(
    release: str = "JASPAR2024",
    collection: str = "CORE",
    tax_group: str | None = "vertebrates",
    motif_ids: Sequence[str] | None = None,
) -> list[Motif]:
    """Count matrices from pyjaspar's bundled database (latest version of each matrix), sorted by matrix id.

    `tax_group` None or "all" keeps every taxon. `motif_ids` keeps a subset, by full id (MA0139.2) or base id
    (MA0139); every id asked for must be present.
    """
    from pyjaspar import jaspar_releases, jaspardb

    if release not in jaspar_releases:  # pyjaspar itself only prints a warning
        raise UserError(
            f"JASPAR release {release!r}: not bundled with pyjaspar; expected one of "
            f"{', '.join(sorted(jaspar_releases))}"
        )
    database = jaspardb(release=release)
    taxa = None if tax_group in (None, "all") else [tax_group]
    fetched = database.fetch_motifs(collection=collection, tax_group=taxa)
    motifs = [
        Motif(m.matrix_id, str(m.name), np.array([m.counts[b] for b in ALPHABET], dtype=np.float64).T)
        for m in fetched
    ]
    if not motifs:
        raise UserError(f"JASPAR {release}: no motifs in collection {collection!r}, tax group {tax_group!r}")
    if motif_ids:
        wanted = set(motif_ids)
        motifs = [m for m in motifs if m.motif_id in wanted or m.motif_id.split(".")[0] in wanted]
        found = {m.motif_id for m in motifs} | {m.motif_id.split(".")[0] for m in motifs}
        missing = sorted(wanted - found)
        if missing:
            raise UserError(
                f"JASPAR {release} {collection} {tax_group}: motif id(s) {', '.join(missing)} not found"
            )
    return sorted(motifs, key=lambda m: m.motif_id)


def log_odds(counts: np.ndarray, background: np.ndarray, pseudocount: float) -> np.ndarray:
    """Natural-log PWM of a (length, 4) count matrix; the pseudocount is spread by the background."""
    probabilities = (counts + pseudocount * background) / (counts.sum(axis=1, keepdims=True) + pseudocount)
    return np.log(probabilities / background)


def kmer_codes(kmers: Sequence[str] | np.ndarray) -> np.ndarray:
    """k-mer strings (ACGT, equal length) -> uint8 codes (n, k), A0 C1 G2 T3."""
    joined = "".join(kmers).encode("ascii")
    lookup = np.full(256, 255, dtype=np.uint8)
    lookup[np.frombuffer(ALPHABET.encode(), dtype=np.uint8)] = np.arange(4, dtype=np.uint8)
    k = len(kmers[0]) if len(kmers) else 0
    return lookup[np.frombuffer(joined, dtype=np.uint8)].reshape(len(kmers), k)


def all_kmers(k: int) -> list[str]:
    """All 4^k k-mers in lexicographic ACGT order."""
    return ["".join(p) for p in itertools.product(ALPHABET, repeat=k)]


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    return (3 - codes)[..., ::-1]


def _alignment_windows(
    motifs: Sequence[Motif], k: int, background: np.ndarray, pseudocount: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (motif, alignment) as a weight vector over a one-hot k-mer (k*4), with its min and max score.

    Returns weights (n_windows, k*4), min, max, the motif index and the offset of each window; the windows of
    one motif are contiguous, in increasing offset order for longer motifs, decreasing for shorter ones.
    """
    weights, lows, highs, owners, offsets = [], [], [], [], []
    for index, motif in enumerate(motifs):
        pwm = log_odds(motif.counts, background, pseudocount)
        length = motif.length
        if length >= k:  # the k-mer slides inside the motif
            n = length - k + 1
            windows = np.lib.stride_tricks.sliding_window_view(pwm, (k, 4))[:, 0]  # (n, k, 4)
            low = np.lib.stride_tricks.sliding_window_view(pwm.min(axis=1), k).sum(axis=1)
            high = np.lib.stride_tricks.sliding_window_view(pwm.max(axis=1), k).sum(axis=1)
            offset = np.arange(n)
        else:  # the motif slides inside the k-mer
            n = k - length + 1
            windows = np.zeros((n, k, 4))
            for start in range(n):
                windows[start, start : start + length] = pwm
            low = np.full(n, pwm.min(axis=1).sum())
            high = np.full(n, pwm.max(axis=1).sum())
            offset = -np.arange(n)
        weights.append(windows.reshape(n, k * 4))
        lows.append(low)
        highs.append(high)
        owners.append(np.full(n, index))
        offsets.append(offset)
    return (
        np.concatenate(weights).astype(np.float32),
        np.concatenate(lows),
        np.concatenate(highs),
        np.concatenate(owners),
        np.concatenate(offsets),
    )


def _one_hot(codes: np.ndarray) -> np.ndarray:
    n, k = codes.shape
    encoded = np.zeros((n, k, 4), dtype=np.float32)
    encoded[np.arange(n)[:, None], np.arange(k)[None, :], codes] = 1.0
    return encoded.reshape(n, k * 4)


def _best_per_motif(relative: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum over each motif's window rows (windows x k-mers), and the first window that reaches it."""
    best = np.maximum.reduceat(relative, starts, axis=0)
    n_windows = relative.shape[0]
    sizes = np.diff(np.append(starts, n_windows))
    reached = relative == np.repeat(best, sizes, axis=0)
    window = np.where(reached, np.arange(n_windows, dtype=np.int32)[:, None], np.int32(n_windows))
    return best, np.minimum.reduceat(window, starts, axis=0)


def score_kmers(
    codes: np.ndarray, motifs: Sequence[Motif], background: np.ndarray, pseudocount: float
) -> MotifScores:
    """Best relative score of every k-mer against every motif, over alignments and both strands.

    Ties prefer the forward strand, then the first window (smallest offset for longer motifs, the motif at the
    k-mer's start for shorter ones). A window whose min equals its max carries no information and scores 0.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    n_kmers, k = codes.shape
    # Windows x k-mers layout: the per-motif reductions then run over contiguous rows.
    forward = _one_hot(codes).T.copy()
    reverse = _one_hot(reverse_complement_codes(codes)).T.copy()
    relative = np.empty((n_kmers, len(motifs)), dtype=np.float32)
    strand = np.empty((n_kmers, len(motifs)), dtype=np.int8)
    offset = np.empty((n_kmers, len(motifs)), dtype=np.int16)
    weights, low, high, owner, window_offset = _alignment_windows(motifs, k, background, pseudocount)
    span = high - low
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0).astype(np.float32)[:, None]
    shift = low.astype(np.float32)[:, None]
    motif_starts = np.flatnonzero(np.diff(owner, prepend=-1))
    per_block = max(1, _BLOCK_ELEMENTS // max(1, n_kmers))
    block_start = 0
    while block_start < len(motifs):  # blocks of whole motifs bound the memory
        first_window = motif_starts[block_start]
        block_end = block_start + 1
        while block_end < len(motifs) and motif_starts[block_end] - first_window < per_block:
            block_end += 1
        last_window = motif_starts[block_end] if block_end < len(motifs) else len(owner)
        window_rows = slice(first_window, last_window)
        starts = motif_starts[block_start:block_end] - first_window
        best = []
        for one_hot in (forward, reverse):
            window_relative = (weights[window_rows] @ one_hot - shift[window_rows]) * scale[window_rows]
            best.append(_best_per_motif(window_relative, starts))
        (best_forward, window_forward), (best_reverse, window_reverse) = best
        use_reverse = best_reverse > best_forward
        motif_columns = slice(block_start, block_end)
        relative[:, motif_columns] = np.where(use_reverse, best_reverse, best_forward).T
        strand[:, motif_columns] = np.where(use_reverse, -1, 1).T
        window = np.where(use_reverse, window_reverse, window_forward) + first_window
        offset[:, motif_columns] = window_offset[window].T
        block_start = block_end
    return MotifScores(relative, strand, offset)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    q = np.empty(n)
    q[order] = adjusted
    return q


def hypergeometric_enrichment(hits: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per motif (column of `hits`): hits among the top k-mers, hits overall, odds ratio, one-sided p.

    p = P(X >= hits_top) for X hypergeometric (all k-mers, hits_all, top size), which equals the one-sided
    Fisher exact test. The odds ratio is the sample one, with 0.5 added to every cell when a cell is 0.
    """
    hits = np.asarray(hits, dtype=bool)
    n_all, n_top = hits.shape[0], int(top.sum())
    hits_top = hits[top].sum(axis=0)
    hits_all = hits.sum(axis=0)
    p = stats.hypergeom.sf(hits_top - 1, n_all, hits_all, n_top)
    cells = np.stack(
        [hits_top, n_top - hits_top, hits_all - hits_top, n_all - n_top - hits_all + hits_top]
    ).astype(np.float64)
    cells += np.where((cells == 0).any(axis=0), 0.5, 0.0)
    odds_ratio = cells[0] * cells[3] / (cells[1] * cells[2])
    return hits_top, hits_all, odds_ratio, np.clip(p, 0.0, 1.0)


def rank_enrichment(hits: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """One-sided Mann-Whitney p per motif: are the NPMI ranks of its hits better (smaller) than the others'?

    Normal approximation with tie correction and continuity correction (as scipy's asymptotic method); a motif
    that hits no k-mer or every k-mer gets p = 1.
    """
    hits = np.asarray(hits, dtype=bool)
    n = hits.shape[0]
    midranks = stats.rankdata(rank)
    n_hit = hits.sum(axis=0).astype(np.float64)
    n_other = n - n_hit
    u_hit = midranks @ hits - n_hit * (n_hit + 1) / 2
    _, tie_sizes = np.unique(rank, return_counts=True)
    tie_term = (tie_sizes**3 - tie_sizes).sum() / (n * (n - 1)) if n > 1 else 0.0
    variance = n_hit * n_other / 12 * ((n + 1) - tie_term)
    testable = variance > 0
    z = np.divide(
        u_hit - n_hit * n_other / 2 + 0.5, np.sqrt(variance), out=np.zeros(hits.shape[1]), where=testable
    )
    return np.where(testable, stats.norm.cdf(z), 1.0)


def check_settings(ranking: KmerRanking, *, top_n: int, threshold: float, pseudocount: float) -> None:
    if not 0 < threshold <= 1:
        raise UserError(f"threshold {threshold}: expected a relative score in (0, 1]")
    if pseudocount < 0:
        raise UserError(f"pseudocount {pseudocount}: expected a non-negative number")
    n_ranked = int(np.isfinite(ranking.npmi).sum())
    if not 1 <= top_n <= n_ranked:
        raise UserError(f"top-n {top_n}: expected 1..{n_ranked}, the number of k-mers with an NPMI value")


def motif_enrichment(
    ranking: KmerRanking,
    motifs: Sequence[Motif],
    *,
    top_n: int = 100,
    threshold: float = 0.85,
    pseudocount: float = 0.8,
    background: np.ndarray | None = None,
    n_best: int = 3,
) -> EnrichmentResult:
    """Score, test and tabulate: the enrichment table and the best motifs of each top-N k-mer."""
    if background is None:
        background = np.array(BACKGROUNDS["uniform"])
    check_settings(ranking, top_n=top_n, threshold=threshold, pseudocount=pseudocount)
    scores = score_kmers(ranking.codes, motifs, background, pseudocount)
    hits = scores.relative >= np.float32(threshold)
    top_index = ranking.top(top_n)
    top = np.zeros(len(ranking.kmers), dtype=bool)
    top[top_index] = True
    hits_top, hits_all, odds_ratio, p_hypergeom = hypergeometric_enrichment(hits, top)
    p_rank = rank_enrichment(hits, ranking.rank)
    table = pd.DataFrame(
        {
            "motif_id": [m.motif_id for m in motifs],
            "name": [m.name for m in motifs],
            "length": [m.length for m in motifs],
            "hits_top": hits_top,
            "hits_all": hits_all,
            "odds_ratio": odds_ratio,
            "p_hypergeom": p_hypergeom,
            "q_hypergeom": benjamini_hochberg(p_hypergeom),
            "p_rank": p_rank,
            "q_rank": benjamini_hochberg(p_rank),
        }
    )
    table = table.sort_values(["p_hypergeom", "p_rank", "motif_id"], kind="stable").reset_index(drop=True)
    return EnrichmentResult(
        table, _best_motifs(ranking, motifs, scores, top_index, n_best), scores, list(motifs)
    )


def _best_motifs(
    ranking: KmerRanking, motifs: Sequence[Motif], scores: MotifScores, top_index: np.ndarray, n_best: int
) -> pd.DataFrame:
    """The n_best motifs of each top k-mer by relative score (ties: smaller motif id first)."""
    relative = scores.relative[top_index]
    n_best = min(n_best, len(motifs))
    order = np.argsort(-relative, axis=1, kind="stable")[:, :n_best]  # motifs are sorted by id
    ids = np.array([m.motif_id for m in motifs])
    names = np.array([m.name for m in motifs])
    columns: dict[str, object] = {
        "kmer": ranking.kmers[top_index],
        "rank": ranking.rank[top_index],
        "npmi": ranking.npmi[top_index],
    }
    for j in range(n_best):
        chosen = order[:, j]
        columns[f"motif{j + 1}_id"] = ids[chosen]
        columns[f"motif{j + 1}_name"] = names[chosen]
        columns[f"motif{j + 1}_score"] = relative[np.arange(len(top_index)), chosen]
        columns[f"motif{j + 1}_strand"] = np.where(scores.strand[top_index, chosen] > 0, "+", "-")
        columns[f"motif{j + 1}_offset"] = scores.offset[top_index, chosen]
    return pd.DataFrame(columns)


def read_kmer_ranks(path: str | Path) -> KmerRanking:
    """Read and validate `kmer_ranks.tsv` (tab-separated, header `kmer count npmi rank`, all 4^k k-mers)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file, expected a k-mer ranking (kmer count npmi rank)")
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False
        )
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: empty file, expected header 'kmer count npmi rank'") from None
    except pd.errors.ParserError as error:
        raise UserError(f"{path}: {str(error).strip().splitlines()[-1]}") from None
    missing = [c for c in RANKS_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: line 1: missing column(s) {', '.join(missing)}; expected tab-separated header "
            f"'kmer count npmi rank'"
        )
    if frame.empty:
        raise UserError(f"{path}: no k-mer rows after the header")
    frame = frame.fillna("")

    def fail(row: int, message: str) -> UserError:
        return UserError(f"{path}: line {row + 2}: {message}")

    kmers = frame["kmer"].str.strip().str.upper().to_numpy(dtype=str)
    k = int(np.bincount(np.char.str_len(kmers)).argmax())  # the usual length, so the odd row is reported
    bad = np.flatnonzero(~pd.Series(kmers).str.fullmatch(f"[ACGT]{{{max(k, 1)}}}").to_numpy())
    if bad.size:
        raise fail(bad[0], f"k-mer {frame['kmer'].iloc[bad[0]]!r}: expected {max(k, 1)} letters from ACGT")
    duplicated = np.flatnonzero(pd.Series(kmers).duplicated().to_numpy())
    if duplicated.size:
        raise fail(duplicated[0], f"duplicate k-mer {kmers[duplicated[0]]}")
    if len(kmers) != 4**k:
        absent = sorted(set(all_kmers(k)) - set(kmers)) if k <= 10 else []
        example = f", e.g. {absent[0]}" if absent else ""
        raise UserError(f"{path}: {len(kmers)} k-mers, expected all 4^{k} = {4**k}{example}")

    def integers(column: str, minimum: int) -> np.ndarray:
        text = frame[column].str.strip()
        valid = text.str.fullmatch(r"\d+").to_numpy()
        values = np.zeros(len(text), dtype=np.int64)
        values[valid] = text[valid].astype(np.int64)
        bad = np.flatnonzero(~valid | (values < minimum))
        if bad.size:
            raise fail(bad[0], f"{column} {frame[column].iloc[bad[0]]!r}: expected an integer >= {minimum}")
        return values

    count = integers("count", 0)
    rank = integers("rank", 1)
    npmi_text = frame["npmi"].str.strip()
    npmi = pd.to_numeric(npmi_text.where(npmi_text != "", "nan"), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(npmi) & ~npmi_text.str.lower().isin(["", "nan", "na"]).to_numpy())
    if bad.size:
        raise fail(
            bad[0], f"npmi {npmi_text.iloc[bad[0]]!r}: expected a number, or empty below the threshold"
        )
    return KmerRanking(kmers, kmer_codes(kmers), count, npmi, rank)


def plot_enrichment(table: pd.DataFrame, path: Path, fdr: float = 0.05, n_labels: int = 10) -> None:
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
    fdr: float = 0.05,
    n_logos: int = 8,
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
