"""JASPAR motifs and the scoring of every k-mer against them (the first half of the motif stage).

Every k-mer is scored against every motif's position weight matrix (PWM) at its best alignment: the k-mer
inside the motif when the motif is longer, the motif inside the k-mer when it is shorter, on both strands.
Scores are relative, (score - min) / (max - min) over the aligned window, as in MOODS and TFBS, so that motifs
of different length and information content share one threshold.

PWM: p(b | column i) = (n_ib + pseudocount * bg_b) / (N_i + pseudocount), log-odds = ln(p / bg_b). The default
background is uniform, because the universe is the set of all 4^k k-mers, each counted once; `human`
(A/T 0.295, C/G 0.205) is available.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genemask.errors import UserError

ALPHABET = "ACGT"
BACKGROUNDS: dict[str, tuple[float, float, float, float]] = {
    "uniform": (0.25, 0.25, 0.25, 0.25),
    "human": (0.295, 0.205, 0.205, 0.295),
}
DEFAULT_BACKGROUND = "uniform"
DEFAULT_RELEASE = "JASPAR2024"
DEFAULT_COLLECTION = "CORE"
DEFAULT_TAX_GROUP = "vertebrates"
DEFAULT_PSEUDOCOUNT = 0.8
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
class MotifScores:
    """Best alignment of every k-mer (rows) against every motif (columns)."""

    relative: np.ndarray  # float32, best relative score over alignments and strands
    strand: np.ndarray  # int8, +1: the k-mer matches the motif as given; -1: its reverse complement does
    offset: np.ndarray  # int16, motif column facing the (strand-oriented) k-mer's first base; < 0: the motif
    # starts -offset bases into the k-mer


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
    release: str = DEFAULT_RELEASE,
    collection: str = DEFAULT_COLLECTION,
    tax_group: str | None = DEFAULT_TAX_GROUP,
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
