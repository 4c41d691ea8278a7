"""Simulated few-shot tasks drawn from the simulated genome, so that the demo runs offline.

Background: windows of the simulated genome (genemask.genome.simulate) without N, upper-cased. Positives carry a
planted motif grammar; the motif sites are drawn from the genome's truth table (X.motifs.tsv), i.e. from the
same JASPAR matrices that were planted in the genome the models are pretrained on. Three tasks mirror the real
ones in length and number of classes:

- sim-promoter (70 nt, 2 classes): label 1 has a site of each of the two promoter motifs, in their own
  orientation, each starting in its own fixed window (PROMOTER_OFFSETS), like the TATA box and initiator
  around a TSS. Label 0 is background, but a fraction PROMOTER_DECOY_RATE carries one of the motifs outside its
  window, so that motif presence alone does not decide the class: position does.
- sim-enhancer (300 nt, 2 classes): label 1 has sites of 2 or 3 different enhancer motifs (either strand,
  anywhere, not overlapping); label 0 is background, a fraction ENHANCER_DECOY_RATE with a single such site.
  The class is decided by co-occurrence.
- sim-splice (40 nt, 3 classes, labels as inferred for Splice-40): 0 non-splice, 1 donor (a GT at 0-based
  positions 20-21 within a donor consensus), 2 acceptor (an AG at 17-18 after a polypyrimidine tract). The
  consensus letters are drawn from sharpened human splice-site matrices; a fraction SPLICE_DECOY_RATE of
  non-splice windows carries a bare GT or AG at the same position.

The rates were tuned so that the k-mer logistic regression reaches roughly 0.7-0.85 accuracy at 50 shots:
learnable, not trivial, and leaving room for a model that sees position and order.

Motif roles: the distinct motif ids of the truth table, sorted; the first two are the promoter motifs, the next
up to three the enhancer motifs. Every random choice derives from the seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.tasks import TASKS, LabelledSequences, deduplicate, write_labelled_tsv
from genemask.genome.fasta import NON_ACGT, encode, read_fasta

# Inclusive ranges of site starts of the two promoter motifs in sim-promoter positives (windows of 70 nt).
PROMOTER_OFFSETS = ((8, 14), (40, 46))
PROMOTER_DECOY_RATE = 0.15
ENHANCER_DECOY_RATE = 0.2
SPLICE_DECOY_RATE = 0.2
DONOR_START = 17  # donor matrix covers exon -3..-1 and intron +1..+6; GT at 20-21
ACCEPTOR_START = 5  # acceptor matrix covers intron -14..-1 and exon +1; AG at 17-18
_LETTERS = np.frombuffer(b"ACGT", dtype=np.uint8)
_COMPLEMENT = np.array([3, 2, 1, 0], dtype=np.uint8)

# Rows: positions; columns: A C G T. Human consensus MAG|GTRAGT (donor) and Y(10)NCAG|G (acceptor), sharpened
# so that the site is learnable from 6-mer counts at a few dozen examples.
_DONOR = np.array(
    [
        [0.30, 0.50, 0.10, 0.10],
        [0.80, 0.07, 0.07, 0.06],
        [0.04, 0.03, 0.90, 0.03],
        [0.00, 0.00, 1.00, 0.00],
        [0.00, 0.00, 0.00, 1.00],
        [0.80, 0.02, 0.15, 0.03],
        [0.85, 0.05, 0.05, 0.05],
        [0.04, 0.03, 0.90, 0.03],
        [0.07, 0.06, 0.07, 0.80],
    ]
)
_PYRIMIDINE = [0.03, 0.45, 0.02, 0.50]
_ACCEPTOR = np.array(
    [*[_PYRIMIDINE] * 10, [0.25, 0.30, 0.20, 0.25], [0.03, 0.85, 0.02, 0.10], [1.0, 0, 0, 0], [0, 0, 1.0, 0]]
    + [[0.10, 0.05, 0.80, 0.05]]
)


class Background:
    """Uniform random windows of a genome that contain no N (nor any other non-ACGT letter)."""

    def __init__(self, genome: Path):
        self.contigs = [encode(contig.seq) for contig in read_fasta(genome)]
        if not self.contigs:
            raise UserError(f"{genome}: no contigs")

    def windows(self, count: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """(count, length) 2-bit codes."""
        starts_per_contig = []
        for codes in self.contigs:
            bad = np.concatenate([[0], np.cumsum(codes == NON_ACGT)])
            n_starts = max(codes.size - length + 1, 0)
            starts_per_contig.append(np.flatnonzero(bad[length : length + n_starts] == bad[:n_starts]))
        sizes = np.array([starts.size for starts in starts_per_contig])
        if sizes.sum() == 0:
            raise UserError(f"the genome has no N-free window of {length} nt")
        ends = np.cumsum(sizes)
        picks = rng.integers(0, ends[-1], size=count)
        contig_of = np.searchsorted(ends, picks, side="right")
        offsets = picks - (ends - sizes)[contig_of]
        out = np.empty((count, length), dtype=np.uint8)
        for index, (contig, offset) in enumerate(zip(contig_of, offsets, strict=True)):
            start = starts_per_contig[contig][offset]
            out[index] = self.contigs[contig][start : start + length]
        return out


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    return _COMPLEMENT[codes[..., ::-1]]


def read_motif_sites(truth: Path) -> dict[str, list[np.ndarray]]:
    """Motif id -> its planted sites as 2-bit codes in the motif's own orientation."""
    if not truth.is_file():
        raise UserError(f"{truth}: no such file (the truth table written beside the simulated genome)")
    table = pd.read_csv(truth, sep="\t", dtype=str)
    expected = ["contig", "start", "end", "strand", "motif_id", "motif_name", "sequence"]
    if list(table.columns) != expected:
        raise UserError(
            f"{truth}: line 1: expected the header {' '.join(expected)}, got {' '.join(table.columns)}"
        )
    sites: dict[str, list[np.ndarray]] = {}
    for motif_id, strand, sequence in zip(table.motif_id, table.strand, table.sequence, strict=True):
        codes = encode(np.frombuffer(sequence.upper().encode("ascii"), dtype=np.uint8))
        if (codes == NON_ACGT).any():
            continue
        sites.setdefault(motif_id, []).append(reverse_complement(codes) if strand == "-" else codes)
    return sites


def _sample_matrix(probabilities: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    cumulative = np.cumsum(probabilities, axis=1)[:, :3]
    uniform = rng.random((count, probabilities.shape[0]))
    return (uniform[:, :, None] >= cumulative[None, :, :]).sum(axis=2).astype(np.uint8)


def _pick_site(sites: list[np.ndarray], rng: np.random.Generator, both_strands: bool) -> np.ndarray:
    site = sites[rng.integers(len(sites))]
    return reverse_complement(site) if both_strands and rng.random() < 0.5 else site


def simulate_promoter(
    background: Background, motif_sites: list[list[np.ndarray]], per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    length = TASKS["sim-promoter"].length
    windows = background.windows(2 * per_class, length, rng)
    labels = np.repeat([0, 1], per_class)
    for window, label in zip(windows, labels, strict=True):
        if label == 1:
            for sites, (low, high) in zip(motif_sites, PROMOTER_OFFSETS, strict=True):
                site = _pick_site(sites, rng, both_strands=False)
                start = rng.integers(low, high + 1)
                window[start : start + site.size] = site
        elif rng.random() < PROMOTER_DECOY_RATE:  # one of the motifs, away from its window
            motif = rng.integers(len(motif_sites))
            site = _pick_site(motif_sites[motif], rng, both_strands=False)
            low, high = PROMOTER_OFFSETS[motif]
            allowed = np.r_[0 : max(low - 4, 0), high + 5 : length - site.size + 1]
            start = rng.choice(allowed)
            window[start : start + site.size] = site
    return windows, labels


def simulate_enhancer(
    background: Background, motif_sites: list[list[np.ndarray]], per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    length = TASKS["sim-enhancer"].length
    windows = background.windows(2 * per_class, length, rng)
    labels = np.repeat([0, 1], per_class)
    for window, label in zip(windows, labels, strict=True):
        if label == 1:
            n_sites = rng.integers(2, min(3, len(motif_sites)) + 1)
        else:
            n_sites = int(rng.random() < ENHANCER_DECOY_RATE)
        chosen = rng.choice(len(motif_sites), size=n_sites, replace=False)
        slot = length // max(n_sites, 1)  # one site per equal slot: no overlaps
        for index, motif in enumerate(chosen):
            site = _pick_site(motif_sites[motif], rng, both_strands=True)
            start = index * slot + rng.integers(0, slot - site.size + 1)
            window[start : start + site.size] = site
    return windows, labels


def simulate_splice(
    background: Background, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    length = TASKS["sim-splice"].length
    windows = background.windows(3 * per_class, length, rng)
    labels = np.repeat([0, 1, 2], per_class)
    donor, acceptor = windows[labels == 1], windows[labels == 2]
    donor[:, DONOR_START : DONOR_START + len(_DONOR)] = _sample_matrix(_DONOR, per_class, rng)
    acceptor[:, ACCEPTOR_START : ACCEPTOR_START + len(_ACCEPTOR)] = _sample_matrix(_ACCEPTOR, per_class, rng)
    windows[labels == 1], windows[labels == 2] = donor, acceptor
    decoys = np.flatnonzero((labels == 0) & (rng.random(labels.size) < SPLICE_DECOY_RATE))
    as_donor = rng.random(decoys.size) < 0.5
    windows[decoys[as_donor], DONOR_START + 3 : DONOR_START + 5] = [2, 3]
    windows[decoys[~as_donor], ACCEPTOR_START + 12 : ACCEPTOR_START + 14] = [0, 2]
    return windows, labels


def _split(
    windows: np.ndarray, labels: np.ndarray, n_classes: int, test_per_class: int, rng: np.random.Generator
) -> tuple[LabelledSequences, LabelledSequences]:
    """Shuffle, deduplicate, then the first test_per_class of each class are the test set, the rest the pool."""
    order = rng.permutation(labels.size)
    sequences = [bytes(row).decode("ascii") for row in _LETTERS[windows[order]]]
    data, _ = deduplicate(LabelledSequences(sequences, labels[order].astype(np.int64)))
    rank_in_class = np.zeros(len(data), dtype=np.int64)
    for label in range(n_classes):
        members = np.flatnonzero(data.labels == label)
        rank_in_class[members] = np.arange(members.size)
    is_test = rank_in_class < test_per_class
    return data.subset(np.flatnonzero(is_test)), data.subset(np.flatnonzero(~is_test))


def simulate_tasks(
    genome: str | Path,
    truth: str | Path,
    out_dir: str | Path,
    *,
    seed: int = 0,
    test_size: int = 200,
    pool_size: int = 1000,
) -> dict:
    """Write <out_dir>/<task>/{test,pool}.tsv for sim-promoter, sim-enhancer and sim-splice, and simulation.json.

    `test_size` is the test rows per task (split evenly over the classes); `pool_size` the pool rows per class.
    """
    genome, truth, out_dir = Path(genome), Path(truth), Path(out_dir)
    if test_size < 3 or pool_size < 1:
        raise UserError(f"expected --test-size >= 3 and --pool-size >= 1, got {test_size} and {pool_size}")
    sites = read_motif_sites(truth)
    motif_ids = sorted(sites)
    if len(motif_ids) < 4:
        raise UserError(f"{truth}: {len(motif_ids)} motifs planted; the simulated tasks need at least 4")
    promoter_motifs, enhancer_motifs = motif_ids[:2], motif_ids[2:5]
    background = Background(genome)

    summary: dict = {
        "genome": str(genome),
        "seed": seed,
        "promoter_motifs": promoter_motifs,
        "enhancer_motifs": enhancer_motifs,
        "tasks": {},
    }
    for index, task in enumerate(("sim-promoter", "sim-enhancer", "sim-splice")):
        spec = TASKS[task]
        rng = np.random.default_rng([seed, index])
        test_per_class = test_size // spec.n_classes
        # A little slack for the (rare) duplicate windows that deduplication removes.
        per_class = test_per_class + pool_size + max(10, pool_size // 50)
        if task == "sim-promoter":
            windows, labels = simulate_promoter(
                background, [sites[m] for m in promoter_motifs], per_class, rng
            )
        elif task == "sim-enhancer":
            windows, labels = simulate_enhancer(
                background, [sites[m] for m in enhancer_motifs], per_class, rng
            )
        else:
            windows, labels = simulate_splice(background, per_class, rng)
        test, pool = _split(windows, labels, spec.n_classes, test_per_class, rng)
        pool = pool.subset(
            np.concatenate(
                [np.flatnonzero(pool.labels == label)[:pool_size] for label in range(spec.n_classes)]
            )
        )
        if min(pool.class_counts(spec.n_classes)) < pool_size:
            raise UserError(f"{task}: too many duplicate windows to fill a pool of {pool_size} per class")
        write_labelled_tsv(out_dir / task / "test.tsv", test)
        write_labelled_tsv(out_dir / task / "pool.tsv", pool)
        summary["tasks"][task] = {
            "length": spec.length,
            "test_rows_per_class": test.class_counts(spec.n_classes),
            "pool_rows_per_class": pool.class_counts(spec.n_classes),
        }
    with atomic_file(out_dir / "simulation.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
